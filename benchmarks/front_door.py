"""The MCP front door under a tokenless flood: does an agent with a token keep its latency?

Run: ``python -m benchmarks front_door [--requests 10000] [--listens 1000] [--connections 32]
[--rate 0]`` (``--rate``: requests a second in all, paced; 0 sends each as soon as the last is answered).
``toolrt serve --transport http`` runs in its own process on a loopback port with one agent token
(alice), on a fresh local store (alice's ``add`` runs in the sandbox). Alice, through the official
SDK client, opens sessions (initialize) and calls ``add`` in them, first alone (the baseline) and
then while another process, on ``--connections`` keep-alive connections, sends ``--requests``
tokenless initialize requests and ``--listens`` tokenless ``subscriptions/listen`` requests
(every one must be 401).
Printed: alice's initialize and call p50/p95 alone and during the flood (with their ratio), the
flood's rate and statuses, and the CPU the server's process tree spent in each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import anyio
import h11

from benchmarks._stats import p, tree_cpu_s
from benchmarks.mcp_serving import ADD, _free_port, _wait_listening, serve_command

TOKEN = "alice-bench-token-0123456789"
SESSION_CALLS = 5
# The floor: uvicorn answering 401 to everything with no application behind it.
BARE_401 = """
import sys, uvicorn
BODY = b'{"error": "invalid_token"}'
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"26"), (b"www-authenticate", b"Bearer")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _flood_bodies(requests: int, listens: int) -> list[tuple[bytes, list[tuple[str, str]]]]:
    accept = [("accept", "application/json, text/event-stream"), ("content-type", "application/json")]
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "f", "version": "0"},
            },
        }
    ).encode()
    listen = json.dumps(
        {"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen", "params": {"notifications": {}}}
    ).encode()
    modern = [*accept, ("mcp-protocol-version", "2026-07-28")]
    jobs = [(init, accept)] * requests + [(listen, modern)] * listens
    # Interleaved, so listens arrive throughout the flood.
    return [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: (i * 7919) % len(jobs))]


async def _flood_worker(
    port: int, jobs: list[tuple[bytes, list[tuple[str, str]]]], statuses: Counter[int], gap_s: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    started = time.perf_counter()
    try:
        for index, (body, headers) in enumerate(jobs):
            if gap_s:  # paced: this connection's share of the rate
                await asyncio.sleep(max(0.0, started + index * gap_s - time.perf_counter()))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                conn = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="POST",
                target="/mcp",
                headers=[("host", f"127.0.0.1:{port}"), ("content-length", str(len(body))), *headers],
            )
            writer.write(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            status = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            statuses[status] += 1
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
    finally:
        writer.close()


async def _flood(
    port: int, requests: int, listens: int, connections: int, rate: float = 0.0
) -> tuple[Counter[int], float]:
    """Send the tokenless requests on ``connections`` keep-alive connections, as fast as the server
    answers (``rate`` 0) or paced to ``rate`` requests a second in all; their statuses and seconds."""
    jobs = _flood_bodies(requests, listens)
    statuses: Counter[int] = Counter()
    gap_s = connections / rate if rate > 0 else 0.0
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(connections):
            group.start_soon(_flood_worker, port, jobs[i::connections], statuses, gap_s)
    return statuses, time.perf_counter() - started


def _alice_client(url: str) -> Any:
    """An SDK client (not yet connected) with alice's token."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {TOKEN}"}
    return Client(streamable_http_client(url, http_client=create_mcp_http_client(headers=headers)))


async def _alice(url: str, sessions: int | None, until: anyio.Event | None) -> tuple[list[float], list[float]]:
    """Alice's initialize and call latencies (ms): ``sessions`` sessions, or as many as fit before ``until``."""
    inits: list[float] = []
    calls: list[float] = []
    done = 0
    while (sessions is not None and done < sessions) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        async with _alice_client(url) as client:
            inits.append((time.perf_counter() - started) * 1000)
            for i in range(SESSION_CALLS):
                started = time.perf_counter()
                result = await client.call_tool("add", {"a": i, "b": 2})
                calls.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    raise RuntimeError(f"alice's call failed: {result.content}")
        done += 1
    return inits, calls


async def _with_flood(
    url: str, port: int, args: argparse.Namespace
) -> tuple[list[float], list[float], dict[str, int], float]:
    """Alice's latencies while another process floods the server; the flood's statuses and seconds."""
    command = [sys.executable, "-m", "benchmarks.front_door", "--flood-port", str(port)]
    for option in ("requests", "listens", "connections", "rate"):
        command += [f"--{option}", str(getattr(args, option))]
    finished = anyio.Event()
    report: dict[str, bytes] = {}

    async def flood() -> None:
        done = await anyio.run_process(command, check=True)
        report["out"] = done.stdout
        finished.set()

    result: dict[str, tuple[list[float], list[float]]] = {}

    async def alice() -> None:
        result["alice"] = await _alice(url, None, finished)

    async with anyio.create_task_group() as group:
        group.start_soon(flood)
        group.start_soon(alice)
    flooded = json.loads(report["out"])
    return (*result["alice"], flooded["statuses"], flooded["seconds"])


async def _register(url: str) -> None:
    async with _alice_client(url) as client:
        registered = await client.call_tool("register_tool", ADD)
        if registered.is_error:
            raise RuntimeError(f"registering add failed: {registered.content}")


def _line(label: str, inits: list[float], calls: list[float], base: tuple[list[float], list[float]] | None) -> str:
    def part(name: str, times: list[float], reference: list[float] | None) -> str:
        ratio = f" (x{p(times, 50) / p(reference, 50):.2f}/x{p(times, 95) / p(reference, 95):.2f})" if reference else ""
        return f"{name} p50 {p(times, 50):7.2f} ms p95 {p(times, 95):7.2f} ms{ratio}"

    return (
        f"{label:<24} {part('initialize', inits, base[0] if base else None)}   "
        f"{part('call', calls, base[1] if base else None)}   ({len(inits)} sessions, {len(calls)} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--listens", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="requests a second in all (0: as fast as answered)")
    parser.add_argument("--sessions", type=int, default=40, help="alice's sessions in the baseline")
    parser.add_argument("--flood-port", type=int, help=argparse.SUPPRESS)  # the flooding process itself
    args = parser.parse_args()
    if args.flood_port:
        statuses, seconds = anyio.run(_flood, args.flood_port, args.requests, args.listens, args.connections, args.rate)
        print(json.dumps({"statuses": {str(k): v for k, v in statuses.items()}, "seconds": seconds}))
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(serve_command(data, port, f"{TOKEN}=alice"), stderr=subprocess.PIPE)
        try:
            _wait_listening(port, server)
            anyio.run(_register, url)
            anyio.run(_alice, url, 5, None)  # warm: the sandbox's pool and the caches
            cpu = tree_cpu_s(server.pid)
            base = anyio.run(_alice, url, args.sessions, None)
            base_cpu = tree_cpu_s(server.pid) - cpu
            own = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = tree_cpu_s(server.pid)
            inits, calls, statuses, seconds = anyio.run(_with_flood, url, port, args)
            flood_cpu = tree_cpu_s(server.pid) - cpu
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            server.terminate()
            server.wait(timeout=30)
    client_cpu = (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime)
    total = args.requests + args.listens
    bare_port = _free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_401, str(bare_port)], stderr=subprocess.PIPE)
    try:
        _wait_listening(bare_port, bare)
        cpu = tree_cpu_s(bare.pid)
        bare_statuses, bare_seconds = anyio.run(_flood, bare_port, args.requests, args.listens, args.connections)
        bare_cpu = tree_cpu_s(bare.pid) - cpu
    finally:
        bare.terminate()
        bare.wait(timeout=30)
    print(f"toolrt serve --transport http, one agent token; alice: {SESSION_CALLS} calls of add per session")
    print(_line("alice alone", *base, None))
    print(_line("alice during the flood", inits, calls, base))
    print(
        f"flood: {args.requests} tokenless initialize + {args.listens} tokenless listen requests on "
        f"{args.connections} connections in {seconds:.1f} s ({total / seconds:.0f}/s"
        f"{f', paced to {args.rate:g}/s' if args.rate else ', as fast as answered'}); statuses {dict(statuses)}"
    )
    print(
        f"server CPU: {base_cpu:.2f} s for the baseline, {flood_cpu:.2f} s during the flood "
        f"({flood_cpu / total * 1e6:.0f} us per refused request at most); flood client CPU {client_cpu:.2f} s"
    )
    print(
        f"floor, bare uvicorn answering 401: {total / bare_seconds:.0f}/s, {bare_cpu / total * 1e6:.0f} us per request "
        f"(toolrt's refusal: x{(flood_cpu / total) / (bare_cpu / total):.2f} of it); statuses {dict(bare_statuses)}"
    )
    if set(statuses) != {"401"}:
        raise SystemExit(f"a tokenless request got something other than 401: {dict(statuses)}")


if __name__ == "__main__":
    main()
