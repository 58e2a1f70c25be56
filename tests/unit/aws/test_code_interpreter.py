"""The Code Interpreter sandbox against botocore's real wire protocol, with a local program runner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.unit.aws.fake_agentcore import FakeCodeInterpreter
from toolrt.adapters.aws.clients import make_clients
from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox, SandboxUnavailable, build_program
from toolrt.adapters.node import find_node
from toolrt.contracts import SandboxContract
from toolrt.domain import ExecutionError, ExecutionStatus, IsolationLevel, Language, TransientError
from toolrt.domain.network import EgressGrant, HostPort
from toolrt.ports import Sandbox, SandboxRequest

pytestmark = pytest.mark.aws


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Retries are what is under test, not their back-off: no sleeping between attempts.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


def _client() -> Any:
    """The data-plane client as toolrt builds it (one attempt per request)."""
    return make_clients("us-east-1").agentcore


def _no_sleep(seconds: float) -> None:
    return None


def _request(
    code: str, params: dict[str, Any] | None = None, language: Language = Language.PYTHON, **limits: Any
) -> SandboxRequest:
    fields: dict[str, Any] = {
        "timeout_s": 20.0,
        "memory_mb": 256,
        "max_output_bytes": 65536,
        "tenant": "agent-a",
        "tool": "tool-1",
    }
    fields.update(limits)
    return SandboxRequest("exec-1", language, code, "handler", params or {}, **fields)


_LANGUAGES = (
    (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT) if find_node() is not None else (Language.PYTHON,)
)


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
    sandbox = AgentCoreCodeInterpreterSandbox(client, max_calls_per_session=2, sleep=_no_sleep)
    yield sandbox, runner
    sandbox.close()


def test_params_travel_as_data_not_code() -> None:
    """A parameter that looks like code never appears in the program text sent to the interpreter."""
    hostile = '"); import os; os.system("echo pwned"); ("'
    program = build_program(_request("def handler(x):\n    return x", {"x": hostile}), "__m__")
    assert hostile not in program
    assert "import os" not in program


def test_sessions_are_reused_within_limits_and_stopped_on_close(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
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


def test_calls_turned_away_before_running_are_retried(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """A throttled session start and a throttled invocation (nothing ran) are tried again."""
    sandbox, runner = fake
    runner.faults += [
        ("StartCodeInterpreterSession", 429, "ThrottlingException"),
        ("InvokeCodeInterpreter", 429, "ThrottlingException"),
    ]
    result = sandbox.run(_request("def handler(a):\n    return a * 2", {"a": 21}))
    assert result.output == 42
    assert [op for op, _ in runner.requests].count("InvokeCodeInterpreter") == 2
    assert runner.executions == 1


def test_a_read_timeout_never_runs_the_code_twice(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """The code ran but the answer never came: one invocation, and an error that says it may have run."""
    sandbox, runner = fake
    runner.read_timeouts = 1
    with pytest.raises(ExecutionError, match="may have run") as info:
        sandbox.run(_request("def handler():\n    return 1"))
    assert not isinstance(info.value, TransientError)
    assert [op for op, _ in runner.requests].count("InvokeCodeInterpreter") == 1
    assert runner.executions == 1


def test_a_5xx_on_invoke_is_not_sent_again(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """A 5xx after the request was sent may follow a run: it is reported, never resent."""
    sandbox, runner = fake
    runner.faults.append(("InvokeCodeInterpreter", 500, "InternalServerException"))
    with pytest.raises(ExecutionError, match="may have run"):
        sandbox.run(_request("def handler():\n    return 1"))
    assert [op for op, _ in runner.requests].count("InvokeCodeInterpreter") == 1


def test_the_read_timeout_outlasts_the_longest_tool() -> None:
    """The data-plane client reads longer than the maximum tool timeout (300 s) and never retries."""
    config = make_clients("us-east-1", invoke_read_timeout_s=400).agentcore.meta.config
    assert config.read_timeout == 400 and config.retries["total_max_attempts"] == 1
    assert make_clients("us-east-1").agentcore.meta.config.read_timeout > 300


def test_execution_time_is_read_as_milliseconds(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """``executionTime`` is milliseconds in the service model; the call's wall time is that figure."""
    sandbox, runner = fake
    result = sandbox.run(_request("def handler():\n    return 1"))
    assert runner.last_execution_ms is not None
    assert result.metrics.wall_ms == pytest.approx(runner.last_execution_ms)


@pytest.mark.skipif(find_node() is None, reason="needs Node.js for the fake interpreter's JavaScript runtime")
def test_javascript_runs_on_node_not_the_default_deno(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """A CommonJS tool (module.exports) works: the request names the nodejs runtime."""
    sandbox, runner = fake
    code = "function handler({a}) { return a + 1 }\nmodule.exports = { handler }"
    result = sandbox.run(_request(code, {"a": 1}, Language.JAVASCRIPT))
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == 2
    invoke = next(body for op, body in runner.requests if op == "InvokeCodeInterpreter")
    assert invoke["arguments"]["runtime"] == "nodejs"


def test_sessions_are_never_shared_between_agents(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """Two agents calling the same tool get different sessions; by default two tools of one agent do too."""
    sandbox, runner = fake

    def session_of(tenant: str, tool: str) -> str:
        before = len(runner.requests)
        sandbox.run(_request("def handler():\n    return 1", tenant=tenant, tool=tool))
        return str(next(body for op, body in runner.requests[before:] if op == "InvokeCodeInterpreter")["sessionId"])

    a1 = session_of("agent-a", "tool-1")
    b1 = session_of("agent-b", "tool-1")
    a2 = session_of("agent-a", "tool-2")
    assert len({a1, b1, a2}) == 3
    assert session_of("agent-a", "tool-1") == a1  # reused within its own scope


def test_agent_scope_shares_sessions_within_one_agent_only() -> None:
    """With session_scope="agent", an agent's calls of one owner's tools share sessions; other agents
    never do, nor tools of another owner (its code would run where the first one's files are), nor a
    call that names no owner."""
    client = _client()
    runner = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, session_scope="agent")
    try:
        calls = (
            ("agent-a", "t1", "agent-a"),
            ("agent-a", "t2", "agent-a"),
            ("agent-b", "t1", "agent-a"),
            ("agent-a", "t3", "agent-c"),
            ("agent-a", "t4", ""),
            ("agent-a", "t4", "agent-c"),
        )
        for tenant, tool, owner in calls:
            sandbox.run(_request("def handler():\n    return 1", tenant=tenant, tool=tool, owner=owner))
        sessions = [body["sessionId"] for op, body in runner.requests if op == "InvokeCodeInterpreter"]
        assert sessions[0] == sessions[1] and sessions[3] == sessions[5]
        assert len({sessions[0], sessions[2], sessions[3], sessions[4]}) == 4
    finally:
        sandbox.close()


def test_idle_sessions_are_capped(fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]) -> None:
    """Past max_idle_sessions, the oldest idle session is stopped."""
    client = _client()
    runner = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, max_idle_sessions=2)
    try:
        for tool in ("t1", "t2", "t3"):
            sandbox.run(_request("def handler():\n    return 1", tool=tool))
        assert len(runner.stopped) == 1
    finally:
        sandbox.close()


def test_a_mock_endpoint_without_code_interpreter_names_the_cause() -> None:
    """Against moto (no Code Interpreter), the error says so and names sandbox='local'."""
    client = _client()
    sandbox = AgentCoreCodeInterpreterSandbox(client, endpoint_url="http://127.0.0.1:5000")
    with Stubber(client) as stub:
        stub.add_client_error("start_code_interpreter_session", service_error_code="404", http_status_code=404)
        with pytest.raises(ExecutionError, match="sandbox='local'"):
            sandbox.run(_request("def handler():\n    return 1"))


def test_exception_in_event_stream_is_translated(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
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
    client = _client()
    sandbox = AgentCoreCodeInterpreterSandbox(client, "my-interpreter", start_attempts=1)
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
    session_id = next(iter(sandbox._idle.values()))[0].session_id
    with Stubber(client) as stub:
        stub.add_response(
            "stop_code_interpreter_session",
            {
                "codeInterpreterIdentifier": "aws.codeinterpreter.v1",
                "sessionId": session_id,
                "lastUpdatedAt": "2026-01-01T00:00:00Z",
            },
            {"codeInterpreterIdentifier": "aws.codeinterpreter.v1", "sessionId": session_id},
        )
        sandbox.close()
        stub.assert_no_pending_responses()


def test_a_call_granted_network_hosts_is_refused_before_it_starts() -> None:
    """Code Interpreter has no egress proxy: a call allowed to reach named hosts is refused with an
    ExecutionError naming them and the ways out, and no session is started for it."""
    client = _client()
    runner = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, sleep=_no_sleep)
    grant = EgressGrant(allow=frozenset({HostPort("api.example.com", 443)}))
    try:
        with pytest.raises(ExecutionError, match=r"api\.example\.com:443.*sandbox='local'.*did not run"):
            sandbox.run(_request("def handler():\n    return 1", egress=grant))
        assert runner.requests == [] and runner.executions == 0
        assert sandbox.run(_request("def handler():\n    return 1")).output == 1  # no grant: runs as before
    finally:
        sandbox.close()


def test_the_operator_may_let_the_interpreters_network_mode_decide() -> None:
    """egress="interpreter" runs a call granted hosts under the interpreter's own network mode;
    an unknown mode is refused when the sandbox is built."""
    client = _client()
    FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, egress="interpreter", sleep=_no_sleep)
    grant = EgressGrant(allow=frozenset({HostPort("api.example.com", 443)}))
    try:
        assert sandbox.run(_request("def handler():\n    return 2", egress=grant)).output == 2
    finally:
        sandbox.close()
    with pytest.raises(ValueError, match="egress must be one of"):
        AgentCoreCodeInterpreterSandbox(client, egress="open")


_FORMS = {
    "plain": "function handler({a}: {a: number}): number { return a + 1 }",
    "module.exports": "function handler({a}: {a: number}): number { return a + 1 }\nmodule.exports = { handler }",
    "exports.handler": "exports.handler = ({a}: {a: number}): number => a + 1",
    "export function": "export function handler({a}: {a: number}): number { return a + 1 }",
    "export default": "export default function handler({a}: {a: number}): number { return a + 1 }",
    "require": "const os = require('node:os')\nfunction handler({a}: {a: number}) { return typeof os.EOL === 'string' ? a + 1 : 0 }",
    "async": "async function handler({a}: {a: number}): Promise<number> { return a + 1 }",
}


@pytest.mark.skipif(find_node() is None, reason="needs Node.js for the fake interpreter's JavaScript runtime")
@pytest.mark.parametrize("language", [Language.JAVASCRIPT, Language.TYPESCRIPT])
@pytest.mark.parametrize("form", sorted(_FORMS))
def test_every_form_runs_in_the_module_system_of_its_runtime(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter], language: Language, form: str
) -> None:
    """On the nodejs runtime JavaScript runs as CommonJS and TypeScript as an ES module (the fake runs
    them so); each form agents write returns its result in both."""
    sandbox, runner = fake
    code = _FORMS[form]
    if language is Language.JAVASCRIPT:
        code = re.sub(r": (\{a: number\}|number|Promise<number>)", "", code)
    result = sandbox.run(_request(code, {"a": 1}, language))
    assert result.status is ExecutionStatus.SUCCEEDED, (result.error, result.stderr)
    assert result.output == 2


@pytest.mark.skipif(find_node() is None, reason="needs Node.js for the fake interpreter's JavaScript runtime")
def test_typescript_imports_work_as_an_es_module(
    fake: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter],
) -> None:
    """TypeScript may use `import` (it runs as an ES module); the harness adds nothing that breaks it."""
    sandbox, _ = fake
    code = "import { EOL } from 'node:os'\nexport function handler({a}: {a: number}): number { return EOL ? a * 2 : 0 }"
    result = sandbox.run(_request(code, {"a": 21}, Language.TYPESCRIPT))
    assert result.status is ExecutionStatus.SUCCEEDED, (result.error, result.stderr)
    assert result.output == 42
