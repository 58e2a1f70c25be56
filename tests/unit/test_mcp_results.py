"""A tool call's MCP result is its value once; toolrt's own tools are two by default, each annotated."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("mcp")

from toolrt.adapters.mcp import management, results  # noqa: E402
from toolrt.contracts import builders as b  # noqa: E402
from toolrt.domain import (  # noqa: E402
    Execution,
    ExecutionFailure,
    ExecutionStatus,
    Tool,
    ValidationError,
    Visibility,
)


def _wire(result: Any) -> dict[str, Any]:
    wire: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True)
    return wire


def _execution(output: Any = None, *, stdout: str = "", ok: bool = True) -> Execution:
    status = ExecutionStatus.SUCCEEDED if ok else ExecutionStatus.FAILED
    error = None if ok else ExecutionFailure("ValueError", "kaput", "Traceback...\n  line 3\nValueError: kaput")
    return Execution(
        execution_id="e",
        tool_id="t",
        version=1,
        caller="a",
        status=status,
        created_at=b.T0,
        output=output,
        stdout=stdout,
        error=error,
    )


@pytest.mark.parametrize(
    ("value", "text", "structured"),
    [
        (5, "5", {"result": 5}),
        ("HI", "HI", {"result": "HI"}),
        ([1, 2], "[1, 2]", {"result": [1, 2]}),
        ({"sum": 5}, '{"sum": 5}', {"sum": 5}),
        (None, "null", {"result": None}),
    ],
)
def test_every_value_is_one_text_block_and_structured_content(value: Any, text: str, structured: Any) -> None:
    """A number, a string, a list, an object, None: one text block with the value, and structuredContent."""
    tool = b.tool()
    wire = _wire(results.execution_result(_execution(value), "add", tool))
    assert wire["content"] == [{"type": "text", "text": text}]
    assert wire["structuredContent"] == structured and wire["isError"] is False


def test_printed_output_is_in_meta_never_a_second_block() -> None:
    """What the tool printed is in _meta (toolrt/stdout); the content is the value alone."""
    wire = _wire(results.execution_result(_execution("HI", stdout="working on hi\n"), "chatty", b.tool()))
    assert wire["content"] == [{"type": "text", "text": "HI"}]
    assert wire["_meta"] == {results.STDOUT_KEY: "working on hi\n"}


def test_printed_output_in_the_text_block_is_an_opt_in() -> None:
    """printed='text' appends the output to the one text block; structuredContent stays the value."""
    wire = _wire(results.execution_result(_execution("HI", stdout="working\n"), "chatty", b.tool(), printed="text"))
    (block,) = wire["content"]
    assert block["text"].startswith("HI") and "working" in block["text"]
    assert wire["structuredContent"] == {"result": "HI"}


def test_a_failed_call_is_one_error_block_with_the_tools_traceback_and_output() -> None:
    """A failure is one text block: the error, the tool's frames, what it printed."""
    wire = _wire(results.execution_result(_execution(ok=False, stdout="before\n"), "boom", b.tool()))
    (block,) = wire["content"]
    assert wire["isError"] is True and "ValueError: kaput" in block["text"] and "line 3" in block["text"]
    assert "before" in block["text"] and "structuredContent" not in wire


def test_a_declared_output_schema_that_is_no_object_is_listed_wrapped() -> None:
    """output_schema {"type": "integer"} is listed as {"result": integer}, and the value comes wrapped to match."""

    def declaring(schema: Any) -> Tool:
        definition = b.definition(output_schema=schema)
        return Tool.create(tool_id="t", owner="a", definition=definition, now=b.T0, visibility=Visibility.PRIVATE)

    number = declaring({"type": "integer"})
    assert results.output_schema(number) == {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    obj = {"type": "object", "properties": {"sum": {"type": "integer"}}}
    assert results.output_schema(declaring(obj)) == obj
    assert results.output_schema(b.tool()) is None
    array = declaring({"type": "array"})
    assert _wire(results.execution_result(_execution({"a": 1}), "x", array))["structuredContent"] == {
        "result": {"a": 1}
    }


def test_by_default_two_of_toolrts_tools_are_listed_each_annotated() -> None:
    """search_tools (read-only) and manage_tools (destructive); the full set is an option; every one annotated."""
    compact = {t.name: t for t in management.listed(full=False, searching=False)}
    assert set(compact) == {"search_tools", "manage_tools"}
    hints = {name: _wire(t)["annotations"] for name, t in compact.items()}
    assert hints["search_tools"]["readOnlyHint"] is True and hints["search_tools"]["destructiveHint"] is False
    assert hints["manage_tools"]["readOnlyHint"] is False and hints["manage_tools"]["destructiveHint"] is True
    full = management.listed(full=True, searching=False)
    assert len(full) == 12 and all(_wire(t).get("annotations") for t in full)
    assert "call_tool" in {t.name for t in management.listed(full=True, searching=True)}


def test_manage_tools_actions_stand_for_the_full_set() -> None:
    """An action becomes the full-set tool it names; call's tool/arguments become call_tool's name/arguments."""
    assert management.resolve("manage_tools", {"action": "deregister", "tool": "add", "purge": True}) == (
        "deregister_tool",
        {"tool": "add", "purge": True},
    )
    assert management.resolve("manage_tools", {"action": "call", "tool": "add", "arguments": {"a": 1}}) == (
        "call_tool",
        {"name": "add", "arguments": {"a": 1}},
    )
    assert management.resolve("register_tool", {"name": "x"}) == ("register_tool", {"name": "x"})
    with pytest.raises(ValidationError, match="action must be one of"):
        management.resolve("manage_tools", {"action": "explode"})
