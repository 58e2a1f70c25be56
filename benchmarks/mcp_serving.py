"""MCP serving under load: `toolrt serve --transport http` beside the SDK's own server, same clients.

Run: ``python -m benchmarks.mcp_serving [--clients 16] [--seconds 10] [--servers 1 2]``. Each
server runs in its own process on a loopback port; ``--clients`` concurrent sessions of the official
SDK client (streamable HTTP, bearer tokens, two agents) call a trivial ``add`` tool for
``--seconds``, and the figures (calls/s, p50, p95) are printed for both, with toolrt's throughput as
a ratio of the baseline (the SDK's MCPServer with the same tool run in-process, no sandbox).
Each line also gives the CPU time per call of the clients (this process) and of the servers (their
whole process trees: sandbox workers and the calls' processes included), and the throughput that
CPU per call allows on this machine's cores: with clients and servers on one machine, that bound is
what the ratio is measured against.
``--servers`` runs toolrt once per count given, as that many ``toolrt serve`` processes on one
store, each on its own port, the clients spread over them as a balancer that keeps each MCP
session on one server would (docs/mcp.md, "Serving more").
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio

from benchmarks._stats import p, tree_cpu_s

ADD = {
    "name": "add",
    "description": "Add two numbers.",
    "language": "python",
    "code": "def handler(a: float, b: float) -> float:\n    return a + b\n",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}

BASELINE = textwrap.dedent("""
    import sys, uvicorn
    from mcp.server.mcpserver import MCPServer
    server = MCPServer("baseline")

    @server.tool()
    def add(a: float, b: float) -> float:
        '''Add two numbers.'''
        return a + b

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


async def _load(urls: list[str], tokens: list[str], tool: str, clients: int, seconds: float) -> list[float]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    latencies: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        url = urls[i % len(urls)]
        transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
        async with Client(transport) as client:
            await client.call_tool(tool, {"a": 1, "b": 2})  # warm: session set up, tool resolved once
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                started = time.perf_counter()
                result = await client.call_tool(tool, {"a": i, "b": 2})
                latencies.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    errors += 1

    async with anyio.create_task_group() as group:
        for i in range(clients):
            group.start_soon(one, i)
    if errors:
        print(f"  ({errors} calls came back as errors)")
    return latencies


def _measured(
    urls: list[str], tokens: list[str], servers: list[int], clients: int, seconds: float
) -> tuple[list[float], float, float]:
    """The latencies of a load run, and the CPU seconds it cost the clients and the ``servers`` (pids)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    before = sum(tree_cpu_s(pid) for pid in servers)
    lat = anyio.run(_load, urls, tokens, "add", clients, seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = sum(tree_cpu_s(pid) for pid in servers) - before
    client_cpu = (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime)
    return lat, client_cpu, server_cpu


def _report(
    label: str, run: tuple[list[float], float, float], seconds: float, baseline_rate: float | None = None
) -> float:
    latencies, client_cpu, server_cpu = run
    rate = len(latencies) / seconds
    ratio = f"   {rate / baseline_rate:5.2f}x the baseline's throughput" if baseline_rate else ""
    print(
        f"{label:<46} {rate:8.1f} calls/s   p50 {p(latencies, 50):8.1f} ms   p95 {p(latencies, 95):8.1f} ms{ratio}",
        flush=True,
    )
    calls = max(len(latencies), 1)
    per_call = (client_cpu + server_cpu) / calls * 1000
    bound = (os.cpu_count() or 1) * 1000 / per_call if per_call else 0.0
    print(
        f"{'':<46} CPU per call: clients {client_cpu / calls * 1000:.2f} ms, server {server_cpu / calls * 1000:.2f} ms;"
        f" {os.cpu_count()} cores allow at most {bound:.0f} calls/s at that cost",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--servers", type=int, nargs="+", default=[1], help="toolrt serve processes per run")
    args = parser.parse_args()
    print(f"{args.clients} concurrent SDK clients, {args.seconds:g} s each, on {os.cpu_count()} CPUs")

    port = _free_port()
    baseline = subprocess.Popen([sys.executable, "-c", BASELINE, str(port)], stderr=subprocess.PIPE)
    try:
        _wait_listening(port, baseline)
        run = _measured([f"http://127.0.0.1:{port}/mcp"], ["unused"], [baseline.pid], args.clients, args.seconds)
        base_rate = _report("SDK MCPServer, in-process tool (baseline)", run, args.seconds)
    finally:
        baseline.terminate()
        baseline.wait(10)

    import toolrt

    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        with toolrt.connect("local", data_dir=data) as rt:
            rt.register_tool("agent-a", ADD, "public")
        for count in args.servers:
            _serve_and_load(data, count, args, base_rate)


def serve_command(data: str, port: int, *tokens: str) -> list[str]:
    """``toolrt serve --transport http`` on ``port`` over the store in ``data``, one ``--token`` each."""
    command = [str(Path(sys.executable).parent / "toolrt"), "--data-dir", data, "serve", "--transport", "http"]
    command += ["--port", str(port)]
    for token in tokens:
        command += ["--token", token]
    return command


def _serve_and_load(data: str, count: int, args: argparse.Namespace, base_rate: float) -> None:
    ports = [_free_port() for _ in range(count)]
    servers = []
    try:
        for port in ports:
            command = serve_command(data, port, "tok-a-0123456789abcdef=agent-a", "tok-b-0123456789abcdef=agent-b")
            servers.append(subprocess.Popen(command, stderr=subprocess.PIPE))
        for port, server in zip(ports, servers, strict=True):
            _wait_listening(port, server)
        urls = [f"http://127.0.0.1:{port}/mcp" for port in ports]
        run = _measured(
            urls,
            ["tok-a-0123456789abcdef", "tok-b-0123456789abcdef"],
            [s.pid for s in servers],
            args.clients,
            args.seconds,
        )
        label = f"toolrt serve x{count} (sandboxed tool, two agents)"
        _report(label, run, args.seconds, base_rate)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)


if __name__ == "__main__":
    main()
