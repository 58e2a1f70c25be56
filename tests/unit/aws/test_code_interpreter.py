"""The Code Interpreter sandbox against botocore's real wire protocol, with a local program runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.aws.fake_agentcore import FakeCodeInterpreter
from toolrt.adapters.aws.clients import retry_config
from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox, SandboxUnavailable, build_program
from toolrt.adapters.node import find_node
from toolrt.contracts import SandboxContract
from toolrt.domain import ExecutionError, ExecutionStatus, IsolationLevel, Language, TransientError
from toolrt.ports import Sandbox, SandboxRequest

pytestmark = pytest.mark.aws


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Retries are what is under test, not their back-off: no sleeping between attempts.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


def _client(max_attempts: int = 3) -> Any:
    return boto3.client("bedrock-agentcore", region_name="us-east-1", config=retry_config(max_attempts))


def _request(code: str, params: dict[str, Any] | None = None, language: Language = Language.PYTHON, **limits: Any) -> SandboxRequest:
    fields: dict[str, Any] = {"timeout_s": 20.0, "memory_mb": 256, "max_output_bytes": 65536}
    fields.update(limits)
    return SandboxRequest("exec-1", language, code, "handler", params or {}, **fields)


_LANGUAGES = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT) if find_node() is not None else (Language.PYTHON,)


class TestCodeInterpreterSandboxContract(SandboxContract):
    languages = _LANGUAGES

    def make_sandbox(self) -> Sandbox:
        client = _client()
        FakeCodeInterpreter(client)
        return AgentCoreCodeInterpreterSandbox(client)


@pytest.fixture
def fake() -> Iterator[tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]]:
    client = _client()
    runner = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, max_calls_per_session=2)
    yield sandbox, runner
    sandbox.close()


def test_params_travel_as_data_not_code() -> None:
    """A parameter that looks like code never appears in the program text sent to the interpreter."""
    hostile = '"); import os; os.system("echo pwned"); ("'
    program = build_program(_request("def handler(x):\n    return x", {"x": hostile}), "__m__")
    assert hostile not in program
    assert "import os" not in program


def test_sessions_are_reused_within_limits_and_stopped_on_close(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """Calls share a session up to the per-session limit; close() stops every session it started."""
    sandbox, runner = fake
    for _ in range(3):
        result = sandbox.run(_request("def handler():\n    return 1"))
        assert result.status is ExecutionStatus.SUCCEEDED and result.output == 1
        assert result.metrics.isolation is IsolationLevel.REMOTE
    starts = [op for op, _ in runner.requests if op == "StartCodeInterpreterSession"]
    assert len(starts) == 2
    invokes = [body for op, body in runner.requests if op == "InvokeCodeInterpreter"]
    assert all(b["name"] == "executeCode" and b["arguments"]["clearContext"] for b in invokes)
    sandbox.close()
    assert len(set(runner.stopped)) == 2


def test_throttling_and_5xx_are_retried(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """A throttled or 5xx call is retried by botocore and the execution still succeeds."""
    sandbox, runner = fake
    runner.faults += [("StartCodeInterpreterSession", 429, "ThrottlingException"),
                      ("InvokeCodeInterpreter", 500, "InternalServerException")]
    result = sandbox.run(_request("def handler(a):\n    return a * 2", {"a": 21}))
    assert result.output == 42
    assert [op for op, _ in runner.requests].count("InvokeCodeInterpreter") == 2


def test_persistent_throttling_is_a_transient_execution_error(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """When retries run out, the caller gets an error that is both ExecutionError and TransientError."""
    sandbox, runner = fake
    runner.faults += [("InvokeCodeInterpreter", 429, "ThrottlingException")] * 10
    with pytest.raises(SandboxUnavailable) as info:
        sandbox.run(_request("def handler():\n    return 1"))
    attempts = [op for op, _ in runner.requests].count("InvokeCodeInterpreter")
    assert attempts > 1
    assert isinstance(info.value, ExecutionError) and isinstance(info.value, TransientError)
    assert info.value.retryable


def test_exception_in_event_stream_is_translated(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """A throttling exception delivered inside the event stream is a transient execution error too."""
    sandbox, runner = fake
    runner.stream_faults.append("throttlingException")
    with pytest.raises(TransientError):
        sandbox.run(_request("def handler():\n    return 1"))


def test_validation_error_is_not_retryable(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """A request the service rejects is an ExecutionError the caller should not retry."""
    sandbox, runner = fake
    runner.faults.append(("StartCodeInterpreterSession", 400, "AccessDeniedException"))
    with pytest.raises(ExecutionError) as info:
        sandbox.run(_request("def handler():\n    return 1"))
    assert not isinstance(info.value, TransientError)
    assert "AccessDeniedException" in str(info.value)


def test_stubbed_session_start_failure_names_the_interpreter() -> None:
    """With botocore's Stubber validating against the service model, a throttled start says where."""
    client = _client(max_attempts=1)
    sandbox = AgentCoreCodeInterpreterSandbox(client, "my-interpreter")
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_code_interpreter_session", service_error_code="ThrottlingException", http_status_code=429
        )
        with pytest.raises(SandboxUnavailable, match="my-interpreter"):
            sandbox.run(_request("def handler():\n    return 1"))
        stub.assert_no_pending_responses()


def test_stubbed_close_stops_the_session() -> None:
    """close() sends StopCodeInterpreterSession for the session it started (checked by the Stubber)."""
    client = _client()
    FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client)
    assert sandbox.run(_request("def handler():\n    return 'ok'")).output == "ok"
    session_id = sandbox._idle[0].session_id
    with Stubber(client) as stub:
        stub.add_response(
            "stop_code_interpreter_session",
            {"codeInterpreterIdentifier": "aws.codeinterpreter.v1", "sessionId": session_id, "lastUpdatedAt": "2026-01-01T00:00:00Z"},
            {"codeInterpreterIdentifier": "aws.codeinterpreter.v1", "sessionId": session_id},
        )
        sandbox.close()
        stub.assert_no_pending_responses()
