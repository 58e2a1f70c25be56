"""Per-call overhead of toolrt's MCP server through each agent framework, over stdio and streamable HTTP.

Run: ``python -m benchmarks frameworks [--calls 60]`` (it runs itself in ``.venv-frameworks``, the
framework matrix's virtualenv: ``make frameworks-venv``). One data folder holds ``add``; the
baseline is ``rt.execute_tool`` in this process on the same store (the sandbox's own cost, no MCP).
Then each framework's own client calls ``add`` ``--calls`` times in one open session, as the
framework calls a tool for its model: smolagents' tool object (ToolCollection.from_mcp), the OpenAI
Agents SDK's MCP server object (``call_tool``), LangChain's tool from ``load_mcp_tools`` on one
session (``ainvoke``), and pydantic-ai's MCPToolset (``direct_call_tool``). Figures: p50 and p95
per call, and the p50 over the baseline's (what MCP and the framework add per call).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FW_PYTHON = ROOT / ".venv-frameworks" / "bin" / "python"
AGENT = "bench"
ADD = {
    "name": "add",
    "description": "Add two integers.",
    "language": "python",
    "code": 'def handler(a: int, b: int) -> int:\n    """Add.\n\n    Args:\n        a: first\n        b: second\n    """\n    return a + b\n',
}


def _row(label: str, times: list[float], base: float) -> str:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else p50
    return f"{label:<34} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms   +{p50 - base:7.2f} ms over execute_tool"


WARMUP = 10


async def _timed(call: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    for i in range(WARMUP):
        await call(-1 - i)
    times = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _smolagents(command: list[str], url: str | None, n: int) -> list[float]:
    import anyio.to_thread
    from mcp import StdioServerParameters
    from smolagents import ToolCollection

    params: Any = (
        {"url": url, "transport": "streamable-http"}
        if url
        else StdioServerParameters(command=command[0], args=command[1:])
    )
    with ToolCollection.from_mcp(params, trust_remote_code=True, structured_output=False) as collection:
        add = next(t for t in collection.tools if t.name == "add")
        return await _timed(lambda i: anyio.to_thread.run_sync(lambda: add(a=i, b=1)), n)


async def _openai_agents(command: list[str], url: str | None, n: int) -> list[float]:
    from agents.mcp import MCPServerStdio, MCPServerStreamableHttp

    server: Any = (
        MCPServerStreamableHttp(params={"url": url}, client_session_timeout_seconds=60)
        if url
        else MCPServerStdio(params={"command": command[0], "args": command[1:]}, client_session_timeout_seconds=60)
    )
    async with server:
        return await _timed(lambda i: server.call_tool("add", {"a": i, "b": 1}), n)


async def _langchain(command: list[str], url: str | None, n: int) -> list[float]:
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langchain_mcp_adapters.tools import load_mcp_tools

    connection: Any = (
        {"transport": "streamable_http", "url": url}
        if url
        else {"transport": "stdio", "command": command[0], "args": command[1:]}
    )
    client = MultiServerMCPClient({"toolrt": connection})
    async with client.session("toolrt") as session:
        add = next(t for t in await load_mcp_tools(session) if t.name == "add")
        return await _timed(lambda i: add.ainvoke({"a": i, "b": 1}), n)


async def _pydantic_ai(command: list[str], url: str | None, n: int) -> list[float]:
    from fastmcp.client import Client
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai.mcp import MCPToolset

    toolset: Any = MCPToolset(url) if url else MCPToolset(Client(StdioTransport(command[0], command[1:])))
    async with toolset:
        return await _timed(lambda i: toolset.direct_call_tool("add", {"a": i, "b": 1}), n)


FRAMEWORKS = {
    "smolagents": _smolagents,
    "openai-agents": _openai_agents,
    "langchain-mcp-adapters": _langchain,
    "pydantic-ai": _pydantic_ai,
}


def run(n: int) -> None:
    import anyio

    import toolrt

    toolrt_exe = str(Path(sys.executable).with_name("toolrt"))
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        with toolrt.connect("local", data_dir=data) as rt:
            rt.register_tool(AGENT, ADD)

            def baseline() -> list[float]:
                for i in range(WARMUP):
                    rt.execute_tool(AGENT, "add", {"a": i, "b": 1})
                times = []
                for i in range(n):
                    started = time.perf_counter()
                    rt.execute_tool(AGENT, "add", {"a": i, "b": 1})
                    times.append((time.perf_counter() - started) * 1000)
                return times

            before = baseline()
            rows: list[tuple[str, list[float] | str]] = []
            from importlib.metadata import version

            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"mcp {version('mcp')}; {n} calls each after {WARMUP} unmeasured; one session per framework and")
            print(
                f"transport; load average {load} (the baseline runs before and after the frameworks: the lower p50 counts)"
            )
            command = [toolrt_exe, "--data-dir", str(data), "--agent", AGENT, "serve"]
            port = _free_port()
            server = subprocess.Popen(
                [*command, "--transport", "http", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                url = f"http://127.0.0.1:{port}/mcp"
                for name, drive in FRAMEWORKS.items():
                    for transport, target in (("stdio", None), ("http", url)):
                        try:
                            rows.append((f"{name} {transport}", anyio.run(drive, command, target, n)))
                        except Exception as exc:  # one framework's failure should not hide the others' figures
                            rows.append((f"{name} {transport}", f"failed: {type(exc).__name__}: {exc}"))
            finally:
                server.terminate()
                server.wait(timeout=15)
            after = baseline()
            base = min(statistics.median(before), statistics.median(after))
            print(_row("rt.execute_tool, before", before, base))
            print(_row("rt.execute_tool, after", after, base))
            for label, result in rows:
                print(f"{label:<34} {result}" if isinstance(result, str) else _row(label, result, base))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    try:
        import pydantic_ai  # noqa: F401
        import smolagents  # noqa: F401
    except ImportError:
        if not FW_PYTHON.exists():
            raise SystemExit("the frameworks' virtualenv is missing: make frameworks-venv") from None
        done = subprocess.run(
            [str(FW_PYTHON), "-m", "benchmarks.frameworks", "--calls", str(args.calls)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        if done.returncode:
            raise SystemExit(done.returncode) from None
        return
    run(args.calls)


if __name__ == "__main__":
    main()
