"""The egress proxy's cost per request: plain GETs, bodies by length and by chunks, and CONNECT tunnels.

Run: ``python -m benchmarks egress [--requests N] [--bodies B] [--body-kib K] [--against PATH]``.

A loopback HTTP server in a process of its own (127.0.0.1 only) answers every request; a client in
this process sends each request through a worker's gate (the unix socket a sandbox would use), one
request per connection as the proxy allows, and reads the answer to its end. The baseline, measured
in the same run, is the same request sent straight to the server. ``--against`` names another
``egress_proxy.py`` (another checkout's) to measure in the same run. The routes take turns request
by request (each starting the turn in rotation), so that drift in the machine's load falls on all
of them alike. Printed per scenario:
latency p50/p95 (or throughput), and the CPU time of the proxy's own thread per request (its loop
does all the proxy's work; read from the thread's CPU clock).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from benchmarks._stats import p, quiet_logs
from toolrt.domain import EgressGrant, HostPort

HOST = "bench.test"


def _serve(ready: Any, stop: Any) -> None:
    """The upstream: answers each request with the number of body bytes it read (Content-Length or chunked)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            fields = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
            }
            size = 0
            if fields.get(b"transfer-encoding") == b"chunked":
                while chunk := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    size += len(await reader.readexactly(chunk + 2)) - 2
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
            else:
                left = int(fields.get(b"content-length", b"0"))
                while left:
                    data = await reader.read(min(left, 1 << 20))
                    if not data:
                        break
                    size += len(data)
                    left -= len(data)
            body = b"read %d" % size
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
        ready.send(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


def _exchange(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    answer = b""
    while chunk := conn.recv(1 << 16):
        answer += chunk
    conn.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {answer[:200]!r}")
    return answer


class Route:
    """One way to the upstream: straight to it (the baseline), or through a proxy's gate."""

    def __init__(self, label: str, port: int, module: ModuleType | None) -> None:
        self.label = label
        self.port = port
        self.proxy: Any = None
        self.gate: Any = None
        if module is not None:
            self.proxy = module.EgressProxy(lambda host, port: ["127.0.0.1"])
            self.gate = self.proxy.open_gate()
            target = HostPort(HOST, port)
            self.gate.begin("bench", EgressGrant(frozenset({target}), frozenset({target})))

    def connect(self) -> socket.socket:
        if self.gate is None:
            return socket.create_connection(("127.0.0.1", self.port))
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(self.gate.path))
        return conn

    def plain(self, method: str, fields: str, body: bytes) -> bytes:
        """One plain request (absolute URI through a proxy, origin form straight), its whole answer."""
        target = f"http://{HOST}:{self.port}/x" if self.gate is not None else "/x"
        head = f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUser-Agent: bench\r\n{fields}\r\n"
        return _exchange(self.connect(), head.encode() + body)

    def tunnelled(self, body: bytes) -> bytes:
        """A CONNECT tunnel (none straight), then a POST of ``body`` inside it."""
        conn = self.connect()
        if self.gate is not None:
            conn.sendall(f"CONNECT {HOST}:{self.port} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode())
            if not conn.recv(1024).startswith(b"HTTP/1.1 200"):
                raise RuntimeError("CONNECT refused")
        head = f"POST /t HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Length: {len(body)}\r\n\r\n"
        return _exchange(conn, head.encode() + body)

    def cpu_s(self) -> float:
        """CPU seconds of the proxy's loop thread so far (0 for the baseline)."""
        if self.proxy is None:
            return 0.0
        ident = self.proxy._thread.ident  # noqa: SLF001 - the loop thread is where the proxy works
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("egress_proxy_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="small requests per route and scenario")
    parser.add_argument("--body-kib", type=int, default=1024, help="size of the bodies sent (KiB)")
    parser.add_argument("--bodies", type=int, default=20, help="large bodies per route and scenario")
    parser.add_argument("--against", help="another egress_proxy.py to measure in the same run (e.g. main's)")
    args = parser.parse_args()
    quiet_logs()
    from toolrt.adapters.local import egress_proxy

    ready, sent = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(sent, stop), daemon=True)
    server.start()
    port = int(ready.recv())
    routes = [Route("straight to the server (baseline)", port, None), Route("through this proxy", port, egress_proxy)]
    if args.against:
        routes.append(Route(f"through {args.against}", port, _load(args.against)))
    body = bytes(range(256)) * (args.body_kib * 4)
    scenarios: list[tuple[str, int, Callable[[Route], object], int]] = [
        ("GET, no body", args.requests, lambda r: r.plain("GET", "", b""), 0),
        ("POST, 1 KiB by Content-Length", args.requests, lambda r: r.plain("POST", "Content-Length: 1024\r\n", body[:1024]), 1024),
        (f"POST, {args.body_kib} KiB by Content-Length", args.bodies, lambda r: r.plain("POST", f"Content-Length: {len(body)}\r\n", body), len(body)),
        (f"POST, {args.body_kib} KiB chunked (64 KiB chunks)", args.bodies, lambda r: r.plain("POST", "Transfer-Encoding: chunked\r\n", _chunked(body)), len(body)),
        ("POST, 16 KiB chunked in 16-byte chunks", args.bodies, lambda r: r.plain("POST", "Transfer-Encoding: chunked\r\n", _chunked(body[:16384], 16)), 16384),
        (f"CONNECT, then POST {args.body_kib} KiB inside", args.bodies, lambda r: r.tunnelled(body), len(body)),
    ]  # fmt: skip
    try:
        for route in routes:  # warm up every path once
            for _, _, run, _ in scenarios:
                run(route)
        print("Routes take turns request by request. Times per request; CPU: the proxy's loop thread.")
        for title, n, run, size in scenarios:
            times: dict[str, list[float]] = {r.label: [] for r in routes}
            cpu: dict[str, float] = dict.fromkeys(times, 0.0)
            for i in range(n):
                for route in routes[i % len(routes) :] + routes[: i % len(routes)]:
                    before = route.cpu_s()
                    started = time.perf_counter()
                    run(route)
                    times[route.label].append((time.perf_counter() - started) * 1000)
                    cpu[route.label] += route.cpu_s() - before
            print(f"\n{title} ({n} per route)")
            base = statistics.median(times[routes[0].label])
            this = statistics.median(times[routes[1].label])
            for route in routes:
                t = times[route.label]
                p50 = statistics.median(t)
                rate = f"{size / (p50 / 1000) / 2**20:8.1f} MiB/s" if size >= 2**20 else f"{1000 / p50:8.0f} req/s"
                cpu_us = cpu[route.label] / len(t) * 1e6
                line = f"  {route.label:<44} p50 {p50:8.3f} ms  p95 {p(t, 95):8.3f} ms  {rate}"
                if route.proxy is not None:
                    line += f"  proxy CPU {cpu_us:8.0f} us/req  x{p50 / base:5.2f} of baseline"
                if route is not routes[1] and route.proxy is not None:
                    line += f"  (this proxy's p50: x{this / p50:5.2f} of it)"
                print(line)
    finally:
        for route in routes:
            route.close()
        stop.set()
        server.join(timeout=5)


if __name__ == "__main__":
    main()
