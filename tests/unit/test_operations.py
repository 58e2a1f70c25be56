"""One table of operations: the MCP management tools and the CLI commands run the same entries."""

from __future__ import annotations

import pytest

from tests.fakes import memory_runtime
from toolrt.adapters.mcp import management
from toolrt.adapters.operations import OPERATIONS, ToolOperation, run_on_tool
from toolrt.contracts import builders as b
from toolrt.domain import ValidationError


def test_every_management_tool_is_an_operation_of_the_table() -> None:
    """Each MCP management tool (and so each manage_tools action) is dispatched from the table, but
    the two whose answers are the session's own (a search's names, a tool call's result)."""
    assert set(OPERATIONS) == set(management.FULL_NAMES) - {"call_tool", "search_tools"}
    assert set(management.ACTIONS.values()) - {"call_tool"} <= set(OPERATIONS)


def test_a_tool_operation_gives_the_view_both_surfaces_show() -> None:
    """rollback through the table answers with the tool's view, its version in force."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition())
    tool = rt.update_tool("agent-a", reg.tool_id, b.definition(code=b.definition().code + "\n# v2\n")).tool
    view = run_on_tool("rollback_tool", rt, "agent-a", tool, {"version": 1})
    assert (view["tool_id"], view["version"]) == (reg.tool_id, 1)
    assert isinstance(OPERATIONS["list_versions"], ToolOperation)
    listing = run_on_tool("list_versions", rt, "agent-a", rt.get_tool(reg.tool_id), {})
    assert [(v["version"], v["current"]) for v in listing["versions"]] == [(1, True), (2, False)]


def test_a_version_must_be_an_integer() -> None:
    """A JSON true is not version 1: the operation refuses it before the runtime is asked."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition())
    with pytest.raises(ValidationError, match="version must be an integer"):
        run_on_tool("promote", rt, "agent-a", reg.tool, {"version": True})
