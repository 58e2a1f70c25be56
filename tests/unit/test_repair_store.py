"""RepairStore on the memory adapters: what `toolrt doctor` reports and what `--repair` fixes."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryToolRepository
from toolrt.application.repair_store import Problem, RepairReport, RepairRequest, RepairStore
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, CodeHash, Language, Tool, ValidationReport, normalize_code

NOW = b.T0 + timedelta(days=1)


class FixedClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now_value = now

    def now(self) -> datetime:
        return self.now_value


class Store:
    """A memory repository and artifact store, with a helper to register like RegisterTool does."""

    def __init__(self) -> None:
        self.repo = InMemoryToolRepository()
        self.artifacts = InMemoryArtifactStore()
        self.clock = FixedClock()

    def register(self, tool: Tool) -> Tool:
        for v in tool.versions:
            self.artifacts.put(artifact_of(v.definition.code, created_at=b.T0))
        self.repo.add(tool)
        return tool

    def check(self, repair: bool = False, grace_s: float = 600.0) -> RepairReport:
        use_case = RepairStore(
            tools=self.repo, references=self.repo, index=self.repo, artifacts=self.artifacts, clock=self.clock
        )
        return use_case.execute(RepairRequest(repair=repair, orphan_grace_s=grace_s))


def artifact_of(code: str, created_at: datetime = b.T0) -> Artifact:
    return Artifact(
        code_hash=CodeHash.of("python", code),
        language=Language.PYTHON,
        code=normalize_code(code),
        entrypoint="handler",
        report=ValidationReport(policy_version="test-1"),
        created_at=created_at,
    )


def kinds(report: RepairReport) -> list[tuple[Problem, str]]:
    return [(f.problem, f.subject) for f in report.findings]


def test_a_consistent_store_is_clean() -> None:
    """Tools whose artifacts all exist, and no stray artifact, give a clean report and no action."""
    s = Store()
    s.register(b.tool("t1", name="one"))
    s.register(b.tool("t2", name="two"))
    report = s.check(repair=True)
    assert report.clean and report.actions == () and report.unresolved == ()
    assert report.tools_checked == 2 and report.artifacts_checked == 2


def test_orphan_artifact_is_reported_then_removed() -> None:
    """An artifact no tool references (a registration died before adding its tool) is removed on repair."""
    s = Store()
    s.register(b.tool("t1"))
    orphan = artifact_of("def handler():\n    return 'orphan'")
    s.artifacts.put(orphan)

    report = s.check()
    assert kinds(report) == [(Problem.ORPHAN_ARTIFACT, str(orphan.code_hash))]
    assert report.findings[0].repairable and report.actions == ()
    assert s.artifacts.get(orphan.code_hash) == orphan  # reporting changes nothing

    repaired = s.check(repair=True)
    assert [(a.action, a.ok) for a in repaired.actions] == [("remove", True)]
    assert repaired.unresolved == ()
    assert s.artifacts.get(orphan.code_hash) is None
    assert s.check().clean


def test_young_orphans_are_left_for_registrations_in_progress() -> None:
    """An unreferenced artifact younger than the grace period is reported but never removed."""
    s = Store()
    young = artifact_of("def handler():\n    return 'young'", created_at=NOW - timedelta(seconds=5))
    s.artifacts.put(young)
    report = s.check(repair=True)
    assert kinds(report) == [(Problem.ORPHAN_ARTIFACT, str(young.code_hash))]
    assert not report.findings[0].repairable and report.actions == ()
    assert s.artifacts.get(young.code_hash) == young
    assert s.check(repair=True, grace_s=0).unresolved == ()
    assert s.artifacts.get(young.code_hash) is None


def test_missing_artifact_is_restored_from_the_tool_version() -> None:
    """A referenced artifact that vanished is rebuilt from the definition and marked for re-validation."""
    s = Store()
    code = "def handler(a, b):   \r\n    return a + b\r\n\r\n"
    t = s.register(b.tool("t1", code=code))
    s.artifacts.delete(t.code_hash)

    report = s.check()
    assert kinds(report) == [(Problem.MISSING_ARTIFACT, str(t.code_hash))]
    assert s.artifacts.get(t.code_hash) is None

    s.check(repair=True)
    restored = s.artifacts.get(t.code_hash)
    assert restored is not None
    assert restored.code == normalize_code(code)
    assert restored.entrypoint == "handler" and restored.language is Language.PYTHON
    assert restored.report == ValidationReport(policy_version="restored")
    assert s.check().clean


def test_every_version_of_an_active_tool_keeps_its_artifact() -> None:
    """Artifacts of older versions are needed too (rollback), so a missing one is restored."""
    s = Store()
    t = s.register(b.tool("t1"))
    t2 = t.with_version(b.definition(code="def handler(a, b):\n    return a * b"), NOW)
    s.artifacts.put(artifact_of(t2.definition.code))
    s.repo.save(t2)
    s.artifacts.delete(t.code_hash)
    assert kinds(s.check(repair=True)) == [(Problem.MISSING_ARTIFACT, str(t.code_hash))]
    assert s.artifacts.get(t.code_hash) is not None


def test_inactive_tools_need_no_artifacts() -> None:
    """A deregistered tool's missing artifact is not a problem; its leftover artifact is an orphan."""
    s = Store()
    gone = s.register(b.tool("t1", name="gone"))
    s.repo.save(gone.deactivated(NOW))
    kept = s.register(b.tool("t2", name="kept"))
    s.repo.save(kept.deactivated(NOW))
    s.artifacts.delete(gone.code_hash)
    report = s.check(repair=True)
    assert kinds(report) == [(Problem.ORPHAN_ARTIFACT, str(kept.code_hash))]
    assert s.artifacts.get(gone.code_hash) is None and s.artifacts.get(kept.code_hash) is None


def test_shared_artifact_stays_while_one_tool_uses_it() -> None:
    """Code shared by two tools is no orphan after one of them is deregistered."""
    s = Store()
    code = "def handler(a, b):\n    return a + b"
    t1 = s.register(b.tool("t1", owner="a", code=code))
    s.register(b.tool("t2", owner="b", code=code))
    s.repo.save(t1.deactivated(NOW))
    assert s.check(repair=True).clean
    assert s.artifacts.get(t1.code_hash) is not None


def test_corrupt_artifact_is_replaced() -> None:
    """An artifact whose content does not match its hash is removed and rebuilt from the tool."""
    s = Store()
    t = s.register(b.tool("t1"))
    s.artifacts.delete(t.code_hash)
    s.artifacts.put(attrs.evolve(artifact_of("def handler():\n    return 'other'"), code_hash=t.code_hash))

    report = s.check(repair=True)
    assert kinds(report) == [(Problem.CORRUPT_ARTIFACT, str(t.code_hash))]
    assert [(a.action, a.ok) for a in report.actions] == [("remove", True), ("restore", True)]
    restored = s.artifacts.get(t.code_hash)
    assert restored is not None and restored.code == normalize_code(t.definition.code)
    assert s.check().clean


def test_inconsistent_record_is_rewritten() -> None:
    """A record pointing at a version that does not exist, under a stale name, is corrected and saved."""
    s = Store()
    s.register(b.tool("t1", name="add"))
    t = b.tool("t2", name="sub")
    broken = attrs.evolve(t, current_version=7, name="wrong")
    s.artifacts.put(artifact_of(t.definition.code))
    s.repo.add(broken)

    report = s.check()
    assert kinds(report) == [(Problem.INCONSISTENT_TOOL, "t2")]
    assert "current version 7" in report.findings[0].message
    assert s.repo.get("t2") == broken

    s.check(repair=True)
    fixed = s.repo.get("t2")
    assert fixed.current_version == 1 and fixed.name == "sub"
    assert fixed.record_version == broken.record_version + 1
    assert s.check().clean


def test_wrong_code_hash_in_history_is_recomputed_and_its_artifact_restored() -> None:
    """A version recording a hash its code does not have is corrected, and the right artifact ensured."""
    s = Store()
    t = s.register(b.tool("t1"))
    wrong = CodeHash("f" * 64)
    bad = attrs.evolve(t, versions=(attrs.evolve(t.versions[0], code_hash=wrong),))
    s.repo.delete("t1")
    s.repo.add(bad)
    s.artifacts.delete(t.code_hash)

    report = s.check(repair=True)
    assert [f.problem for f in report.findings] == [Problem.INCONSISTENT_TOOL, Problem.MISSING_ARTIFACT]
    assert report.unresolved == ()
    assert s.repo.get("t1").code_hash == t.code_hash
    assert s.artifacts.get(t.code_hash) is not None
    assert s.check().clean
