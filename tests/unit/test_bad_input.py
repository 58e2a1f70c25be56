"""Bad input gets a typed error with a clear message, and the store is left exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from tests.fakes import EchoSandbox, memory_runtime
from toolrt.application import ToolRuntime
from toolrt.contracts import builders as b
from toolrt.domain import NotFoundError, OwnershipError, ToolRuntimeError, ValidationError

CODE = "def handler(a, b):\n    return a + b\n"


def snapshot(rt: ToolRuntime) -> tuple[Any, ...]:
    tools = rt.list_tools(status=None)
    artifacts = sorted(rt.ports.artifacts.hashes())
    return (tools, artifacts, list(rt.ports.gateway.published()))


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "add",
        "description": "adds",
        "language": "python",
        "code": CODE,
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    }
    data.update(changes)
    return data


@pytest.fixture
def rt() -> ToolRuntime:
    runtime = memory_runtime()
    runtime.register_tool("agent-a", good(name="existing"))
    return runtime


@pytest.mark.parametrize(
    ("definition", "rule", "words"),
    [
        (good(name="1bad"), "definition.name", "invalid tool name '1bad'"),
        (good(name="has space"), "definition.name", "invalid tool name"),
        (good(name="x" * 65), "definition.name", "invalid tool name"),
        (good(input_schema={"type": "array"}), "definition.input_schema", "must describe an object"),
        (good(input_schema=["not", "a", "dict"]), "definition.input_schema", "must be a JSON Schema object"),
        (
            good(input_schema={"type": "object", "properties": {"a": {"type": "nonsense"}}}),
            "definition.input_schema",
            "not a valid JSON Schema at properties/a/type",
        ),
        (good(language="cobol"), "definition.language", "unknown language 'cobol'"),
        (good(code="   \n"), "definition.code", "code is empty"),
        (good(entrypoint="not valid"), "definition.entrypoint", "invalid entrypoint"),
        (good(limits={"timeout_s": -1}), "definition.limits.timeout_s", "must be a positive number"),
        (good(limits={"cpu": 3}), "definition.limits", "unknown limit(s): cpu"),
        (good(colour="blue"), "definition.unknown_field", "unknown field 'colour'"),
        ({"name": "x"}, "definition.missing_field", "missing required field 'code'"),
    ],
)
def test_bad_definitions(rt: ToolRuntime, definition: dict[str, Any], rule: str, words: str) -> None:
    """Each malformed definition names the rule and what was wrong; nothing changes."""
    before = snapshot(rt)
    with pytest.raises(ValidationError) as caught:
        rt.register_tool("agent-a", definition)
    assert rule in {f.rule_id for f in caught.value.report.errors}
    assert words in str(caught.value)
    assert snapshot(rt) == before


def test_bad_agent_id(rt: ToolRuntime) -> None:
    """An empty agent id is refused before anything happens."""
    before = snapshot(rt)
    with pytest.raises(ValidationError, match="agent_id"):
        rt.register_tool("  ", good())
    assert snapshot(rt) == before


def test_duplicate_active_name_conflicts(rt: ToolRuntime) -> None:
    """An agent cannot register a second active tool with a name it uses; nothing is stored."""
    from toolrt.domain import ConflictError

    before = snapshot(rt)
    with pytest.raises(ConflictError, match="already has an active tool named 'existing'"):
        rt.register_tool("agent-a", good(name="existing", code=CODE + "# other\n"))
    assert snapshot(rt) == before


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"a": 1}, "'b' is a required property"),
        ({"a": "one", "b": 2}, "a: 'one' is not of type 'number'"),
        ("not an object", "params must be a JSON object"),
    ],
)
def test_params_that_violate_the_schema(rt: ToolRuntime, params: Any, words: str) -> None:
    """Params are checked against the schema before any sandbox starts."""
    tool_id = rt.list_tools("agent-a")[0].tool_id
    before = snapshot(rt)
    with pytest.raises(ValidationError) as caught:
        rt.execute_tool("agent-a", tool_id, params)
    assert words in str(caught.value)
    assert cast(EchoSandbox, rt.ports.sandbox).requests == []
    assert snapshot(rt) == before


def test_unknown_tool_ids(rt: ToolRuntime) -> None:
    """Every operation on an unknown id is NotFoundError naming the id."""
    before = snapshot(rt)
    calls: list[Callable[[], object]] = [
        lambda: rt.execute_tool("agent-a", "tool-nope", {}),
        lambda: rt.update_tool("agent-a", "tool-nope", visibility="public"),
        lambda: rt.deregister_tool("agent-a", "tool-nope"),
        lambda: rt.rollback_tool("agent-a", "tool-nope", 1),
        lambda: rt.get_tool_status("tool-nope"),
        lambda: rt.execution_status("exec-nope"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match="nope"):
            call()
    assert snapshot(rt) == before


def test_non_owner_cannot_change_a_tool(rt: ToolRuntime) -> None:
    """Another agent's update, rollback or deregister of a private tool is refused as for an
    unknown id (NotFoundError: the id tells it nothing) and changes nothing."""
    tool_id = rt.list_tools("agent-a")[0].tool_id
    before = snapshot(rt)
    for call in (
        lambda: rt.update_tool("agent-b", tool_id, good(name="existing", code="def handler(a, b):\n    return 0")),
        lambda: rt.update_tool("agent-b", tool_id, visibility="public"),
        lambda: rt.deregister_tool("agent-b", tool_id),
        lambda: rt.rollback_tool("agent-b", tool_id, 1),
    ):
        with pytest.raises(NotFoundError, match=f"tool '{tool_id}' not found"):
            call()
    assert snapshot(rt) == before


def test_unknown_version(rt: ToolRuntime) -> None:
    """Rolling back to a version that does not exist is NotFoundError."""
    tool_id = rt.list_tools("agent-a")[0].tool_id
    with pytest.raises(NotFoundError, match="@7"):
        rt.rollback_tool("agent-a", tool_id, 7)


def test_errors_share_one_base() -> None:
    """Every error above is a ToolRuntimeError, so callers can catch toolrt's errors at once."""
    for cls in (ValidationError, NotFoundError, OwnershipError):
        assert issubclass(cls, ToolRuntimeError)
    assert b.definition().name == "add"
