"""A tool's stdout and stderr reach the caller's on_output as it prints (local sandbox) or at the end (others)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt
from toolrt.adapters.node import find_node
from toolrt.application import ToolRuntime

PRINTS_TWICE = """
import sys, time

def handler():
    print("first", flush=True)
    time.sleep(1.5)
    print("second", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    return 1
"""


class Collected:
    def __init__(self) -> None:
        self.pieces: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, stream: str, text: str) -> None:
        with self.lock:
            self.pieces.append((stream, text))

    def text(self, stream: str) -> str:
        return "".join(t for s, t in self.pieces if s == stream)


def _definition(code: str, language: str = "python", name: str = "talker") -> dict[str, Any]:
    return {
        "name": name,
        "description": "Prints.",
        "language": language,
        "code": code,
        "input_schema": {"type": "object", "properties": {}},
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    rt = toolrt.connect("local", data_dir=str(tmp_path_factory.mktemp("stream")), sandbox_workers=1)
    yield rt
    rt.close()


def test_python_output_arrives_while_the_tool_runs(local: ToolRuntime) -> None:
    """The first line comes on its own, before the tool printed the second: it was streamed."""
    reg = local.register_tool("agent-a", _definition(PRINTS_TWICE))
    seen = Collected()
    execution = local.execute_tool("agent-a", reg.tool_id, {}, on_output=seen)
    assert execution.output == 1
    assert seen.pieces[0] == ("stdout", "first\n")
    assert seen.text("stdout") == execution.stdout == "first\nsecond\n"
    assert seen.text("stderr") == execution.stderr


@pytest.mark.skipif(find_node() is None, reason="needs Node.js 24")
def test_javascript_output_is_streamed_too(local: ToolRuntime) -> None:
    """A Node tool's console output reaches the callback as it comes, and all of it."""
    code = (
        "async function handler() { console.log('first'); await new Promise(r => setTimeout(r, 1500));"
        " console.log('second'); return 1 }\nmodule.exports = { handler }"
    )
    reg = local.register_tool("agent-a", _definition(code, "javascript", "jstalker"))
    seen = Collected()
    execution = local.execute_tool("agent-a", reg.tool_id, {}, on_output=seen)
    assert execution.output == 1, execution.error
    assert seen.pieces[0] == ("stdout", "first\n")
    assert seen.text("stdout") == execution.stdout


def test_output_past_the_cap_is_not_streamed(local: ToolRuntime) -> None:
    """The callback never gets more than the execution records (the output cap holds for streaming)."""
    code = "def handler():\n    for i in range(2000):\n        print('x' * 99, flush=True)\n    return 0\n"
    reg = local.register_tool("agent-a", {**_definition(code, name="flood"), "limits": {"max_output_bytes": 4096}})
    seen = Collected()
    execution = local.execute_tool("agent-a", reg.tool_id, {}, on_output=seen)
    assert execution.stdout_truncated
    assert seen.text("stdout") == execution.stdout and len(execution.stdout) <= 4096


def test_a_failing_callback_does_not_fail_the_call(local: ToolRuntime) -> None:
    """on_output that raises is dropped for the call; the execution and its record are intact."""
    reg = local.register_tool("agent-a", _definition(PRINTS_TWICE, name="talker2"))
    calls: list[str] = []

    def broken(stream: str, text: str) -> None:
        calls.append(text)
        raise RuntimeError("caller bug")

    execution = local.execute_tool("agent-a", reg.tool_id, {}, on_output=broken)
    assert execution.output == 1 and execution.stdout == "first\nsecond\n"
    assert calls == ["first\n"]


def test_streams_are_per_call_another_agent_hears_nothing(local: ToolRuntime) -> None:
    """Two agents' calls on one worker: each callback hears only its own call."""
    reg = local.register_tool(
        "agent-a",
        {
            **_definition("def handler(word: str):\n    print(word)\n    return 0\n", name="echoer"),
            "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
        },
        "public",
    )
    a, b = Collected(), Collected()
    local.execute_tool("agent-a", reg.tool_id, {"word": "secret-a"}, on_output=a)
    local.execute_tool("agent-b", reg.tool_id, {"word": "hello-b"})
    local.execute_tool("agent-b", reg.tool_id, {"word": "hello-b"}, on_output=b)
    assert a.text("stdout") == "secret-a\n" and b.text("stdout") == "hello-b\n"


def test_sandboxes_that_cannot_stream_deliver_at_the_end(tmp_path: Path) -> None:
    """The in-process sandbox (and any other) hands the whole output to the callback once."""
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        reg = rt.register_tool("agent-a", _definition("def handler():\n    print('hi')\n    return 2\n"))
        seen = Collected()
        assert rt.execute_tool("agent-a", reg.tool_id, {}, on_output=seen).output == 2
        assert seen.pieces == [("stdout", "hi\n")]


async def _async_run(rt: toolrt.AsyncToolRuntime, tool_id: str, seen: Collected) -> Any:
    return await rt.execute_tool("agent-a", tool_id, {}, on_output=seen)


def test_the_async_runtime_takes_on_output() -> None:
    """The asyncio twin passes on_output through."""
    import asyncio

    rt = toolrt.connect_async("memory", sandbox="inprocess")
    reg = rt.sync.register_tool("agent-a", _definition("def handler():\n    print('hey')\n    return 3\n"))
    seen = Collected()
    assert asyncio.run(_async_run(rt, reg.tool_id, seen)).output == 3
    assert seen.text("stdout") == "hey\n"
    rt.sync.close()


def test_cli_invoke_stream_shows_the_tools_output_on_stderr(tmp_path: Path) -> None:
    """`toolrt invoke --stream` writes what the tool prints to stderr; the result stays alone on stdout."""
    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    tool = tmp_path / "counter.py"
    tool.write_text(
        'def handler(n: int) -> int:\n    """Count to n."""\n    for i in range(n):\n        print("line", i, flush=True)\n    return n\n'
    )
    app = build_app()
    base = ["--data-dir", str(tmp_path / "store")]
    assert CliRunner().invoke(app, [*base, "register", str(tool)]).exit_code == 0
    done = CliRunner().invoke(app, [*base, "invoke", "counter", "n=2", "--stream"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "2"
    assert "line 0\nline 1\n" in done.stderr


@pytest.mark.skipif(find_node() is None, reason="needs Node.js 24")
def test_typescript_is_stripped_once_at_registration_and_runs_as_javascript(
    local: ToolRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifact keeps the stripped form; calls run it as JavaScript (no stripper per call), and a
    failure still points at the tool's own line."""
    code = (
        "interface In { n: number }\n"
        "export function handler({ n }: In): number {\n"
        "  if (n < 0) throw new RangeError('negative');\n"
        "  return n * 2;\n"
        "}\n"
    )
    reg = local.register_tool(
        "agent-a",
        _definition(code, "typescript", "doubler")
        | {"input_schema": {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}},
    )
    artifact = local.ports.artifacts.get(reg.code_hash)
    assert artifact is not None and artifact.runnable is not None
    assert "interface" not in artifact.runnable and ": number" not in artifact.runnable
    assert artifact.runnable.count("\n") == code.count("\n")  # positions kept
    seen: list[str] = []
    original = local.ports.sandbox.run

    def recording(request: Any, cancel: Any = None) -> Any:
        seen.append(request.language.value)
        return original(request, cancel)

    monkeypatch.setattr(local.ports.sandbox, "run", recording)
    assert local.execute_tool("agent-a", reg.tool_id, {"n": 21}).output == 42
    failed = local.execute_tool("agent-a", reg.tool_id, {"n": -1})
    assert failed.error is not None and failed.error.type == "RangeError"
    assert ":3:" in failed.error.traceback  # the throw is on line 3 of the tool
    assert seen == ["javascript", "javascript"]
