"""Requirements on the aws sandbox: real pip resolves the lock, the wheels go to the session and are
installed there, over the Code Interpreter's real wire protocol (the fake runs sessions as local
folders and processes, since moto has no Code Interpreter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import DATEUTIL, aws_sandbox_runtime, shared_environments
from tests.unit.aws.fake_agentcore import FakeCodeInterpreter
from toolrt.adapters.aws.environments import CodeInterpreterEnvironments, interpreter_target
from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox
from toolrt.adapters.local.environments import PipEnvironments
from toolrt.application import ToolRuntime
from toolrt.domain import (
    ExecutionError,
    Language,
    NotFoundError,
    RequirementError,
    RequirementsUnsupportedError,
)
from toolrt.ports import SandboxRequest

pytestmark = [pytest.mark.aws, pytest.mark.slow]

WHERE_DATEUTIL = {
    "name": "parse_date_where",
    "description": "Parse a date and say where dateutil was imported from.",
    "language": "python",
    "code": (
        "from dateutil import parser\n\n\n"
        "def handler(text: str) -> dict:\n"
        '    """Parse a date."""\n'
        "    import dateutil\n"
        "    return {'iso': parser.parse(text).isoformat(), 'from': dateutil.__file__}\n"
    ),
    "requirements": DATEUTIL,
}

LOOK_AROUND = {
    "name": "look_around",
    "description": "What a tool without requirements finds in its session.",
    "language": "python",
    "code": (
        "import os\nimport sys\n\n\n"
        "def handler() -> dict:\n"
        '    """Look."""\n'
        "    return {'toolrt': os.path.exists('.toolrt'), 'path': [p for p in sys.path if '/.toolrt/env/' in p],\n"
        "            'modules': sorted(n for n, m in sys.modules.items() if '/.toolrt/env/' in (getattr(m, '__file__', '') or ''))}\n"
    ),
}


@pytest.fixture
def world(tmp_path: Path, aws_credentials: None) -> Iterator[tuple[ToolRuntime, FakeCodeInterpreter]]:
    rt, fake = aws_sandbox_runtime(tmp_path)
    try:
        yield rt, fake
    finally:
        rt.close()


def _tools(fake: FakeCodeInterpreter, sid: str) -> list[str]:
    return [name for s, name in fake.tools if s == sid]


def test_the_lock_is_installed_in_the_session_and_imported_from_there(
    world: tuple[ToolRuntime, FakeCodeInterpreter],
) -> None:
    """The wheels are uploaded once per session and installed with hashes; the tool imports them from
    the session's .toolrt/env/<digest>, ahead of what the interpreter has preinstalled."""
    rt, fake = world
    reg = rt.register_tool("alice", WHERE_DATEUTIL)
    lock = reg.tool.definition.lock
    assert lock is not None and "python-dateutil" in lock.names and "dateutil" in lock.modules
    first = rt.execute_tool("alice", reg.tool_id, {"text": "3 March 2024"})
    assert first.output["iso"] == "2024-03-03T00:00:00", first
    assert f"/.toolrt/env/{lock.digest}/dateutil/" in first.output["from"]
    second = rt.execute_tool("alice", reg.tool_id, {"text": "2024-01-02"})
    assert second.output["iso"] == "2024-01-02T00:00:00"
    (sid,) = {s for s, _ in fake.tools}
    names = _tools(fake, sid)
    assert names.count("executeCommand") == 1, names  # installed once for the session
    assert names.count("writeFiles") == len(lock.packages) + 1  # the wheels and the pinned requirements
    assert names.count("executeCode") == 2


def test_another_agents_tool_gets_no_packages_in_its_own_session(
    world: tuple[ToolRuntime, FakeCodeInterpreter],
) -> None:
    """A hostile agent's tool never shares alice's session, and nothing of her lock is sent to its own."""
    rt, fake = world
    reg = rt.register_tool("alice", WHERE_DATEUTIL)
    rt.execute_tool("alice", reg.tool_id, {"text": "3 March 2024"})
    alice_sessions = {s for s, _ in fake.tools}
    look = rt.register_tool("mallory", LOOK_AROUND)
    seen = rt.execute_tool("mallory", look.tool_id, {}).output
    assert seen == {"toolrt": False, "path": [], "modules": []}
    mallory_sessions = {s for s, _ in fake.tools} - alice_sessions
    assert len(mallory_sessions) == 1
    assert _tools(fake, mallory_sessions.pop()) == ["executeCode"]
    with pytest.raises(NotFoundError):  # alice's private tool: as an unknown id
        rt.execute_tool("mallory", reg.tool_id, {"text": "today"})


def test_javascript_requirements_are_refused_on_the_aws_sandbox(
    world: tuple[ToolRuntime, FakeCodeInterpreter],
) -> None:
    rt, fake = world
    definition = {
        "name": "pad",
        "description": "Pad a string.",
        "language": "javascript",
        "code": "function handler({ s }) { return s }\nmodule.exports = { handler }\n",
        "requirements": ["left-pad@^1.3.0"],
    }
    with pytest.raises(RequirementsUnsupportedError, match="local") as caught:
        rt.register_tool("alice", definition)
    assert caught.value.profile == "aws" and caught.value.language == "javascript"
    assert rt.list_tools(agent_id="alice") == [] and fake.tools == []


def test_a_denied_dependency_is_refused_before_anything_is_fetched(
    world: tuple[ToolRuntime, FakeCodeInterpreter], tmp_path: Path, aws_credentials: None
) -> None:
    """A package the policy denies, needed by the one asked for: a typed error naming it, nothing stored."""
    lock = world[0].register_tool("alice", WHERE_DATEUTIL).tool.definition.lock
    assert lock is not None
    dependency = next(p.name for p in lock.packages if not p.requested)  # six or tzdata, by the index
    rt, _ = aws_sandbox_runtime(tmp_path / "denying", denied_packages=dependency)
    try:
        with pytest.raises(RequirementError) as caught:
            rt.register_tool("alice", WHERE_DATEUTIL)
        assert caught.value.requirement == dependency and caught.value.reason == "denied"
        assert rt.list_tools(agent_id="alice") == []
        assert not list((tmp_path / "denying" / "environments").rglob("*.whl"))
    finally:
        rt.close()


@pytest.fixture
def ci_sandbox(aws_credentials: None) -> Iterator[tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter]]:
    from toolrt.adapters.aws.clients import make_clients

    client = make_clients("us-east-1").agentcore
    fake = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, session_scope="agent")
    try:
        yield sandbox, fake
    finally:
        sandbox.close()


def _request(code: str, environment: str | None, tool: str) -> SandboxRequest:
    return SandboxRequest(
        "exec-1",
        Language.PYTHON,
        code,
        "handler",
        {},
        60.0,
        256,
        65536,
        tenant="alice",
        tool=tool,
        owner="alice",
        environment=environment,
    )


def test_a_tool_without_requirements_sharing_an_agent_session_sees_no_other_lock(
    ci_sandbox: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter], tmp_path: Path
) -> None:
    """With sessions per agent, a later call without requirements finds neither the folder of the
    earlier call's packages on sys.path nor its modules in sys.modules."""
    sandbox, fake = ci_sandbox
    environments = CodeInterpreterEnvironments(PipEnvironments(shared_environments()), tmp_path)
    lock = environments.lock(Language.PYTHON, tuple(DATEUTIL), max_bytes=64 * 2**20)
    wheels = environments.ensure(lock)
    uses = "import dateutil.parser\n\ndef handler():\n    return dateutil.__file__\n"
    used = sandbox.run(_request(uses, wheels, "t1"))
    assert f".toolrt/env/{lock.digest}/" in used.output
    looks = sandbox.run(_request(LOOK_AROUND["code"], None, "t2"))
    assert looks.output == {"toolrt": True, "path": [], "modules": []}, looks
    assert len({s for s, _ in fake.tools}) == 1  # one session, as the scope says


def test_a_wheel_the_interpreter_cannot_install_fails_the_call_before_it_runs(
    ci_sandbox: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter], tmp_path: Path
) -> None:
    """A compiled wheel for another Python: a clear error naming it and pip's reason; the tool's
    code never runs and the session is stopped."""
    sandbox, fake = ci_sandbox
    target, platform = interpreter_target("3.13")
    resolver = PipEnvironments(tmp_path / "resolver", target=target, platform=platform)
    environments = CodeInterpreterEnvironments(resolver, tmp_path)
    lock = environments.lock(Language.PYTHON, ("markupsafe==3.0.2",), max_bytes=64 * 2**20)
    assert lock.platform == platform and "markupsafe" in lock.modules
    with pytest.raises(
        ExecutionError, match=r"cannot be installed in Code Interpreter \(MarkupSafe-3\.0\.2-cp313"
    ) as caught:
        sandbox.run(_request("def handler():\n    return 1\n", environments.ensure(lock), "t1"))
    assert "TOOLRT_CODE_INTERPRETER_PYTHON" in str(caught.value)
    assert fake.executions == 0 and len(fake.stopped) == 1


def _router(
    rt: ToolRuntime, tmp_path: Path, env: dict[str, str], verifier: Any, egress: str = "refuse"
) -> tuple[Any, FakeCodeInterpreter]:
    """The Lambda router over the runtime's stores, with its own Code Interpreter client and /tmp."""
    from toolrt.adapters.aws.clients import make_clients
    from toolrt.adapters.aws.lambda_router import LambdaRouter, policy_from_env

    client = make_clients("us-east-1").agentcore
    fake = FakeCodeInterpreter(client)
    router = LambdaRouter(
        rt.ports.repository,
        rt.ports.artifacts,
        AgentCoreCodeInterpreterSandbox(client, egress=egress),
        verifier=verifier,
        policy=policy_from_env(env),
        environments=CodeInterpreterEnvironments(None, tmp_path / "router-tmp"),
    )
    return router, fake


def test_a_gateway_call_through_the_router_gets_the_tools_packages(
    world: tuple[ToolRuntime, FakeCodeInterpreter], tmp_path: Path, idp: Any
) -> None:
    """The router fetches the stored lock's wheels into its own folder and the session installs them,
    as on the runtime's path; the router itself never resolves anything."""
    from tests.integration.aws.gateway_sim import LambdaContext
    from toolrt.adapters.aws.gateway import gateway_tool_name
    from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT

    rt, _ = world
    reg = rt.register_tool("alice", WHERE_DATEUTIL)
    lock = reg.tool.definition.lock
    assert lock is not None
    router, fake = _router(rt, tmp_path, {}, idp.verifier())
    out = router(
        {"text": "3 March 2024", IDENTITY_ARGUMENT: idp.token("alice")},
        LambdaContext(gateway_tool_name("s0", reg.tool)),
    )
    assert out["iso"] == "2024-03-03T00:00:00" and f"/.toolrt/env/{lock.digest}/" in out["from"], out
    assert (tmp_path / "router-tmp" / "code-interpreter" / "python" / lock.digest / "wheels").is_dir()
    assert [name for _, name in fake.tools].count("executeCommand") == 1
    with pytest.raises(RequirementsUnsupportedError):
        CodeInterpreterEnvironments(None, tmp_path).lock(Language.PYTHON, ("six",), max_bytes=1)


def test_the_router_grants_and_refuses_network_as_the_runtime_does(
    tmp_path: Path, aws_credentials: None, idp: Any
) -> None:
    """A tool granted hosts by the owner's policy (TOOLRT_NETWORK_ALLOW, which provisioning gives the
    router) is refused before it runs through the gateway too, since the interpreter cannot confine it."""
    from tests.integration.aws.gateway_sim import LambdaContext
    from toolrt.adapters.aws.gateway import gateway_tool_name
    from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT

    caller = {IDENTITY_ARGUMENT: idp.token("alice")}
    rt, _ = aws_sandbox_runtime(tmp_path, network_allow="api.example.com:443")
    try:
        definition = {
            "name": "fetch",
            "description": "Reach one API.",
            "language": "python",
            "code": "def handler() -> int:\n    return 1\n",
            "network": {"allow": ["api.example.com:443"]},
        }
        tool = rt.register_tool("alice", definition).tool
        direct = rt.execute_tool("alice", tool.tool_id, {})
        assert direct.error is not None and "cannot confine a call to named hosts" in direct.error.message
        router, fake = _router(rt, tmp_path, {"TOOLRT_NETWORK_ALLOW": "api.example.com:443"}, idp.verifier())
        refused = router(caller, LambdaContext(gateway_tool_name("s0", tool)))
        assert refused["error"]["type"] == "ExecutionError" and "api.example.com:443" in refused["error"]["message"]
        assert fake.executions == 0
        opted_in, fake = _router(
            rt, tmp_path, {"TOOLRT_NETWORK_ALLOW": "api.example.com:443"}, idp.verifier(), egress="interpreter"
        )
        assert opted_in(caller, LambdaContext(gateway_tool_name("s0", tool))) == 1
    finally:
        rt.close()


def test_a_folder_planted_where_a_lock_installs_is_replaced_by_the_locked_files(
    ci_sandbox: tuple[AgentCoreCodeInterpreterSandbox, FakeCodeInterpreter], tmp_path: Path
) -> None:
    """An earlier call in an agent's session writes a fake dateutil where a later lock installs: the
    install replaces it, and the later tool imports the locked package."""
    sandbox, _ = ci_sandbox
    environments = CodeInterpreterEnvironments(PipEnvironments(shared_environments()), tmp_path)
    lock = environments.lock(Language.PYTHON, tuple(DATEUTIL), max_bytes=64 * 2**20)
    plant = (
        "import os\n\ndef handler():\n"
        f"    os.makedirs('.toolrt/env/{lock.digest}/dateutil', exist_ok=True)\n"
        f"    open('.toolrt/env/{lock.digest}/dateutil/__init__.py', 'w').write('PLANTED = True')\n"
        "    return 'planted'\n"
    )
    assert sandbox.run(_request(plant, None, "t1")).output == "planted"
    uses = "import dateutil\nfrom dateutil import parser\n\ndef handler():\n    return hasattr(dateutil, 'PLANTED')\n"
    assert sandbox.run(_request(uses, environments.ensure(lock), "t2")).output is False


def test_an_install_past_its_time_or_cancelled_stops_the_session_and_the_code_never_runs(
    tmp_path: Path, aws_credentials: None
) -> None:
    """Installing is bounded by install_timeout_s and by cancel, like the tool by its own timeout."""
    import threading

    from toolrt.adapters.aws.clients import make_clients
    from toolrt.domain import ExecutionStatus

    environments = CodeInterpreterEnvironments(PipEnvironments(shared_environments()), tmp_path)
    lock = environments.lock(Language.PYTHON, tuple(DATEUTIL), max_bytes=64 * 2**20)
    wheels = environments.ensure(lock)
    client = make_clients("us-east-1").agentcore
    fake = FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client, install_timeout_s=0.05)
    try:
        late = sandbox.run(_request("def handler():\n    return 1\n", wheels, "t1"))
        assert late.status is ExecutionStatus.TIMED_OUT and late.metrics.limit == "install_timeout_s"
        cancel = threading.Event()
        threading.Timer(0.05, cancel.set).start()
        patient = AgentCoreCodeInterpreterSandbox(client, install_timeout_s=300)
        cancelled = patient.run(_request("def handler():\n    return 1\n", wheels, "t2"), cancel)
        assert cancelled.status is ExecutionStatus.CANCELLED
        patient.close()
        for worker in threading.enumerate():  # the abandoned installs finish; the code must never follow
            if worker.name.startswith("toolrt-ci-"):
                worker.join(120)
        assert fake.executions == 0 and len(set(fake.stopped)) == 2
    finally:
        sandbox.close()
