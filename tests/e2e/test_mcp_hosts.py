"""What an MCP host (Claude Desktop, Cursor, VS Code) meets: a ready entry, the user's store, full results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import structlog
from mcp import Client, StdioServerParameters

import toolrt
from tests.e2e.harness import EXAMPLES
from tests.e2e.test_mcp import HttpServer, _text

EXE = str(Path(sys.executable).parent / "toolrt")


def _toolrt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def test_the_printed_entry_starts_a_server_on_the_users_store_from_anywhere(tmp_path: Path) -> None:
    """`toolrt mcp config` gives absolute paths: started from /, the server sees the tool the CLI registered."""
    store = tmp_path / "store"
    assert (
        _toolrt(
            "--data-dir", str(store), "--agent", "alice", "register", str(EXAMPLES / "python" / "add.py")
        ).returncode
        == 0
    )
    printed = _toolrt("--data-dir", str(store), "--agent", "alice", "mcp", "config", "--host", "claude")
    assert printed.returncode == 0, printed.stderr
    server = json.loads(printed.stdout)["mcpServers"]["toolrt"]
    assert Path(server["command"]).is_absolute() and str(store.resolve()) in server["args"]
    params = StdioServerParameters(
        command=server["command"], args=server["args"], cwd="/", env={"PATH": "/usr/bin:/bin"}
    )

    async def scenario() -> None:
        async with Client(params, mode="legacy") as client:
            assert "add" in {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("add", {"a": 2, "b": 3})
            assert not result.is_error and _text(result) == "5"

    anyio.run(scenario)


def test_vscode_and_cursor_entries_have_their_hosts_shapes(tmp_path: Path) -> None:
    """VS Code's entry lives under 'servers' with type stdio; Cursor's under 'mcpServers'."""
    vscode = json.loads(_toolrt("--data-dir", str(tmp_path), "mcp", "config", "--host", "vscode").stdout)
    assert vscode["servers"]["toolrt"]["type"] == "stdio"
    cursor = json.loads(_toolrt("--data-dir", str(tmp_path), "mcp", "config", "--host", "cursor").stdout)
    assert "toolrt" in cursor["mcpServers"]
    refused = _toolrt("mcp", "config", "--host", "emacs")
    assert refused.returncode == 2 and "claude, cursor or vscode" in refused.stderr


PRINTS = {
    "name": "stats",
    "description": "Count and sum, saying so.",
    "language": "python",
    "code": "def helper(xs):\n    return sum(xs) / 0 if not xs else sum(xs)\n\n"
    "def handler(xs: list) -> dict:\n    print('summing', len(xs))\n    return {'n': len(xs), 'total': helper(xs)}\n",
    "input_schema": {"type": "object", "properties": {"xs": {"type": "array"}}, "required": ["xs"]},
    "output_schema": {"type": "object", "properties": {"n": {"type": "integer"}, "total": {"type": "number"}}},
}


def test_results_carry_stdout_structured_content_and_the_tools_own_traceback() -> None:
    """A listed tool has its outputSchema; a call returns structuredContent, one text block with the value and
    what it printed in _meta (never a second block); a failure shows the tool's lines and what it printed."""
    with toolrt.connect("memory") as rt, structlog.testing.capture_logs(), HttpServer(rt) as server:
        rt.register_tool("mcp-agent", PRINTS)

        async def scenario() -> None:
            async with server.client(headers={"X-Toolrt-Agent": "mcp-agent"}) as client:
                listed = {t.name: t for t in (await client.list_tools()).tools}
                assert listed["stats"].output_schema == PRINTS["output_schema"]
                ok = await client.call_tool("stats", {"xs": [1, 2]})
                assert not ok.is_error and ok.structured_content == {"n": 2, "total": 3}
                assert len(ok.content) == 1 and "summing 2" not in _text(ok)
                assert ok.meta is not None and "summing 2" in ok.meta["toolrt/stdout"]
                failed = await client.call_tool("stats", {"xs": []})
                text = _text(failed)
                assert failed.is_error and 'File "tool.py", line 2, in helper' in text and "summing 0" in text
                assert (
                    text.count("ZeroDivisionError: division by zero") == 2
                )  # the reason, then the traceback's last line

        anyio.run(scenario)
