"""A process killed with SIGKILL mid-registration leaves a local store the doctor reports and repairs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from tests.spawn import children_find_tests
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.adapters.system import SystemClock
from toolrt.application.repair_store import Problem, RepairRequest, RepairStore
from toolrt.contracts import builders as b
from toolrt.domain import (
    Artifact,
    Execution,
    ExecutionStatus,
    NotFoundError,
    Tool,
    ToolDefinition,
    ValidationReport,
    normalize_code,
)
from toolrt.ports import ToolQuery

CTX = multiprocessing.get_context("spawn")


def _artifact(definition: ToolDefinition) -> Artifact:
    return Artifact(
        code_hash=definition.code_hash,
        language=definition.language,
        code=normalize_code(definition.code),
        entrypoint=definition.entrypoint,
        report=ValidationReport(policy_version="test-1"),
        created_at=b.T0,
    )


def _register(repo: SqliteToolRepository, store: FileArtifactStore, tool_id: str, definition: ToolDefinition) -> None:
    store.put(_artifact(definition))
    repo.add(Tool.create(tool_id=tool_id, owner="agent-a", definition=definition, now=b.T0))


def _stop_between_put_and_add(db: str, root: str, ready: Event) -> None:
    repo, store = SqliteToolRepository(Path(db)), FileArtifactStore(Path(root))
    _register(repo, store, "tool-done", b.definition("done"))
    store.put(_artifact(b.definition("half")))
    ready.set()
    time.sleep(120)  # killed here, before repo.add


def _stop_inside_an_artifact_write(db: str, root: str, ready: Event) -> None:
    repo, store = SqliteToolRepository(Path(db)), FileArtifactStore(Path(root))
    _register(repo, store, "tool-one", b.definition("one"))
    _register(repo, store, "tool-two", b.definition("two"))
    real_fsync = os.fsync

    def fsync_then_stop(fd: Any) -> None:
        # The temp file is written and about to become durable: the kill lands before its link.
        real_fsync(fd)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            ready.set()
            time.sleep(120)

    os.fsync = fsync_then_stop  # this child only; it never returns from the next write
    store.put(_artifact(b.definition("cut")))


def _stop_inside_a_transaction(db: str, ready: Event) -> None:
    repo = SqliteToolRepository(Path(db))

    def tools() -> Iterator[Tool]:
        yield b.tool("tool-uncommitted-1", name="one")
        ready.set()
        time.sleep(120)  # killed here, with the first tool written but not committed
        yield b.tool("tool-uncommitted-2", name="two")

    repo.add_many(tools())


def _record_then_stop(db: str, ready: Event) -> None:
    repo = SqliteToolRepository(Path(db), record_sync_s=3600)  # the background fsync never comes in time
    repo.record_execution(Execution("e-recorded", "t1", 1, "agent-a", ExecutionStatus.SUCCEEDED, b.T0, output=42))
    ready.set()
    time.sleep(120)  # killed here, right after record_execution returned


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "tools.sqlite", tmp_path / "artifacts"


def test_killed_between_artifact_and_record_leaves_a_removable_orphan(paths: tuple[Path, Path]) -> None:
    """The artifact stored just before the kill is reported as an orphan and removed by the repair."""
    db, root = paths
    ready = CTX.Event()
    child = CTX.Process(target=_stop_between_put_and_add, args=(str(db), str(root), ready))
    with children_find_tests():
        child.start()
    assert ready.wait(60)
    _kill(child)

    repo, store = SqliteToolRepository(db), FileArtifactStore(root)
    doctor = RepairStore(tools=repo, references=repo, index=repo, artifacts=store, clock=SystemClock())
    half = b.definition("half").code_hash
    report = doctor.execute(RepairRequest(orphan_grace_s=0))
    assert [(f.problem, f.subject) for f in report.findings] == [(Problem.ORPHAN_ARTIFACT, str(half))]
    assert store.get(half) is not None

    repaired = doctor.execute(RepairRequest(repair=True, orphan_grace_s=0))
    assert repaired.unresolved == ()
    assert store.get(half) is None
    assert doctor.execute(RepairRequest(orphan_grace_s=0)).clean
    assert [t.tool_id for t in repo.list(ToolQuery())] == ["tool-done"]
    repo.close()


def test_killed_mid_artifact_write_leaves_only_a_stale_temp_file(paths: tuple[Path, Path]) -> None:
    """A write cut short never shows as an artifact; its temp file is listed and removed as stale."""
    db, root = paths
    ready = CTX.Event()
    child = CTX.Process(target=_stop_inside_an_artifact_write, args=(str(db), str(root), ready))
    with children_find_tests():
        child.start()
    assert ready.wait(60)
    _kill(child)

    store = FileArtifactStore(root)
    stale = store.stale_temp_files(older_than_s=0)
    assert stale and all(p.name.startswith(".tmp-") for p in stale)
    assert store.stale_temp_files(older_than_s=3600) == []  # a live writer's file is never stale
    repo = SqliteToolRepository(db)
    stored = list(store.hashes())
    for h in stored:
        assert store.get(h) is not None  # every listed artifact is whole and matches its hash

    doctor = RepairStore(tools=repo, references=repo, index=repo, artifacts=store, clock=SystemClock())
    doctor.execute(RepairRequest(repair=True, orphan_grace_s=0))
    assert store.remove_stale_temp_files(older_than_s=0) == stale
    assert store.stale_temp_files(older_than_s=0) == []
    assert doctor.execute(RepairRequest(orphan_grace_s=0)).clean
    tools = repo.list(ToolQuery())
    assert sorted(t.tool_id for t in tools) == ["tool-one", "tool-two"]
    assert store.get(b.definition("cut").code_hash) is None
    assert set(store.hashes()) == {t.code_hash for t in tools}
    repo.close()


def test_killed_inside_a_transaction_leaves_no_half_written_record(paths: tuple[Path, Path]) -> None:
    """An uncommitted write of a killed process vanishes, and its lock does not outlive it."""
    db, root = paths
    SqliteToolRepository(db).close()
    ready = CTX.Event()
    child = CTX.Process(target=_stop_inside_a_transaction, args=(str(db), ready))
    with children_find_tests():
        child.start()
    assert ready.wait(60)
    _kill(child)

    repo = SqliteToolRepository(db, busy_timeout_s=30)
    with pytest.raises(NotFoundError):
        repo.get("tool-uncommitted-1")
    assert repo.search_index_problems() == []  # the index entry went with the uncommitted record
    repo.add(b.tool("tool-uncommitted-1", name="one"))  # the killed writer's lock is gone
    assert repo.get("tool-uncommitted-1").name == "one"
    store = FileArtifactStore(root)
    store.put(_artifact(b.definition("one")))
    assert (
        RepairStore(tools=repo, references=repo, index=repo, artifacts=store, clock=SystemClock())
        .execute(RepairRequest(orphan_grace_s=0))
        .clean
    )
    repo.close()


def test_an_execution_record_outlives_the_process_killed_right_after_recording_it(paths: tuple[Path, Path]) -> None:
    """record_execution returns once the record is in the WAL: a SIGKILL right after loses nothing,
    even before the background fsync."""
    db, _ = paths
    ready = CTX.Event()
    child = CTX.Process(target=_record_then_stop, args=(str(db), ready))
    with children_find_tests():
        child.start()
    assert ready.wait(60)
    _kill(child)

    repo = SqliteToolRepository(db)
    assert repo.get_execution("e-recorded").output == 42
    repo.close()
