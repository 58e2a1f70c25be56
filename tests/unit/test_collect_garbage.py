"""Garbage collection: what goes, what stays, dry runs, bad input, two agents, and who may call it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

import toolrt
from toolrt.application import ToolRuntime
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, ExecutionStatus, ValidationError, ValidationReport, normalize_code
from toolrt.ports import ExecutionQuery, ToolQuery

CODE = "def handler(a, b):\n    return a + b\n"


@pytest.fixture
def rt() -> Iterator[ToolRuntime]:
    with toolrt.connect("memory", sandbox="inprocess") as runtime:
        yield runtime


def _orphan(rt: ToolRuntime, code: str, age: timedelta = timedelta(days=1)) -> Artifact:
    """An artifact no tool references (as a registration killed before adding its tool leaves one)."""
    definition = b.definition("orphan", code=code)
    artifact = Artifact(
        definition.code_hash,
        definition.language,
        normalize_code(code),
        "handler",
        ValidationReport(),
        rt.ports.clock.now() - age,
    )
    rt.ports.artifacts.put(artifact)
    return artifact


def _old_execution(rt: ToolRuntime, execution_id: str, age: timedelta, status: ExecutionStatus) -> None:
    record = attrs.evolve(b.execution(execution_id, status=status), created_at=rt.ports.clock.now() - age)
    rt.ports.repository.record_execution(record)


def _state(rt: ToolRuntime) -> Any:
    repo = rt.ports.repository
    return (
        sorted(rt.ports.artifacts.hashes()),
        sorted((t.tool_id, t.record_version) for t in repo.list(ToolQuery(status=None))),
        sorted(e.execution_id for e in repo.list_executions(ExecutionQuery(limit=1000))),
    )


def _inactive_with_versions(rt: ToolRuntime, agent: str, name: str, count: int) -> str:
    reg = rt.register_tool(agent, b.definition(name, code=f"def handler(a, b):\n    return a + b + 0  # {name} 1\n"))
    for n in range(2, count + 1):
        rt.update_tool(
            agent, reg.tool_id, b.definition(name, code=f"def handler(a, b):\n    return a + b  # {name} {n}\n")
        )
    rt.deregister_tool(agent, reg.tool_id)
    return reg.tool_id


def test_dry_run_reports_and_apply_removes_the_same(rt: ToolRuntime) -> None:
    """A dry run changes nothing; applying removes exactly what it reported, with the bytes of code."""
    orphan = _orphan(rt, "def handler():\n    return 'left behind'\n")
    _old_execution(rt, "old", timedelta(days=40), ExecutionStatus.SUCCEEDED)
    _old_execution(rt, "old-running", timedelta(days=40), ExecutionStatus.RUNNING)
    _old_execution(rt, "recent", timedelta(days=1), ExecutionStatus.FAILED)
    gone = _inactive_with_versions(rt, "agent-a", "gone", 4)
    live = rt.register_tool("agent-a", b.definition("live"))
    for n in range(2, 5):
        rt.update_tool("agent-a", live.tool_id, b.definition("live", code=f"def handler(a, b):\n    return {n}\n"))
    before = _state(rt)

    report = rt.collect_garbage(older_than="30d", keep_versions=2)
    assert _state(rt) == before
    assert report.dry_run and report.artifacts == (orphan.code_hash,)
    assert report.artifact_bytes == len(orphan.code.encode())
    assert report.executions == 1
    assert [(p.tool_id, p.versions) for p in report.pruned] == [(gone, (1, 2))]

    applied = rt.collect_garbage(older_than="30d", keep_versions=2, dry_run=False)
    assert (applied.artifacts, applied.artifact_bytes, applied.executions, applied.pruned) == (
        report.artifacts,
        report.artifact_bytes,
        report.executions,
        report.pruned,
    )
    assert rt.ports.artifacts.get(orphan.code_hash) is None
    assert [v.number for v in rt.ports.repository.get(gone).versions] == [3, 4]
    assert len(rt.ports.repository.get(live.tool_id).versions) == 4  # active tools keep every version
    kept = {e.execution_id for e in rt.ports.repository.list_executions(ExecutionQuery(limit=1000))}
    assert kept == {"old-running", "recent"}
    assert rt.execute_tool("agent-a", live.tool_id, {"a": 1, "b": 2}).output == 4
    assert rt.collect_garbage(older_than="30d", keep_versions=2, dry_run=False).as_dict()["artifacts"]["count"] == 0


def test_the_current_version_is_kept_even_when_old(rt: ToolRuntime) -> None:
    """An inactive tool rolled back to version 1 keeps version 1 and the newest others."""
    reg = rt.register_tool("agent-a", b.definition("rolled"))
    for n in range(2, 5):
        rt.update_tool("agent-a", reg.tool_id, b.definition("rolled", code=f"def handler(a, b):\n    return {n}\n"))
    rt.rollback_tool("agent-a", reg.tool_id, 1)
    rt.deregister_tool("agent-a", reg.tool_id)
    rt.collect_garbage(keep_versions=2, dry_run=False)
    tool = rt.ports.repository.get(reg.tool_id)
    assert tool.current_version == 1 and [v.number for v in tool.versions] == [1, 4]


def test_young_orphans_are_kept_for_registrations_in_flight(rt: ToolRuntime) -> None:
    """An unreferenced artifact younger than the grace period stays, and is counted as such."""
    young = _orphan(rt, "def handler():\n    return 'just stored'\n", age=timedelta(seconds=5))
    report = rt.collect_garbage(grace_s=600, dry_run=False)
    assert report.artifacts == () and report.young_artifacts == 1
    assert rt.ports.artifacts.get(young.code_hash) is not None
    assert rt.collect_garbage(grace_s=1, dry_run=False).artifacts == (young.code_hash,)


def test_code_another_agents_tool_uses_is_never_collected(rt: ToolRuntime) -> None:
    """Agent A withdraws its tool; agent B's tool with the same code keeps the artifact and still runs."""
    a = rt.register_tool("agent-a", b.definition("mine", code=CODE))
    other = rt.register_tool("agent-b", b.definition("theirs", code=CODE), "public")
    old = _inactive_with_versions(rt, "agent-a", "older", 3)
    rt.deregister_tool("agent-a", a.tool_id)
    report = rt.collect_garbage(grace_s=0, keep_versions=1, dry_run=False)
    assert a.code_hash not in report.artifacts
    assert rt.ports.artifacts.get(a.code_hash) is not None
    assert rt.execute_tool("agent-b", other.tool_id, {"a": 2, "b": 3}).output == 5
    assert rt.execute_tool("agent-a", other.tool_id, {"a": 2, "b": 3}).output == 5  # public: A may still call it
    assert [p.tool_id for p in report.pruned] == [old]
    assert len(rt.ports.repository.get(other.tool_id).versions) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"older_than": 0},
        {"older_than": -5},
        {"older_than": "0d"},
        {"older_than": "-3d"},
        {"older_than": "soon"},
        {"older_than": "3 fortnights"},
        {"older_than": float("nan")},
        {"older_than": True},
        {"older_than": timedelta(0)},
        {"keep_versions": 0},
        {"keep_versions": 1.5},
        {"grace_s": -1},
        {"dry_run": "no"},
    ],
)
def test_bad_input_is_a_validation_error_and_changes_nothing(rt: ToolRuntime, kwargs: dict[str, Any]) -> None:
    """Zero or negative retention, unparseable durations and other bad values: ValidationError, nothing removed."""
    _orphan(rt, "def handler():\n    return 'x'\n")
    _old_execution(rt, "old", timedelta(days=400), ExecutionStatus.SUCCEEDED)
    _inactive_with_versions(rt, "agent-a", "gone", 3)
    before = _state(rt)
    with pytest.raises(ValidationError):
        rt.collect_garbage(**{"dry_run": False, **kwargs})
    assert _state(rt) == before


def test_settings_give_the_defaults_and_refuse_bad_ones() -> None:
    """gc_retention, gc_keep_versions and gc_grace_s are the defaults; a bad duration is a SettingsError."""
    from toolrt.settings import Settings, SettingsError

    policy = Settings.load({"gc_retention": "12h", "gc_keep_versions": 2}, environ={}).gc_policy()
    assert (policy.execution_retention, policy.keep_versions) == (timedelta(hours=12), 2)
    with pytest.raises(SettingsError):
        Settings.load({"gc_retention": "later"}, environ={})
    with toolrt.connect("memory", sandbox="inprocess", gc_retention="2d") as runtime:
        _old_execution(runtime, "three-days", timedelta(days=3), ExecutionStatus.SUCCEEDED)
        assert runtime.collect_garbage().executions == 1


def test_garbage_collection_is_not_offered_to_agents_over_mcp() -> None:
    """The MCP server, where agents act, has no tool that collects garbage."""
    pytest.importorskip("mcp")
    from toolrt.adapters.mcp.server import MANAGEMENT_NAMES

    assert not {name for name in MANAGEMENT_NAMES if "gc" in name or "garbage" in name or "collect" in name}


def test_cli_gc_reports_then_applies(tmp_path: Any) -> None:
    """`toolrt gc` is a dry run unless --apply; --json gives the typed result's figures; bad input exits 2."""
    import json

    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    runtimes: list[ToolRuntime] = []

    def connect(profile: str | None, **settings: Any) -> ToolRuntime:
        runtime = toolrt.connect("local", data_dir=tmp_path, sandbox="inprocess")
        runtimes.append(runtime)
        return runtime

    with toolrt.connect("local", data_dir=tmp_path, sandbox="inprocess") as seeded:
        orphan = _orphan(seeded, "def handler():\n    return 'cli'\n")
    app = build_app(connect, configure_logging=False)
    runner = CliRunner()
    dry = runner.invoke(app, ["--json", "gc"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["artifacts"]["hashes"] == [str(orphan.code_hash)]
    applied = runner.invoke(app, ["--json", "gc", "--apply", "--older-than", "7d"])
    assert json.loads(applied.output)["dry_run"] is False
    assert runner.invoke(app, ["gc", "--older-than", "0s"]).exit_code == 2
    with toolrt.connect("local", data_dir=tmp_path, sandbox="inprocess") as after:
        assert after.ports.artifacts.get(orphan.code_hash) is None
