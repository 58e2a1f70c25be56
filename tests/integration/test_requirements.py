"""Tools with third-party packages on the local profile: real pip, real wheels, the real bubblewrap sandbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.requirements_world import (
    ARRAY_STATS,
    DATEUTIL,
    PARSE_DATE,
    local_runtime,
    private_environments,
    shared_environments,
    tool,
)
from toolrt.adapters.cli.main import build_app
from toolrt.adapters.local.environments import PipEnvironments
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus, IsolationLevel, Language, ValidationError

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]


@pytest.fixture(scope="module")
def environments() -> Path:
    return shared_environments()


@pytest.fixture
def own_environments() -> Iterator[Path]:
    with private_environments() as path:
        yield path


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory, environments: Path) -> Iterator[ToolRuntime]:
    runtime = local_runtime(tmp_path_factory.mktemp("req-data"), environments)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def parse_date(rt: ToolRuntime) -> str:
    return rt.register_tool("alice", PARSE_DATE).tool_id


def env_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "python").iterdir() if len(p.name) == 64 and (p / "site").is_dir())


def test_a_pure_python_wheel_is_locked_installed_and_imported_in_the_sandbox(rt: ToolRuntime, parse_date: str) -> None:
    """python-dateutil resolves to exact wheels with hashes, stored with the version and the artifact, and runs."""
    t = rt.ports.repository.get(parse_date)
    lock = t.definition.lock
    assert lock is not None and "python-dateutil" in lock.names and "dateutil" in lock.modules
    assert all(len(p.sha256) == 64 and p.url.endswith(".whl") for p in lock.packages)
    artifact = rt.ports.artifacts.get(t.code_hash)
    assert artifact is not None and artifact.lock == lock
    result = rt.execute_tool("alice", parse_date, {"text": "March 4 2024 5:06pm"})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == "2024-03-04T17:06:00"
    assert result.metrics.isolation is IsolationLevel.NAMESPACES


def test_a_compiled_wheel_runs_in_the_sandbox(rt: ToolRuntime) -> None:
    """numpy (an extension module and its bundled libraries) imports and computes inside bubblewrap."""
    reg = rt.register_tool("alice", ARRAY_STATS)
    assert "numpy" in reg.tool.definition.lock.modules  # type: ignore[union-attr]
    result = rt.execute_tool("alice", reg.tool_id, {"values": [1, 2, 3, 4]})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output["mean"] == 2.5 and result.output["std"] == pytest.approx(1.118033988749895)


def test_tools_with_the_same_lock_share_one_environment(rt: ToolRuntime, parse_date: str, environments: Path) -> None:
    """Another agent's tool with other code and the same requirements gets the same lock, folder and files."""
    first = rt.ports.repository.get(parse_date).definition
    other = rt.register_tool(
        "bob",
        tool(
            PARSE_DATE,
            name="year_of",
            code="from dateutil import parser\n\ndef handler(text: str) -> int:\n"
            '    """Year."""\n    return parser.parse(text).year\n',
        ),
    )
    second = other.tool.definition
    assert second.lock == first.lock and other.code_hash != first.code_hash
    assert rt.requirements.location(first) == rt.requirements.location(second)
    with_dateutil = [
        d
        for d in env_dirs(environments)
        if (d / "site" / "dateutil").is_dir() and first.lock is not None and d.name == first.lock.digest
    ]
    assert len(with_dateutil) == 1
    assert rt.requirements.location(first) == str(with_dateutil[0] / "site")
    assert rt.execute_tool("bob", other.tool_id, {"text": "1999-12-31"}).output == 1999


def test_an_update_with_the_same_requirements_keeps_the_lock(rt: ToolRuntime, parse_date: str) -> None:
    """Re-sending the definition changes nothing; new code keeps the lock; new requirements make a new one."""
    same = rt.update_tool("alice", parse_date, PARSE_DATE)
    assert not same.new_version
    before = rt.ports.repository.get(parse_date).definition.lock
    code = PARSE_DATE["code"].replace(".isoformat()", ".date().isoformat()")
    newer = rt.update_tool("alice", parse_date, tool(PARSE_DATE, code=code))
    assert newer.new_version and newer.tool.definition.lock == before
    assert rt.execute_tool("alice", parse_date, {"text": "March 4 2024 5:06pm"}).output == "2024-03-04"


def test_an_import_the_requirements_do_not_provide_fails_registration(rt: ToolRuntime) -> None:
    """Requiring dateutil but importing numpy: an error finding at numpy's line, and nothing stored."""
    code = (
        'from dateutil import parser\nimport numpy\n\ndef handler(text: str) -> str:\n    """x."""\n    return text\n'
    )
    before = set(rt.ports.artifacts.hashes())
    with pytest.raises(ValidationError) as caught:
        rt.register_tool("carol", tool(PARSE_DATE, name="mixed", code=code))
    [finding] = caught.value.report.errors
    assert finding.rule_id == "imports.unavailable.numpy" and finding.line == 2
    assert "add `numpy` to requirements" in finding.hint
    assert rt.list_tools("carol") == [] and set(rt.ports.artifacts.hashes()) == before


def test_concurrent_builders_of_one_lock_make_one_environment(
    own_environments: Path, rt: ToolRuntime, parse_date: str
) -> None:
    """Four threads ensuring the same lock in an empty folder: one build, one folder, no leftovers."""
    lock = rt.ports.repository.get(parse_date).definition.lock
    assert lock is not None
    tmp_path = own_environments
    builder = PipEnvironments(tmp_path)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(builder.ensure(lock))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len(set(got)) == 1
    assert [p.name for p in (tmp_path / "python").iterdir() if not p.name.startswith(".locks")] == [lock.digest]


def test_toolrt_env_lists_and_prunes(tmp_path: Path, own_environments: Path) -> None:
    """`toolrt env list` shows the environment a tool uses; `toolrt env prune` keeps it and removes an
    unused one; a build prints a progress line on stderr."""
    data, envs = tmp_path / "data", own_environments

    def connect(profile: str | None = None, **settings: object) -> ToolRuntime:
        return local_runtime(data, envs)

    app = build_app(connect)
    path = tmp_path / "parse_date.py"
    path.write_text("# /// script\n# dependencies = ['python-dateutil>=2.8']\n# ///\n" + PARSE_DATE["code"])
    registered = CliRunner().invoke(app, ["--agent", "alice", "register", str(path)])
    assert registered.exit_code == 0, registered.stdout + registered.stderr
    assert "requirements:" in registered.stderr and "ready" in registered.stderr
    PipEnvironments(envs).lock(Language.PYTHON, ("six==1.17.0",), max_bytes=1 << 30)  # no tool runs with it
    listed = json.loads(CliRunner().invoke(app, ["--json", "env", "list"]).stdout)
    assert sorted(e["referenced"] for e in listed["environments"]) == [False, True]
    pruned = json.loads(CliRunner().invoke(app, ["--json", "env", "prune"]).stdout)
    kept = [e for e in listed["environments"] if e["referenced"]]
    assert len(pruned["removed"]) == 1 and pruned["removed"][0] not in {e["digest"] for e in kept}
    assert [p.name for p in env_dirs(envs)] == [kept[0]["digest"]]


def test_a_pruned_environment_is_rebuilt_from_the_lock_when_the_tool_runs(
    tmp_path: Path, own_environments: Path
) -> None:
    """Evicting a tool's environment costs a rebuild on its next call, never the call."""
    envs = own_environments
    rt = local_runtime(tmp_path / "data", envs)
    try:
        reg = rt.register_tool("alice", tool(PARSE_DATE, requirements=DATEUTIL))
        report = rt.prune_environments(max_mb=0)
        assert report.removed == (reg.tool.definition.lock.digest,)  # type: ignore[union-attr]
        assert env_dirs(envs) == []
        lines: list[str] = []
        rt.requirements.on_progress = lines.append
        result = rt.execute_tool("alice", reg.tool_id, {"text": "2020-02-02"})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert any("ready" in line for line in lines) and len(env_dirs(envs)) == 1
    finally:
        rt.close()


def year_of(text: str) -> int:
    """The year of a date written in any common form."""
    from dateutil import parser

    return int(parser.parse(text).year)


def test_a_function_of_the_program_registers_with_its_requirements(rt: ToolRuntime) -> None:
    """rt.register_function takes the packages the function imports, and the tool runs with them."""
    reg = rt.register_function("dora", year_of, requirements=DATEUTIL)
    assert reg.tool.definition.requirements == tuple(DATEUTIL)
    assert rt.execute_tool("dora", reg.tool_id, {"text": "July 4th, 1976"}).output == 1976
    with pytest.raises(ValidationError, match="add `python-dateutil` to requirements"):
        rt.register_function("dora", year_of, name="year_without")
