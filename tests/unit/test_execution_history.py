"""Execution history: an agent sees its own calls and the calls of its tools, never anyone else's."""

from __future__ import annotations

from typing import Any

import pytest

import toolrt

ECHO = "def handler(secret: str) -> str:\n    return secret\n"


def _tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": "Echo.", "language": "python", "code": ECHO}


@pytest.fixture
def rt() -> Any:
    with toolrt.connect("memory", sandbox="inprocess") as runtime:
        yield runtime


def test_an_agent_sees_its_calls_and_its_tools_calls_only(rt: Any) -> None:
    mine = rt.register_tool("alice", _tool("mine"), "public")
    theirs = rt.register_tool("mallory", _tool("theirs"), "public")
    rt.execute_tool("alice", mine.tool_id, {"secret": "a1"})
    rt.execute_tool("bob", mine.tool_id, {"secret": "b-calls-alice"})  # a call of alice's tool
    rt.execute_tool("bob", theirs.tool_id, {"secret": "b-secret"})  # nothing to do with alice
    rt.execute_tool("alice", theirs.tool_id, {"secret": "a2"})  # alice's own call of another's tool
    outputs = {e.output for e in rt.list_executions("alice").items}
    assert outputs == {"a1", "b-calls-alice", "a2"}
    hostile = {e.output for e in rt.list_executions("mallory").items}
    assert hostile == {"b-secret", "a2"}  # calls of mallory's tool, and nothing of alice's own tool
    assert {e.output for e in rt.list_executions("mallory", tool=mine.tool_id).items} == set()
    assert {e.output for e in rt.list_executions("alice", tool="theirs").items} == {"a2"}


def test_pages_follow_the_cursor_newest_first(rt: Any) -> None:
    reg = rt.register_tool("alice", _tool("echo"))
    for i in range(5):
        rt.execute_tool("alice", reg.tool_id, {"secret": str(i)})
    seen: list[str] = []
    cursor = None
    while True:
        page = rt.list_executions("alice", limit=2, cursor=cursor)
        seen += [e.output for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["4", "3", "2", "1", "0"]


def test_filters_and_bad_input(rt: Any) -> None:
    reg = rt.register_tool("alice", _tool("echo"))
    rt.execute_tool("alice", reg.tool_id, {"secret": "x"})
    assert len(rt.list_executions("alice", status="succeeded").items) == 1
    assert rt.list_executions("alice", status="failed").items == ()
    with pytest.raises(toolrt.ValidationError, match="cursor"):
        rt.list_executions("alice", cursor="garbage")
    with pytest.raises(toolrt.ValidationError, match="limit"):
        rt.list_executions("alice", limit=0)
    with pytest.raises(toolrt.ValidationError):
        rt.list_executions("alice", status="exploded")


def test_cli_history_lists_what_the_agent_may_see(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    tool = tmp_path / "echo.py"
    tool.write_text('def handler(secret: str) -> str:\n    """Echo a secret."""\n    return secret\n')
    app = build_app()
    base = ["--data-dir", str(tmp_path / "store")]
    assert CliRunner().invoke(app, [*base, "--agent", "alice", "register", str(tool)]).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--agent", "alice", "invoke", "echo", "secret=s1"]).exit_code == 0
    mine = json.loads(CliRunner().invoke(app, [*base, "--agent", "alice", "--json", "history"]).stdout)
    assert [e["output"] for e in mine["executions"]] == ["s1"]
    other = json.loads(CliRunner().invoke(app, [*base, "--agent", "mallory", "--json", "history"]).stdout)
    assert other["executions"] == []
    table = CliRunner().invoke(app, [*base, "--agent", "alice", "history"])
    assert table.exit_code == 0 and "succeeded" in table.stdout
