"""The framework matrix: toolrt's MCP server, started as an application starts it, for each framework to drive.

Every test runs in the frameworks' virtualenv (toolrt and the frameworks together, the mcp SDK as
pip resolves it there). A test gets a :class:`Served` toolrt: a data folder with the tools below
registered by the agent ``agent``, reached over stdio (the framework starts ``toolrt serve``) or
streamable HTTP (one ``toolrt serve --transport http`` for the run, on a free loopback port).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt

AGENT = "agent"
# The toolrt that serves: the one installed beside the frameworks (TOOLRT_MATRIX_SERVER names another).
TOOLRT = os.environ.get("TOOLRT_MATRIX_SERVER") or str(Path(sys.executable).with_name("toolrt"))
MATRIX_INI = Path(__file__).with_name("pytest.ini")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The matrix runs only under its own configuration, in the frameworks' virtualenv; the main test
    run reaches it through tests/e2e/test_framework_matrix.py, which starts that run."""
    if config.inipath != MATRIX_INI and collection_path.name.startswith("test_"):
        return True
    return None


ADD = '''
def handler(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
'''
BOOM = '''
def handler(reason: str) -> str:
    """Fail on purpose.

    Args:
        reason: What to fail with.
    """
    raise ValueError(reason)
'''
CHATTY = '''
def handler(text: str) -> str:
    """Upper-case a text, telling what it does on the way.

    Args:
        text: The text to upper-case.
    """
    print("working on", text)
    return text.upper()
'''
LATE = '''
def handler(x: int) -> int:
    """Double a number (a tool that arrives while the agent runs).

    Args:
        x: The number.
    """
    return 2 * x
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """toolrt with the matrix's tools, for one transport: what a framework needs to reach it."""

    def __init__(self, data_dir: Path, transport: str, url: str | None) -> None:
        self.data_dir = data_dir
        self.transport = transport
        self.url = url
        self._late = 0

    @property
    def command(self) -> str:
        """The program a framework starts for stdio."""
        return TOOLRT

    @property
    def args(self) -> list[str]:
        """Its arguments: the data folder, the agent, ``serve``."""
        return ["--data-dir", str(self.data_dir), "--agent", AGENT, "serve"]

    @property
    def env(self) -> dict[str, str]:
        """The environment the stdio server runs with (the frameworks pass only a few variables on)."""
        return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}

    def register_late(self) -> str:
        """Register a new tool for the agent from another process's view of the store (as an
        application would, while the agent runs); return its name."""
        self._late += 1
        name = f"double_{self.transport}_{self._late}"
        with toolrt.connect("local", data_dir=self.data_dir) as rt:
            rt.register_tool(
                AGENT, {"name": name, "description": "Double a number.", "language": "python", "code": LATE}
            )
        return name


def _seed(data_dir: Path) -> None:
    with toolrt.connect("local", data_dir=data_dir) as rt:
        for name, code, description in (
            ("add", ADD, "Add two integers."),
            ("boom", BOOM, "Fail on purpose."),
            ("chatty", CHATTY, "Upper-case a text, printing as it goes."),
        ):
            rt.register_tool(AGENT, {"name": name, "description": description, "language": "python", "code": code})


@pytest.fixture(scope="session", params=["stdio", "http"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """toolrt with the matrix's tools, over stdio and over streamable HTTP (one store and one HTTP
    server for the whole run: each test's late tool has a name of its own)."""
    data_dir = tmp_path_factory.mktemp(f"toolrt-{request.param}")
    _seed(data_dir)
    if request.param == "stdio":
        yield Served(data_dir, "stdio", None)
        return
    port = _free_port()
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [TOOLRT, "--data-dir", str(data_dir), "--agent", AGENT, "serve", "--transport", "http", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process, data_dir / "server.log")
        yield Served(data_dir, "http", f"http://127.0.0.1:{port}/mcp")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for(port: int, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"toolrt serve --transport http exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"toolrt serve did not listen on {port} within 60 s: {log.read_text()}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which SDK and framework releases the matrix ran with."""
    from importlib.metadata import version

    names = ("mcp", "smolagents", "openai-agents", "langchain-mcp-adapters", "langchain-core", "pydantic-ai-slim")
    return ["framework matrix: " + ", ".join(f"{n} {version(n)}" for n in names)]
