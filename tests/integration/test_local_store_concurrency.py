"""Four processes registering, updating and deregistering the same tools against one local store."""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.spawn import children_find_tests
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.adapters.system import SystemClock
from toolrt.application.repair_store import RepairRequest, RepairStore
from toolrt.contracts import builders as b
from toolrt.domain import (
    Artifact,
    CodeHash,
    ConflictError,
    Language,
    NotFoundError,
    Tool,
    ToolDefinition,
    TransientError,
    ValidationReport,
    Visibility,
    normalize_code,
)
from toolrt.ports import ToolQuery

OWNER = "agent-shared"
SEED_TOOLS = [f"tool-seed-{i}" for i in range(5)]
NAMES = [f"shared-{i}" for i in range(4)]
# A small pool so that tools share code and artifacts across processes.
CODES = [f"def handler(a, b):\n    return a + b + {i}\n" for i in range(6)]
WORKERS = 4
OPS_PER_WORKER = 80


def _artifact(definition: ToolDefinition) -> Artifact:
    return Artifact(
        code_hash=definition.code_hash,
        language=definition.language,
        code=normalize_code(definition.code),
        entrypoint=definition.entrypoint,
        report=ValidationReport(policy_version="test-1"),
        created_at=b.T0,
    )


def _release(repo: SqliteToolRepository, store: FileArtifactStore, hashes: frozenset[CodeHash]) -> None:
    # As DeregisterTool does: drop an artifact once no tool references it.
    for h in hashes:
        if not repo.references(h):
            store.delete(h)


def _worker(db: str, root: str, index: int, seed: int) -> tuple[dict[str, int], list[str], list[str], int]:
    """Run a random mix of operations; return successful saves per tool, added ids, deleted ids, conflicts."""
    rng = random.Random(seed)
    repo = SqliteToolRepository(Path(db), busy_timeout_s=30)
    store = FileArtifactStore(Path(root))
    saves: Counter[str] = Counter()
    added: list[str] = []
    deleted: list[str] = []
    conflicts = 0
    clock = SystemClock()
    try:
        for op in range(OPS_PER_WORKER):
            roll = rng.random()
            if roll < 0.25:
                tool_id = f"tool-w{index}-{op}"
                definition = b.definition(rng.choice(NAMES), code=rng.choice(CODES))
                created = store.put(_artifact(definition))
                try:
                    repo.add(Tool.create(tool_id=tool_id, owner=OWNER, definition=definition, now=clock.now()))
                    added.append(tool_id)
                except ConflictError:
                    conflicts += 1
                    if created:
                        _release(repo, store, frozenset({definition.code_hash}))
                continue
            ids = [t.tool_id for t in repo.list(ToolQuery(owner=OWNER, status=None))]
            tool_id = rng.choice(ids)
            while True:
                try:
                    tool = repo.get(tool_id)
                    if not tool.is_active:
                        break
                    if roll < 0.75:
                        if rng.random() < 0.5:
                            changed = tool.with_visibility(
                                rng.choice([Visibility.PRIVATE, Visibility.SHARED, Visibility.PUBLIC]), clock.now()
                            )
                        else:
                            definition = b.definition(tool.name, code=rng.choice(CODES))
                            store.put(_artifact(definition))
                            changed = tool.with_version(definition, clock.now())
                        repo.save(changed)
                        saves[tool_id] += 1
                    elif roll < 0.92:
                        repo.save(tool.deactivated(clock.now()))
                        saves[tool_id] += 1
                        _release(repo, store, tool.code_hashes)
                    else:
                        repo.delete(tool_id)
                        deleted.append(tool_id)
                        _release(repo, store, tool.code_hashes)
                    break
                except (ConflictError, TransientError):
                    conflicts += 1  # someone else changed it first: re-read and try again
                except NotFoundError:
                    break
    finally:
        repo.close()
    return dict(saves), added, deleted, conflicts


def test_four_processes_end_with_a_consistent_store(tmp_path: Path) -> None:
    """Concurrent processes never lose an update and leave reference sets exactly matching the tools."""
    db, root = tmp_path / "tools.sqlite", tmp_path / "artifacts"
    repo = SqliteToolRepository(db)
    store = FileArtifactStore(root)
    for i, tool_id in enumerate(SEED_TOOLS):
        definition = b.definition(f"seed-{i}", code=CODES[i % len(CODES)])
        store.put(_artifact(definition))
        repo.add(Tool.create(tool_id=tool_id, owner=OWNER, definition=definition, now=b.T0))

    ctx = multiprocessing.get_context("spawn")
    with children_find_tests(), ctx.Pool(WORKERS) as pool:
        results = pool.starmap(_worker, [(str(db), str(root), i, 1000 + i) for i in range(WORKERS)])

    saves: Counter[str] = Counter()
    added = set(SEED_TOOLS)
    deleted: set[str] = set()
    for worker_saves, worker_added, worker_deleted, _ in results:
        saves.update(worker_saves)
        added.update(worker_added)
        deleted.update(worker_deleted)

    tools = {t.tool_id: t for t in repo.list(ToolQuery(status=None, limit=10_000))}
    assert set(tools) == added - deleted
    # No lost update: every successful save moved the record version by exactly one.
    for tool_id, tool in tools.items():
        assert tool.record_version == 1 + saves[tool_id], tool_id
        assert repo.get(tool_id) == tool
    active_names = [t.name for t in tools.values() if t.is_active]
    assert len(active_names) == len(set(active_names))

    hashes = {CodeHash.of(Language.PYTHON.value, c) for c in CODES}
    for t in tools.values():
        hashes |= t.code_hashes
    for h in hashes:
        assert repo.references(h) == {t.tool_id for t in tools.values() if t.is_active and h in t.code_hashes}
        assert {t.tool_id for t in repo.find_by_code_hash(h)} == {
            t.tool_id for t in tools.values() if h in t.code_hashes
        }

    # Artifact clean-up races registrations by design; the doctor brings the directory back in line.
    repair = RepairStore(tools=repo, references=repo, index=repo, artifacts=store, clock=SystemClock())
    repair.execute(RepairRequest(repair=True, orphan_grace_s=0))
    assert repair.execute(RepairRequest(orphan_grace_s=0)).clean
    needed = {h for t in tools.values() if t.is_active for h in t.code_hashes}
    assert set(store.hashes()) == needed
    repo.close()


def test_concurrent_execution_records_are_group_committed_and_all_durable(tmp_path: Path) -> None:
    """64 threads recording at once: every record is stored (read back by a fresh connection), and
    fewer transactions than records were needed."""
    import threading

    from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
    from toolrt.contracts import builders as b
    from toolrt.domain import Execution

    repo = SqliteToolRepository(tmp_path / "tools.db")
    writes: list[int] = []
    original = repo.database.write

    def counting(doing: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        writes.append(1)
        return original(doing, **kwargs)

    repo.database.write = counting  # type: ignore[method-assign]
    barrier = threading.Barrier(64)

    def record(i: int) -> None:
        barrier.wait()
        repo.record_execution(Execution(f"e{i}", "t1", 1, "agent-a", "succeeded", b.T0, output=i))

    threads = [threading.Thread(target=record, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = SqliteToolRepository(tmp_path / "tools.db")
    assert sorted(fresh.get_execution(f"e{i}").output for i in range(64)) == list(range(64))
    assert len(writes) < 64
    repo.close()
    fresh.close()


def test_a_failed_group_commit_fails_every_caller_in_it(tmp_path: Path) -> None:
    """No caller is told its record is stored when the transaction holding it failed."""
    import sqlite3
    import threading

    import pytest

    from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
    from toolrt.contracts import builders as b
    from toolrt.domain import Execution, NotFoundError, StorageError

    repo = SqliteToolRepository(tmp_path / "tools.db")
    conn = sqlite3.connect(tmp_path / "tools.db")
    conn.execute("CREATE TRIGGER no_exec BEFORE INSERT ON executions BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    conn.commit()
    errors: list[BaseException] = []

    def record(i: int) -> None:
        try:
            repo.record_execution(Execution(f"e{i}", "t1", 1, "agent-a", "succeeded", b.T0))
        except StorageError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8
    with pytest.raises(NotFoundError):
        repo.get_execution("e0")
    repo.close()


def test_execution_records_reach_the_disk_off_the_callers_path_and_tool_writes_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record's commit does not fsync: the WAL is fsynced once for the records of an interval by
    the background thread, and by close() for the last ones; tool writes still commit with FULL.
    Tools read back are decoded once per stored text, and a change is seen at once."""
    import os
    import sqlite3
    import time

    import attrs

    from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
    from toolrt.contracts import builders as b
    from toolrt.domain import Execution, Visibility

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr("toolrt.adapters.local.sqlite.database.os.fsync", spy)
    wal = str(tmp_path / "tools.db-wal")

    repo = SqliteToolRepository(tmp_path / "tools.db", record_sync_s=0.05)
    for i in range(20):
        repo.record_execution(Execution(f"e{i}", "t1", 1, "agent-a", "succeeded", b.T0, output=i))
    deadline = time.monotonic() + 30
    while wal not in synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert synced and set(synced) == {wal}
    assert len(synced) < 20  # one fsync covered many records
    conn = repo.database.connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: the records' commits
    repo.add(b.tool("t1"))
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for a tool write

    first = repo.get("t1")
    assert repo.get("t1") is first  # the same stored text: decoded once
    changed = Visibility.PRIVATE if first.visibility is not Visibility.PRIVATE else Visibility.PUBLIC
    repo.save(attrs.evolve(first, visibility=changed, record_version=first.record_version + 1))
    assert repo.get("t1").visibility is changed

    synced.clear()
    slow = SqliteToolRepository(tmp_path / "tools.db", record_sync_s=3600)
    slow.record_execution(Execution("e-last", "t1", 1, "agent-a", "succeeded", b.T0))
    assert synced == []  # not on the caller's path
    slow.close()
    assert synced == [wal]  # close() syncs before it returns
    fresh = sqlite3.connect(tmp_path / "tools.db")
    assert fresh.execute("SELECT count(*) FROM executions").fetchone()[0] == 21
    fresh.close()
    repo.close()


def test_record_sync_zero_waits_for_the_disk_on_each_record(tmp_path: Path) -> None:
    """record_sync_s=0 keeps synchronous=FULL for execution records (no background thread)."""
    from toolrt.domain import Execution, ValidationError

    repo = SqliteToolRepository(tmp_path / "tools.db", record_sync_s=0)
    repo.record_execution(Execution("e1", "t1", 1, "agent-a", "succeeded", b.T0))
    assert not repo.database.syncs_in_background
    assert repo.database.connection().execute("PRAGMA synchronous").fetchone()[0] == 2
    assert repo.get_execution("e1").caller == "agent-a"
    repo.close()
    with pytest.raises(ValidationError, match="record_sync_s"):
        SqliteToolRepository(tmp_path / "other.db", record_sync_s=-1)
