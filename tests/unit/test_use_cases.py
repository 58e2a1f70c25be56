"""The use cases' business rules on the memory adapters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import CountingValidator, EchoSandbox, FlakyGateway, memory_runtime
from toolrt.application import ExecutionPolicy, ToolRuntime
from toolrt.contracts import builders as b
from toolrt.domain import (
    ExecutionStatus,
    NotFoundError,
    RegistrationError,
    ToolStatus,
    ValidationError,
)

CODE = "def handler(a, b):\n    return a + b\n"


def ports(rt: ToolRuntime) -> Any:
    return rt.ports


def test_register_and_execute() -> None:
    """A registered tool runs with its params and the execution is recorded."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    assert reg.version == 1 and not reg.cache_hit and reg.report.ok
    result = rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.output == {"echo": {"a": 1, "b": 2}}
    assert rt.execution_status(result.execution_id) == result
    assert rt.get_tool_status(reg.tool_id).published


def test_identical_code_from_two_agents_is_one_artifact_validated_once() -> None:
    """Identical code to a tool the agent can see is a cache hit and does not call the validator."""
    rt = memory_runtime()
    validator: CountingValidator = ports(rt).validator
    first = rt.register_tool("agent-a", b.definition("adder", CODE), "public")
    second = rt.register_tool("agent-b", b.definition("plus", CODE.replace("\n", "\r\n") + "   \n"))
    assert validator.calls == 1
    assert second.cache_hit and not first.cache_hit
    assert first.code_hash == second.code_hash
    assert list(ports(rt).artifacts.hashes()) == [first.code_hash]
    assert ports(rt).repository.references(first.code_hash) == {first.tool_id, second.tool_id}
    assert rt.metrics()["counters"]["artifact_cache|result=hit"] == 1


def test_identical_code_to_a_private_tool_reveals_nothing_but_is_still_stored_once() -> None:
    """A hostile agent registering a victim's exact private code gets no cache hit (validation runs
    again, as for new code) and sees only the tools it may discover in shared_by; one artifact."""
    rt = memory_runtime()
    validator: CountingValidator = ports(rt).validator
    victim = rt.register_tool("victim", b.definition("secret", CODE))
    probe = rt.register_tool("mallory", b.definition("probe", CODE))
    assert not probe.cache_hit and validator.calls == 2
    assert probe.code_hash == victim.code_hash and list(ports(rt).artifacts.hashes()) == [probe.code_hash]
    assert rt.get_tool_status(probe.tool_id, "mallory").shared_by == 1
    assert rt.get_tool_status(probe.tool_id).shared_by == 2  # the runtime owner's view
    assert rt.metrics()["counters"]["artifact_cache|result=unseen"] == 1
    again = rt.register_tool("mallory", b.definition("probe2", CODE))  # her own tool uses it now
    assert again.cache_hit and validator.calls == 2


def test_a_new_policy_version_revalidates_cached_code() -> None:
    """Code validated under an older policy is validated again, not reused blindly."""
    rt = memory_runtime()
    rt.register_tool("agent-a", b.definition("one", CODE))
    validator: CountingValidator = ports(rt).validator
    validator.policy_version = "fake-2"
    reg = rt.register_tool("agent-b", b.definition("two", CODE))
    assert validator.calls == 2 and not reg.cache_hit
    assert ports(rt).artifacts.get(reg.code_hash).report.policy_version == "fake-2"


def test_gateway_failure_rolls_back_everything() -> None:
    """A gateway that fails on register leaves no tool record and no stray artifact or reference."""
    rt = memory_runtime()
    gateway: FlakyGateway = ports(rt).gateway
    gateway.fail_on.add("register")
    with pytest.raises(RegistrationError, match="gateway.register") as caught:
        rt.register_tool("agent-a", b.definition(code=CODE))
    assert caught.value.retryable
    assert rt.list_tools(status=None) == []
    assert list(ports(rt).artifacts.hashes()) == []
    assert gateway.published() == []
    assert rt.metrics()["counters"]["registrations|outcome=failure"] == 1


def test_gateway_failure_keeps_an_artifact_other_tools_use() -> None:
    """Rollback never deletes code that another tool still references."""
    rt = memory_runtime()
    kept = rt.register_tool("agent-a", b.definition("one", CODE))
    ports(rt).gateway.fail_on.add("register")
    with pytest.raises(RegistrationError):
        rt.register_tool("agent-b", b.definition("two", CODE))
    assert ports(rt).artifacts.get(kept.code_hash) is not None
    assert ports(rt).repository.references(kept.code_hash) == {kept.tool_id}


def test_invalid_code_is_refused_and_nothing_is_stored() -> None:
    """Code with error findings raises ValidationError carrying the report; nothing is kept."""
    rt = memory_runtime()
    with pytest.raises(ValidationError) as caught:
        rt.register_tool("agent-a", b.definition(code="def handler(:\n  pass"))
    assert caught.value.report.errors[0].rule_id == "syntax.python"
    assert caught.value.report.errors[0].line == 1
    assert rt.list_tools(status=None) == [] and list(ports(rt).artifacts.hashes()) == []


def test_update_creates_versions_and_rollback_restores() -> None:
    """Updates add versions; only new code is validated; rollback puts an old version back."""
    rt = memory_runtime()
    validator: CountingValidator = ports(rt).validator
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    upd = rt.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return a * b"))
    assert upd.version == 2 and upd.new_code and validator.calls == 2
    same = rt.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return a * b"))
    assert not same.new_version and same.version == 2
    desc = rt.update_tool("agent-a", reg.tool_id, b.definition(code=CODE, description="back to adding"))
    assert desc.version == 3 and not desc.new_code and validator.calls == 2
    rolled = rt.rollback_tool("agent-a", reg.tool_id, 2)
    assert rolled.current_version == 2
    assert [v.number for v in rt.list_versions(reg.tool_id)] == [1, 2, 3]
    assert rt.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return 0")).version == 4


def test_failed_gateway_update_leaves_the_previous_version_in_force() -> None:
    """If publishing an update fails, the old version stays current and new code is released."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    ports(rt).gateway.fail_on.add("update")
    new_code = "def handler(a, b):\n    return a - b"
    with pytest.raises(RegistrationError, match="version 1 stays in force"):
        rt.update_tool("agent-a", reg.tool_id, b.definition(code=new_code))
    tool = rt.get_tool(reg.tool_id)
    assert tool.current_version == 1 and tool.code_hashes == {reg.code_hash}
    assert len(list(ports(rt).artifacts.hashes())) == 1


def test_visibility_update_lets_others_execute() -> None:
    """A private tool is the owner's (by id, another agent finds none); shared lets anyone with the
    id execute; public lists it too."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    with pytest.raises(NotFoundError):
        rt.execute_tool("agent-b", reg.tool_id, {"a": 1, "b": 1})
    rt.update_tool("agent-a", reg.tool_id, visibility="shared")
    assert rt.execute_tool("agent-b", reg.tool_id, {"a": 1, "b": 1}).ok
    assert rt.list_tools("agent-b") == []
    rt.update_tool("agent-a", reg.tool_id, visibility="public")
    assert [t.tool_id for t in rt.list_tools("agent-b")] == [reg.tool_id]


def test_deregister_deletes_unshared_artifacts_only() -> None:
    """Deregistering frees code only when no other tool references it."""
    rt = memory_runtime()
    a = rt.register_tool("agent-a", b.definition("one", CODE))
    c = rt.register_tool("agent-b", b.definition("two", CODE), "public")
    first = rt.deregister_tool("agent-a", a.tool_id)
    assert first.clean and first.deleted_artifacts == ()  # agent-a can see agent-b's tool using it
    assert rt.get_tool(a.tool_id).status is ToolStatus.INACTIVE
    second = rt.deregister_tool("agent-b", c.tool_id, purge=True)
    assert second.deleted_artifacts == (c.code_hash,)
    assert list(ports(rt).artifacts.hashes()) == []
    with pytest.raises(NotFoundError):
        rt.get_tool(c.tool_id)


def test_deregistering_never_tells_whether_a_hidden_tool_keeps_the_code() -> None:
    """A hostile agent guessing a victim's private code learns nothing from deregistering its copy:
    the reply and the status of its own inactive tool are those of a wrong guess."""
    rt = memory_runtime()
    rt.register_tool("victim", b.definition("secret", CODE))
    probe = rt.register_tool("mallory", b.definition("probe", CODE), on_duplicate="create")
    other = "def handler(a: int, b: int) -> int:\n    return a * b + 1\n"
    wrong = rt.register_tool("mallory", b.definition("wrong", other), on_duplicate="create")
    answers = []
    for reg in (probe, wrong):
        gone = rt.deregister_tool("mallory", reg.tool_id)
        status = rt.get_tool_status(reg.tool_id, "mallory")
        answers.append((reg.cache_hit, len(gone.deleted_artifacts), status.artifact_stored, status.shared_by))
    assert answers[0] == answers[1] == (False, 1, False, 0)
    assert ports(rt).artifacts.get(probe.code_hash) is not None  # kept: the victim's tool uses it
    assert rt.get_tool_status(probe.tool_id).artifact_stored  # the runtime owner's view says so


def test_deregister_continues_past_a_failing_gateway() -> None:
    """A failing gateway is reported, and the rest of the cleanup still happens."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    ports(rt).gateway.fail_on.add("deregister")
    result = rt.deregister_tool("agent-a", reg.tool_id)
    assert not result.clean and "gateway" in result.problems[0]
    assert rt.get_tool(reg.tool_id).status is ToolStatus.INACTIVE
    assert result.deleted_artifacts == (reg.code_hash,)


def test_inactive_tools_cannot_run() -> None:
    """After deregistration, execution is refused with NotFoundError."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    rt.deregister_tool("agent-a", reg.tool_id)
    with pytest.raises(NotFoundError, match="active tool"):
        rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})


def test_limits_are_capped_by_the_policy() -> None:
    """A tool's asks above the configured maxima are capped before the sandbox starts."""
    sandbox = EchoSandbox()
    rt = memory_runtime(
        ExecutionPolicy(max_timeout_s=5, max_memory_mb=128, default_max_output_bytes=1000), sandbox=sandbox
    )
    reg = rt.register_tool("agent-a", b.definition(code=CODE, limits={"timeout_s": 600, "memory_mb": 4096}))
    assert any("timeout_s 600.0 capped at 5" in w for w in reg.warnings)
    rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})
    request = sandbox.requests[-1]
    assert (request.timeout_s, request.memory_mb, request.max_output_bytes) == (5, 128, 1000)


def test_output_schema_is_enforced() -> None:
    """A return value that breaks the output_schema makes the execution failed."""
    rt = memory_runtime()
    reg = rt.register_tool(
        "agent-a",
        b.definition(code=CODE, input_schema={"type": "object"}, output_schema={"type": "number"}),
    )
    result = rt.execute_tool("agent-a", reg.tool_id, {"output": "not a number"})
    assert result.status is ExecutionStatus.FAILED and result.error is not None
    assert result.error.type == "OutputSchemaError"
    assert rt.execute_tool("agent-a", reg.tool_id, {"output": 3}).ok


def test_background_execution_start_wait_cancel() -> None:
    """start returns a pending execution; wait returns it final; cancel stops a running one."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE, input_schema={"type": "object"}))
    pending = rt.start_execution("agent-a", reg.tool_id, {"x": 1})
    assert pending.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.SUCCEEDED)
    done = rt.wait_execution(pending.execution_id, poll_interval_s=0.01, max_attempts=500)
    assert done.status is ExecutionStatus.SUCCEEDED
    blocking = rt.start_execution("agent-a", reg.tool_id, {"block_s": 30})
    with pytest.raises(NotFoundError):  # another agent's execution: as an unknown id
        rt.cancel_execution("agent-b", blocking.execution_id)
    rt.cancel_execution("agent-a", blocking.execution_id)
    assert rt.wait_execution(blocking.execution_id, 0.01, 500).status is ExecutionStatus.CANCELLED
    rt.close()


def test_async_runtime() -> None:
    """The asyncio twin registers and executes like the synchronous runtime."""
    from toolrt import AsyncToolRuntime

    async def main() -> None:
        async with AsyncToolRuntime(memory_runtime()) as art:
            reg = await art.register_tool("agent-a", b.definition(code=CODE))
            result = await art.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})
            assert result.ok
            started = await art.start_execution("agent-a", reg.tool_id, {"a": 2, "b": 2})
            final = await art.wait_execution(started.execution_id, 0.01, 500)
            assert final.status is ExecutionStatus.SUCCEEDED
            assert [t.tool_id for t in await art.list_tools("agent-a")] == [reg.tool_id]

    asyncio.run(main())


def test_metrics_snapshot() -> None:
    """rt.metrics() counts registrations, cache results, executions by status, errors and durations."""
    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})
    with pytest.raises(ValidationError):
        rt.register_tool("agent-a", b.definition("bad", code="def handler(:"))
    snap = rt.metrics()
    counters = snap["counters"]
    assert counters["registrations|outcome=success"] == 1
    assert counters["registrations|outcome=failure"] == 1
    assert counters["errors|operation=register,type=ValidationError"] == 1
    assert counters["executions|language=python,status=succeeded"] == 1
    assert snap["timings"]["execution_ms|status=succeeded"]["count"] == 1
    assert snap["timings"]["registration_ms|cache=miss"]["count"] == 1


def test_the_runtime_owner_can_apply_a_stricter_policy_to_one_registration() -> None:
    """A validator passed by the embedding application re-validates cached code under its policy."""

    class Strict(CountingValidator):
        def validate(self, definition: Any) -> Any:
            report = super().validate(definition)
            if "risky" in definition.code:
                from toolrt.domain import Finding, Severity, ValidationReport

                return ValidationReport(
                    (*report.findings, Finding("security.risky", Severity.ERROR, "risky code")), self.policy_version
                )
            return report

    rt = memory_runtime()
    code = CODE + "# risky\n"
    rt.register_tool("agent-a", b.definition("one", code))
    strict = Strict("strict-1")
    with pytest.raises(ValidationError, match="risky code"):
        rt.register_tool("agent-b", b.definition("two", code), validator=strict)
    assert strict.calls == 1
    assert len(rt.list_tools(status=None)) == 1


def test_a_gateway_that_forgot_the_tool_gets_it_published_again() -> None:
    """An update after the gateway lost the tool (a restart) republishes it instead of failing."""
    from toolrt.adapters.memory import InProcessGateway

    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    fresh = InProcessGateway()
    rt2 = memory_runtime(repository=rt.ports.repository, artifacts=rt.ports.artifacts, gateway=fresh)
    upd = rt2.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return a * b"))
    assert upd.version == 2
    assert reg.tool_id in fresh.published()
    assert rt2.get_tool(reg.tool_id).gateway_ref == reg.tool_id
    assert rt2.rollback_tool("agent-a", reg.tool_id, 1).current_version == 1


def test_a_tool_keeps_a_bounded_number_of_code_versions() -> None:
    """Past MAX_CODE_VERSIONS distinct codes an update is LimitExceededError; the tool is unchanged."""
    from toolrt.domain import LimitExceededError
    from toolrt.domain.models import MAX_CODE_VERSIONS

    rt = memory_runtime()
    reg = rt.register_tool("agent-a", b.definition(code=CODE))
    for i in range(1, MAX_CODE_VERSIONS):
        rt.update_tool("agent-a", reg.tool_id, b.definition(code=f"def handler(a, b):\n    return a + b + {i}"))
    before = rt.get_tool(reg.tool_id)
    stored = sorted(rt.ports.artifacts.hashes())
    with pytest.raises(LimitExceededError, match="different code versions"):
        rt.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return -1"))
    assert rt.get_tool(reg.tool_id) == before
    assert sorted(rt.ports.artifacts.hashes()) == stored
    assert rt.update_tool("agent-a", reg.tool_id, b.definition(code=CODE)).version == MAX_CODE_VERSIONS + 1


def test_a_sandbox_result_is_an_executions_outcome_field_for_field() -> None:
    """Every field of SandboxResult is a field of Execution with the same type, so a result becomes
    an execution without copying field by field (and neither can drift from the other)."""
    import typing

    from toolrt.domain import Execution
    from toolrt.ports import SandboxResult

    execution = typing.get_type_hints(Execution)
    for name, kind in typing.get_type_hints(SandboxResult).items():
        assert name in execution, name
        assert kind == execution[name], name
