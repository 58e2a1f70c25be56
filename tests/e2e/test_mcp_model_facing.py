"""What a model meets on toolrt's MCP server, through the official SDK client: readable errors on every
path, a result that is the tool's value, two annotated tools of toolrt's own, names that are identifiers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import structlog
from mcp import Client, StdioServerParameters

from tests.e2e.harness import SharedRuntimes
from tests.e2e.test_mcp import HttpServer
from toolrt.domain import ValidationError

STRICT = {
    "name": "strict",
    "description": "Needs an integer.",
    "language": "python",
    "code": "def handler(x: int) -> str:\n    print('shouting', x)\n    return 'HI' * x\n",
}


def _text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def _progress(progress: float, total: float | None, message: str | None) -> None:
    """A progress callback: its presence makes the client send a progress token."""


@pytest.fixture
def http() -> Iterator[HttpServer]:
    import toolrt

    with toolrt.connect("memory") as rt, structlog.testing.capture_logs(), HttpServer(rt) as server:
        server.rt.register_tool("alice", STRICT)
        yield server


def _stdio(tmp_path: Path) -> StdioServerParameters:
    import toolrt

    with toolrt.connect("local", data_dir=tmp_path / "data") as rt:
        rt.register_tool("alice", STRICT)
    script = Path(sys.executable).with_name("toolrt")
    args = ["--data-dir", str(tmp_path / "data"), "--agent", "alice", "serve"]
    return StdioServerParameters(command=str(script), args=args, env=dict(os.environ))


async def _bad_arguments(client: Client) -> list[str]:
    texts = []
    for callback in (None, _progress):  # without a progress token, and with one
        result = await client.call_tool("strict", {"x": "seven"}, progress_callback=callback)
        assert result.is_error
        texts.append(_text(result))
    return texts


def test_bad_arguments_read_the_same_with_or_without_a_progress_token_over_http(http: HttpServer) -> None:
    """With a progress token (pydantic-ai sends one on every call) bad arguments still come back as toolrt's
    validation message, not an ExceptionGroup or an internal error."""

    async def scenario() -> list[str]:
        async with http.client(headers={"X-Toolrt-Agent": "alice"}) as client:
            return await _bad_arguments(client)

    plain, with_token = anyio.run(scenario)
    assert plain == with_token
    assert "'seven' is not of type 'integer'" in with_token and "ExceptionGroup" not in with_token


def test_bad_arguments_read_the_same_with_a_progress_token_over_stdio(tmp_path: Path) -> None:
    """The same over stdio, from `toolrt serve` as an MCP host starts it."""

    async def scenario() -> list[str]:
        async with Client(_stdio(tmp_path), mode="legacy") as client:
            return await _bad_arguments(client)

    plain, with_token = anyio.run(scenario)
    assert plain == with_token and "'seven' is not of type 'integer'" in with_token


def test_a_result_is_the_value_once_with_printed_output_aside(http: HttpServer) -> None:
    """A string value is one text block with the string and structuredContent {"result": ...}; what the tool
    printed is in _meta, with a progress token or without."""

    async def scenario() -> list[types.CallToolResult]:
        async with http.client(headers={"X-Toolrt-Agent": "alice"}) as client:
            return [await client.call_tool("strict", {"x": 2}, progress_callback=cb) for cb in (None, _progress)]

    for result in anyio.run(scenario):
        assert not result.is_error
        assert [c.text for c in result.content if isinstance(c, types.TextContent)] == ["HIHI"]
        assert len(result.content) == 1 and result.structured_content == {"result": "HIHI"}
        assert result.meta is not None and "shouting 2" in result.meta["toolrt/stdout"]


def test_toolrts_own_tools_are_two_by_default_and_all_annotated(runtimes: SharedRuntimes) -> None:
    """By default search_tools and manage_tools beside the agent's tools; management_tools='full' lists
    each of toolrt's tools; every one of them carries read-only/destructive/idempotent hints."""

    async def listed(server: HttpServer) -> dict[str, Any]:
        async with server.client(headers={"X-Toolrt-Agent": "alice"}) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime()) as server:
        server.rt.register_tool("alice", STRICT)
        compact = anyio.run(listed, server)
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), management_tools="full") as server:
        full = anyio.run(listed, server)
    assert set(compact) == {"strict", "search_tools", "manage_tools"}
    assert {"register_tool", "deregister_tool", "list_versions", "search_tools"} <= set(full)
    for tools in (compact, full):
        for name, tool in tools.items():
            if name == "strict":
                continue
            hints = tool.annotations
            assert hints is not None and None not in (
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
            )
    assert compact["search_tools"].annotations.read_only_hint is True
    assert compact["manage_tools"].annotations.destructive_hint is True
    assert full["deregister_tool"].annotations.destructive_hint is True
    assert full["list_versions"].annotations.read_only_hint is True


def test_manage_tools_registers_calls_and_deregisters(http: HttpServer) -> None:
    """manage_tools' actions do what the full set's tools do, each checked against that tool's schema."""

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "alice"}) as client:
            made = await client.call_tool("manage_tools", {"action": "register", **STRICT, "name": "twice"})
            assert not made.is_error, _text(made)
            called = await client.call_tool("manage_tools", {"action": "call", "tool": "twice", "arguments": {"x": 1}})
            assert called.structured_content == {"result": "HI"}
            bad = await client.call_tool("manage_tools", {"action": "deregister", "tool": "twice", "purge": "false"})
            assert bad.is_error and "purge" in _text(bad)
            gone = await client.call_tool("manage_tools", {"action": "deregister", "tool": "twice"})
            assert not gone.is_error, _text(gone)
            unknown = await client.call_tool("manage_tools", {"action": "explode"})
            assert unknown.is_error and "action" in _text(unknown)

    anyio.run(scenario)


def test_server_options_are_checked(runtimes: SharedRuntimes) -> None:
    """An unknown management_tools or printed mode is a ValidationError naming the choices."""
    from toolrt.adapters.mcp.server import ToolrtMcpServer

    with pytest.raises(ValidationError, match="compact"):
        ToolrtMcpServer(runtimes.runtime(), management_tools="some")
    with pytest.raises(ValidationError, match="meta"):
        ToolrtMcpServer(runtimes.runtime(), printed="stderr")
