"""Failures in the middle of a use case leave nothing behind, and races over shared code lose nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import memory_runtime
from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryToolRepository
from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, ExecutionError, ExecutionStatus, TransientError, ValidationError
from toolrt.ports import ToolQuery

CODE = "def handler(a, b):\n    return a + b\n"


class FlakyArtifacts(InMemoryArtifactStore):
    """Fails the n-th get from now on (1-based), once."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_get_at: int | None = None

    def get(self, code_hash: CodeHash) -> Any:
        if self.fail_get_at is not None:
            self.fail_get_at -= 1
            if self.fail_get_at == 0:
                self.fail_get_at = None
                raise TransientError("artifact store throttled (injected)")
        return super().get(code_hash)


def test_a_store_failure_after_the_record_was_added_rolls_back() -> None:
    """If re-checking the artifact fails after the record exists, the record goes too; a retry works."""
    artifacts = FlakyArtifacts()
    rt = memory_runtime(artifacts=artifacts)
    artifacts.fail_get_at = 2  # the lookup passes, the re-check after adding the record fails
    with pytest.raises(TransientError):
        rt.register_tool("agent-a", b.definition(code=CODE))
    assert rt.list_tools(status=None) == []
    assert list(artifacts.hashes()) == []
    assert rt.register_tool("agent-a", b.definition(code=CODE)).version == 1


class RacingRepository(InMemoryToolRepository):
    """Runs ``during`` once, the first time the references of a hash are read."""

    def __init__(self) -> None:
        super().__init__()
        self.during: Any = None

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        found = super().references(code_hash)
        action, self.during = self.during, None
        if action is not None:
            action()
        return found


def test_a_registration_racing_a_deregistration_keeps_the_shared_artifact() -> None:
    """Deregistering the last user of some code while another agent registers it keeps the code."""
    repo = RacingRepository()
    rt = memory_runtime(repository=repo)
    first = rt.register_tool("agent-a", b.definition("one", CODE), "public")
    second: list[Any] = []
    repo.during = lambda: second.append(rt.register_tool("agent-b", b.definition("two", CODE)))
    rt.deregister_tool("agent-a", first.tool_id)
    # No tool agent-b can see uses the code at that moment, so it is validated again (no hit shown).
    assert second and not second[0].cache_hit
    assert rt.get_tool_status(second[0].tool_id).artifact_stored
    assert repo.references(first.code_hash) == {second[0].tool_id}


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}, "nothing at that location"),
        (
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}},
            "only references inside the schema",
        ),
    ],
)
def test_unresolvable_refs_are_refused_at_registration(schema: dict[str, Any], words: str) -> None:
    """A $ref that cannot be resolved is a ValidationError at registration, not a crash at execution."""
    rt = memory_runtime()
    with pytest.raises(ValidationError, match=words):
        rt.register_tool("agent-a", b.definition(code=CODE, input_schema=schema))
    assert rt.list_tools(status=None) == []


def test_local_refs_work() -> None:
    """A schema with local $defs registers and validates params through its references."""
    rt = memory_runtime()
    schema = {
        "type": "object",
        "$defs": {"n": {"type": "number"}},
        "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#/$defs/n"}},
    }
    reg = rt.register_tool("agent-a", b.definition(code=CODE, input_schema=schema))
    assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).ok
    with pytest.raises(ValidationError, match="is not of type 'number'"):
        rt.execute_tool("agent-a", reg.tool_id, {"a": "x", "b": 2})


def test_an_output_schema_that_cannot_be_applied_fails_the_call_and_is_recorded() -> None:
    """Even a broken output_schema gives a recorded, failed execution rather than an exception."""
    rt = memory_runtime()
    reg = rt.register_tool(
        "agent-a", b.definition(code=CODE, input_schema={"type": "object"}, output_schema={"type": "number"})
    )
    broken = {"$ref": "#/$defs/absent"}
    tool = rt.get_tool(reg.tool_id)
    # A record written by an older toolrt that did not check references.
    import attrs

    old = attrs.evolve(tool.current, definition=attrs.evolve(tool.definition, output_schema=broken))
    rt.ports.repository.save(attrs.evolve(tool, versions=(old,), record_version=tool.record_version + 1))
    result = rt.execute_tool("agent-a", reg.tool_id, {"output": 3})
    assert result.status is ExecutionStatus.FAILED and result.error is not None
    assert result.error.type == "OutputSchemaError"
    assert rt.execution_status(result.execution_id) == result


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (
            lambda rt, t: rt.register_tool("agent-a", b.definition("x", CODE + "#x\n"), "secret"),
            "visibility must be one of: private, shared, public",
        ),
        (lambda rt, t: rt.update_tool("agent-a", t, visibility="everyone"), "visibility must be one of"),
        (lambda rt, t: rt.list_tools(status="gone"), "status must be one of: active, inactive"),
        (lambda rt, t: rt.execute_tool("agent-a", t, {"a": 1, "b": 2}, version=True), "version must be an integer"),
        (lambda rt, t: rt.list_tools(limit=-1), "limit must be a non-negative integer"),
    ],
)
def test_bad_enum_and_number_arguments_are_validation_errors(call: Any, words: str) -> None:
    """Wrong visibility, status, version or limit values are ValidationErrors naming what is allowed."""
    rt = memory_runtime()
    tool_id = rt.register_tool("agent-a", b.definition(code=CODE)).tool_id
    before = rt.list_tools(status=None)
    with pytest.raises(ValidationError) as caught:
        call(rt, tool_id)
    assert words in str(caught.value) or any(words in f.message for f in caught.value.report.findings)
    assert rt.list_tools(status=None) == before


def test_a_closed_runtime_refuses_executions() -> None:
    """After close(), executing raises ExecutionError instead of silently starting new pools."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    rt.close()
    with pytest.raises(ExecutionError, match="closed"):
        rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})
    with pytest.raises(ExecutionError, match="closed"):
        rt.start_execution("agent-a", reg.tool_id, {"a": 1, "b": 2})
    assert ToolQuery(limit=0).limit == 0
