"""Requirements without a package index: parsing, identity, policy, and the profiles that refuse them."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import toolrt
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.requirements import NoEnvironments, Requirements
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.domain import (
    CodeHash,
    Language,
    Lock,
    RequirementError,
    RequirementsUnsupportedError,
    Tool,
    ValidationError,
)
from toolrt.ports import EnvironmentBuilder, EnvironmentInfo, ProgressCallback, PruneReport
from toolrt.settings import Settings

CODE = "def handler():\n    return 1\n"


class FakeBuilder:
    """An environment builder that resolves every requirement set to ``lock`` and counts calls."""

    def __init__(self, lock: Lock) -> None:
        self.result = lock
        self.calls: list[tuple[str, ...]] = []

    def supports(self, language: Language) -> bool:
        return True

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        self.calls.append(requirements)
        return self.result

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        return "/nowhere"

    def environments(self) -> list[EnvironmentInfo]:
        return []

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        return PruneReport()


@pytest.mark.parametrize(
    ("language", "requirement", "says"),
    [
        ("python", "numpy>>1", "not a valid PEP 508 specifier"),
        ("python", "pkg @ https://example.org/pkg.whl", "points at a URL"),
        ("python", "pkg; python_version<'3'", "environment marker"),
        ("python", "", "empty"),
        ("javascript", "Bad_Name@1", "does not name an npm package"),
        ("javascript", "lodash@latest", "does not read as semver"),
        ("typescript", "lodash@git+https://x", "does not read as semver"),
    ],
)
def test_a_malformed_requirement_is_a_validation_error_naming_it(language: str, requirement: str, says: str) -> None:
    """A requirement its ecosystem would not read is refused when the definition is built, naming it."""
    with pytest.raises(ValidationError) as caught:
        b.definition(language=language, code=CODE, requirements=[requirement, "fine"])
    findings = caught.value.report.errors
    assert len(findings) == 1
    assert findings[0].rule_id == "definition.requirements"
    assert says in findings[0].message
    assert repr(requirement) in findings[0].message or not requirement


@pytest.mark.parametrize(
    ("language", "requirements"),
    [
        ("python", ["python-dateutil>=2.8", "numpy==2.*", "requests[socks]~=2.31"]),
        ("javascript", ["lodash@^4.17.21", "@scope/pkg@1.x", "zod", "semver@>=1.2.3 <2 || ^3"]),
    ],
)
def test_well_formed_requirements_are_kept_sorted_without_duplicates(language: str, requirements: list[str]) -> None:
    """Requirements compare as a set: order and repeats do not make another definition."""
    one = b.definition(language=language, code=CODE, requirements=requirements)
    other = b.definition(language=language, code=CODE, requirements=list(reversed(requirements)) + requirements[:1])
    assert one == other
    assert one.requirements == tuple(sorted(requirements))


def test_two_requirements_for_one_package_are_refused() -> None:
    """Constraints on one package belong in one requirement (PEP 503 names compare equal)."""
    with pytest.raises(ValidationError, match="name the same package"):
        b.definition(code=CODE, requirements=["Python_Dateutil>=2", "python-dateutil<3"])


def test_the_lock_is_part_of_the_code_hash_and_code_without_one_hashes_as_before() -> None:
    """Same code, other packages: another artifact. Code without requirements keeps its old address."""
    plain = b.definition(code=CODE)
    assert plain.code_hash == CodeHash.of("python", CODE)
    locked = b.definition(code=CODE, requirements=["six"], lock=b.lock())
    other = b.definition(code=CODE, requirements=["six"], lock=b.lock("six==1.16.0"))
    assert len({plain.code_hash, locked.code_hash, other.code_hash}) == 3
    assert not plain.same_code(locked)


@given(st.lists(st.sampled_from(["a==1", "b==2.0", "c==3.1.post1"]), min_size=1, unique=True))
def test_a_lock_digest_depends_on_its_packages_not_their_order(pins: list[str]) -> None:
    """The digest identifies the set of locked files, whatever order the resolver listed them in."""
    assert b.lock(*pins).digest == Lock("python", reversed(b.lock(*pins).packages), b.lock().platform).digest


def test_a_definition_with_unresolved_requirements_cannot_become_a_version() -> None:
    """Only the runtime makes locks; a tool is never stored with requirements and no lock."""
    unresolved = b.definition(code=CODE, requirements=["six"])
    with pytest.raises(ValidationError, match="not resolved"):
        Tool.create(tool_id="t", owner="a", definition=unresolved, now=b.T0)
    with pytest.raises(ValidationError, match="lock without requirements"):
        b.definition(code=CODE, lock=b.lock())


def test_an_agent_cannot_hand_over_a_lock() -> None:
    """A lock in a mapping is dropped: locks come from resolving requirements, never from the agent."""
    rt = toolrt.connect("memory")
    forged = {"packages": [{"name": "evil", "version": "1", "url": "file:///x", "sha256": "0" * 64}]}
    reg = rt.register_tool("a", {"name": "t", "description": "d", "language": "python", "code": CODE, "lock": forged})
    assert reg.tool.definition.lock is None and reg.code_hash == CodeHash.of("python", CODE)


def test_an_earlier_versions_lock_is_reused_for_the_same_requirements() -> None:
    """Same requirements as a kept version: its lock, and no resolution (an unchanged update stays one)."""
    builder = FakeBuilder(b.lock())
    requirements = Requirements(builder, ExecutionPolicy())
    earlier = b.definition(code=CODE, requirements=["six"], lock=b.lock("six==1.0"))
    again = requirements.resolve(b.definition(code=CODE, requirements=["six"]), [earlier])
    assert again.lock == earlier.lock and builder.calls == []
    fresh = requirements.resolve(b.definition(code=CODE, requirements=["six>=1"]), [earlier])
    assert fresh.lock == b.lock() and builder.calls == [("six>=1",)]
    assert requirements.resolve(b.definition(code=CODE)).lock is None


def test_denied_packages_are_refused_directly_and_as_dependencies() -> None:
    """The owner's denied names stop a requirement before resolving, and a dependency right after."""
    builder = FakeBuilder(b.lock("python-dateutil==2.9.0", "six==1.17.0"))
    requirements = Requirements(builder, ExecutionPolicy(denied_packages="Six, left_pad"))
    with pytest.raises(RequirementError) as direct:
        requirements.resolve(b.definition(code=CODE, requirements=["SIX>=1"]))
    assert direct.value.requirement == "SIX>=1" and direct.value.reason == "denied" and builder.calls == []
    with pytest.raises(RequirementError) as indirect:
        requirements.resolve(b.definition(code=CODE, requirements=["python-dateutil"]))
    assert indirect.value.requirement == "six" and "dependency of python-dateutil" in str(indirect.value)


def test_the_memory_profile_refuses_requirements_naming_the_local_profile() -> None:
    """Requirements are never silently ignored: the error names the profile that supports them."""
    settings = Settings.load({"profile": "memory", "aws_endpoint_url": None})
    builder = build_container(settings).adapters.environments()
    assert isinstance(builder, EnvironmentBuilder) and isinstance(builder, NoEnvironments)
    with pytest.raises(RequirementsUnsupportedError) as caught:
        builder.lock(Language.PYTHON, ("six",), max_bytes=1)
    assert caught.value.profile == "memory" and caught.value.supported_by == "local"
    assert "local" in str(caught.value)


def test_the_aws_profile_installs_python_requirements_in_code_interpreter_and_refuses_npm(tmp_path: Path) -> None:
    """On AgentCore the wheels go to Code Interpreter sessions; npm packages are refused, naming local."""
    from toolrt.adapters.aws.environments import CodeInterpreterEnvironments

    settings = Settings.load({"profile": "aws", "aws_endpoint_url": None, "data_dir": str(tmp_path)})
    builder = build_container(settings).adapters.environments()
    assert isinstance(builder, EnvironmentBuilder) and isinstance(builder, CodeInterpreterEnvironments)
    assert builder.supports(Language.PYTHON) and not builder.supports(Language.JAVASCRIPT)
    with pytest.raises(RequirementsUnsupportedError) as caught:
        builder.lock(Language.TYPESCRIPT, ("zod@^3",), max_bytes=1)
    assert caught.value.profile == "aws" and caught.value.supported_by == "local"


def test_registering_with_requirements_on_the_memory_profile_stores_nothing() -> None:
    """The memory profile refuses the registration with a typed error, and keeps no tool or artifact."""
    rt = toolrt.connect("memory")
    definition = attrs.evolve(b.definition(), requirements=("six",))
    with pytest.raises(RequirementsUnsupportedError, match="memory profile"):
        rt.register_tool("agent-a", definition)
    assert rt.list_tools("agent-a") == [] and list(rt.ports.artifacts.hashes()) == []
    assert rt.register_tool("agent-a", b.definition()).tool_id  # without requirements: as ever


def test_a_burst_of_registrations_runs_at_most_two_installers_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads resolving at once (one agent flooding registrations) never have more than
    MAX_CONCURRENT_INSTALLERS pip processes running: the rest queue for a slot."""
    import subprocess
    import threading
    import time

    from toolrt.adapters.local import environments

    running, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(30)  # hold the slot until every thread has had its chance to start
        with lock:
            running -= 1
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("toolrt.adapters.local.environments.subprocess.run", fake_run)
    pip = environments.PipEnvironments(tmp_path / "envs")
    threads = [threading.Thread(target=pip._pip, args=(["--version"],)) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while most < environments.MAX_CONCURRENT_INSTALLERS and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the other six try for a slot meanwhile
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert most == environments.MAX_CONCURRENT_INSTALLERS
