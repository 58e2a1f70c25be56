"""Behaviour of the local stores beyond the shared contracts: files on disk, schema, locks, tampering."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolrt.adapters.local import _serde
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SCHEMA_VERSION, SqliteToolRepository
from toolrt.adapters.system import SystemClock
from toolrt.application.repair_store import Problem, RepairRequest, RepairStore
from toolrt.contracts import builders as b
from toolrt.domain import (
    Artifact,
    CodeHash,
    ConflictError,
    Execution,
    ExecutionFailure,
    ExecutionMetrics,
    ExecutionStatus,
    Finding,
    Language,
    Limits,
    Severity,
    StorageError,
    Tool,
    ToolDefinition,
    TransientError,
    ValidationError,
    ValidationReport,
    Visibility,
    check_new_tool_name,
)
from toolrt.ports import ToolQuery

# -- the SQLite repository -----------------------------------------------------------------------


def test_tools_survive_reopening_the_file(tmp_path: Path) -> None:
    """A second repository on the same file (another process, a restart) sees every stored tool."""
    db = tmp_path / "data" / "tools.sqlite"
    with SqliteToolRepository(db) as repo:
        t = b.tool()
        repo.add(t)
        repo.save(t.with_visibility(Visibility.PUBLIC, b.T0))
        repo.record_execution(b.execution())
    with SqliteToolRepository(db) as again:
        assert again.get(t.tool_id) == t.with_visibility(Visibility.PUBLIC, b.T0)
        assert again.get_execution("exec-1") == b.execution()
        assert again.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A file written by a newer toolrt is not silently misread."""
    db = tmp_path / "tools.sqlite"
    SqliteToolRepository(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match=r"tools\.sqlite.*newer than this toolrt"):
        SqliteToolRepository(db)


def test_a_lock_held_too_long_is_a_transient_error(tmp_path: Path) -> None:
    """When another writer holds the database beyond the busy timeout, the caller gets a retryable error."""
    db = tmp_path / "tools.sqlite"
    repo = SqliteToolRepository(db, busy_timeout_s=0.05)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TransientError, match="locked") as caught:
            repo.add(b.tool())
        assert caught.value.retryable
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    repo.add(b.tool())
    repo.close()


def test_an_unreadable_record_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    """A damaged row surfaces as StorageError with the tool id and the file, not as a crash."""
    db = tmp_path / "tools.sqlite"
    repo = SqliteToolRepository(db)
    repo.add(b.tool("tool-1"))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE tools SET body = '{\"tool_id\": 3' WHERE tool_id = 'tool-1'")
    with pytest.raises(StorageError, match=r"tools\.sqlite.*'tool-1'"):
        repo.get("tool-1")
    repo.close()


def test_threads_sharing_a_repository_lose_no_update(tmp_path: Path) -> None:
    """Threads retrying on ConflictError each land their change exactly once."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    repo.add(b.tool("tool-1"))
    successes: list[int] = []

    def work() -> None:
        done = 0
        for _ in range(15):
            while True:
                t = repo.get("tool-1")
                try:
                    repo.save(t.with_visibility(Visibility.SHARED, b.T0))
                    done += 1
                    break
                except ConflictError:
                    continue
        successes.append(done)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert repo.get("tool-1").record_version == 1 + sum(successes) == 1 + 6 * 15
    repo.close()


def test_add_many_is_all_or_nothing(tmp_path: Path) -> None:
    """A bulk add with one conflicting tool stores none of them."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    repo.add(b.tool("tool-0", name="taken"))
    with pytest.raises(ConflictError):
        repo.add_many([b.tool("tool-1", name="free"), b.tool("tool-2", name="taken")])
    assert [t.tool_id for t in repo.list(ToolQuery())] == ["tool-0"]
    assert repo.add_many(b.tool(f"tool-{i}", name=f"n{i}") for i in range(1, 4)) == 3
    repo.close()


def test_text_search_folds_unicode_case(tmp_path: Path) -> None:
    """Text search matches names and descriptions case-insensitively beyond ASCII."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    repo.add(Tool.create(tool_id="t1", owner="a", definition=b.definition("x", description="ÉTÉ weather"), now=b.T0))
    assert [t.tool_id for t in repo.list(ToolQuery(text="été"))] == ["t1"]
    repo.close()


def test_doctor_rewrites_a_record_whose_references_were_lost(tmp_path: Path) -> None:
    """A tool row without its reference rows is reported and rewritten so its code is referenced again."""
    db = tmp_path / "tools.sqlite"
    repo, store = SqliteToolRepository(db), FileArtifactStore(tmp_path / "artifacts")
    t = b.tool("tool-1")
    store.put(b.artifact(t.definition.code))
    repo.add(t)
    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM code_refs WHERE tool_id = 'tool-1'")
    assert repo.references(t.code_hash) == frozenset()

    doctor = RepairStore(tools=repo, references=repo, index=repo, artifacts=store, clock=SystemClock())
    report = doctor.execute(RepairRequest())
    assert [(f.problem, f.subject) for f in report.findings] == [(Problem.INCONSISTENT_TOOL, "tool-1")]
    assert doctor.execute(RepairRequest(repair=True)).unresolved == ()
    assert repo.references(t.code_hash) == {"tool-1"}
    assert repo.get("tool-1").record_version == 2
    assert doctor.execute(RepairRequest()).clean
    repo.close()


def test_a_closed_repository_refuses_work(tmp_path: Path) -> None:
    """Using a closed repository is a clear StorageError, not a crash inside sqlite3."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    repo.close()
    with pytest.raises(StorageError, match="closed"):
        repo.get("tool-1")


# -- the file artifact store ---------------------------------------------------------------------


def test_artifacts_are_content_addressed_files(tmp_path: Path) -> None:
    """An artifact lives at root/ab/abcdef....json, readable JSON, and no temp file stays behind."""
    store = FileArtifactStore(tmp_path)
    a = b.artifact()
    store.put(a)
    h = str(a.code_hash)
    assert store.path_of(a.code_hash) == tmp_path / h[:2] / f"{h}.json"
    assert os.listdir(tmp_path / h[:2]) == [f"{h}.json"]
    assert '"code_hash":"' + h in (tmp_path / h[:2] / f"{h}.json").read_text()


def test_racing_writers_create_an_artifact_once(tmp_path: Path) -> None:
    """Of many threads putting the same artifact, exactly one creates it and the file is whole."""
    store = FileArtifactStore(tmp_path)
    a = b.artifact()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def put() -> None:
        barrier.wait()
        results.append(store.put(a))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.get(a.code_hash) == a
    assert store.stale_temp_files(older_than_s=0) == []


def test_tampered_code_is_refused(tmp_path: Path) -> None:
    """An artifact file whose code was edited no longer matches its hash and is refused."""
    store = FileArtifactStore(tmp_path)
    a = b.artifact()
    store.put(a)
    path = store.path_of(a.code_hash)
    path.write_text(path.read_text().replace("return 1", "return 2"))
    with pytest.raises(StorageError, match="does not match its hash"):
        store.get(a.code_hash)


def test_malformed_file_is_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    """A truncated artifact file is reported with its path."""
    store = FileArtifactStore(tmp_path)
    a = b.artifact()
    store.put(a)
    path = store.path_of(a.code_hash)
    path.write_text(path.read_text()[:20])
    with pytest.raises(StorageError, match=str(path)):
        store.get(a.code_hash)


def test_symbolic_links_are_not_followed(tmp_path: Path) -> None:
    """An artifact or shard replaced by a symlink is refused rather than read from elsewhere."""
    root = tmp_path / "artifacts"
    store = FileArtifactStore(root)
    a = b.artifact()
    store.put(a)
    path = store.path_of(a.code_hash)
    outside = tmp_path / "outside.json"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(StorageError, match="symbolic link"):
        store.get(a.code_hash)

    shard = path.parent
    moved = tmp_path / "elsewhere"
    shard.rename(moved)
    shard.symlink_to(moved)
    with pytest.raises(StorageError, match="symbolic link"):
        store.get(a.code_hash)


def test_stale_temp_files_are_listed_and_removed(tmp_path: Path) -> None:
    """Temp files older than the age limit are listed and removed; artifacts are never touched."""
    store = FileArtifactStore(tmp_path)
    a = b.artifact()
    store.put(a)
    leftover = store.path_of(a.code_hash).parent / ".tmp-0123456789ab-1-deadbeef"
    leftover.write_text('{"half": ')
    old = leftover.stat().st_mtime - 3600
    os.utime(leftover, (old, old))
    assert list(store.hashes()) == [a.code_hash]
    assert store.stale_temp_files(older_than_s=60) == [leftover]
    assert store.remove_stale_temp_files(older_than_s=60) == [leftover]
    assert not leftover.exists() and store.get(a.code_hash) == a


def test_put_refuses_an_artifact_whose_code_does_not_match(tmp_path: Path) -> None:
    """A caller cannot store code under another code's address."""
    store = FileArtifactStore(tmp_path)
    wrong = Artifact(
        CodeHash("0" * 64), Language.PYTHON, "def handler():\n    return 1", "handler", ValidationReport(), b.T0
    )
    with pytest.raises(StorageError, match="hashes to"):
        store.put(wrong)
    assert list(store.hashes()) == []


# -- the JSON layout: every stored type round-trips ----------------------------------------------

names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,20}\Z")
# A new version's name never reads as holding "__" ("--", "-_", "_-" show as "__"): reserved for owners.
tool_names = names.filter(lambda n: not any(pair in n for pair in ("__", "--", "-_", "_-")))
datetimes = st.datetimes(timezones=st.just(UTC))
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
findings = st.builds(
    Finding,
    st.text(max_size=20),
    st.sampled_from(Severity),
    st.text(max_size=40),
    st.integers(0, 500),
    st.integers(0, 200),
    st.text(max_size=20),
)
reports = st.builds(ValidationReport, st.lists(findings, max_size=3), st.text(max_size=10))
definitions = st.builds(
    ToolDefinition,
    name=tool_names,
    description=st.text(max_size=50),
    language=st.sampled_from(Language),
    code=st.text(min_size=1, max_size=80).filter(str.strip),
    input_schema=st.just({"type": "object", "properties": {"x": {"type": "number"}}}),
    output_schema=st.none() | st.just({"type": "number"}),
    limits=st.builds(
        Limits,
        st.none() | st.floats(0.01, 100),
        st.none() | st.integers(1, 4096),
        st.none() | st.integers(1, 10**9),
    ),
    tags=st.lists(names, max_size=3),
)


def _may_rename(definition: ToolDefinition) -> bool:
    try:
        check_new_tool_name(definition.name)
    except ValidationError:
        return False
    return True


@st.composite
def tools(draw: st.DrawFn) -> Tool:
    visibility = draw(st.sampled_from(Visibility))
    tool = Tool.create(
        tool_id=draw(names),
        owner=draw(st.text(min_size=1, max_size=10)),
        definition=draw(definitions),
        now=draw(datetimes),
        visibility=visibility,
        team=draw(names) if visibility is Visibility.TEAM else None,
    )
    # A later version may rename the tool only to a name a new tool may take (the first may be older).
    for definition in draw(st.lists(definitions.filter(_may_rename), max_size=2)):
        tool = tool.with_version(definition, draw(datetimes))
    if draw(st.booleans()):
        tool = tool.deactivated(draw(datetimes))
    return tool.with_gateway_ref(draw(st.none() | st.text(max_size=10)), draw(datetimes))


@st.composite
def artifacts(draw: st.DrawFn) -> Artifact:
    definition = draw(definitions)
    return Artifact(
        definition.code_hash,
        definition.language,
        definition.code,
        definition.entrypoint,
        draw(reports),
        draw(datetimes),
    )


executions = st.builds(
    Execution,
    execution_id=names,
    tool_id=names,
    version=st.integers(1, 50),
    caller=st.text(max_size=10),
    status=st.sampled_from(ExecutionStatus),
    created_at=datetimes,
    finished_at=st.none() | datetimes,
    output=json_values,
    stdout=st.text(max_size=30),
    stderr=st.text(max_size=30),
    stdout_truncated=st.booleans(),
    stderr_truncated=st.booleans(),
    error=st.none() | st.builds(ExecutionFailure, st.text(max_size=10), st.text(max_size=20), st.text(max_size=20)),
    metrics=st.builds(ExecutionMetrics, st.floats(0, 1e6), st.floats(0, 1e6), st.integers(0, 10**7)),
)

_quick = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_quick
@given(tools())
def test_tools_round_trip_through_json(tool: Tool) -> None:
    """Every tool the domain can build is stored and read back equal."""
    assert _serde.loads(_serde.dumps(tool), Tool) == tool


@_quick
@given(artifacts())
def test_artifacts_round_trip_through_json(artifact: Artifact) -> None:
    """Every artifact, with its report, is stored and read back equal."""
    assert _serde.loads(_serde.dumps(artifact), Artifact) == artifact


@_quick
@given(executions)
def test_executions_round_trip_through_json(execution: Execution) -> None:
    """Every execution record, with JSON output and metrics, is stored and read back equal."""
    assert _serde.loads(_serde.dumps(execution), Execution) == execution


def test_replace_report_does_not_undo_a_concurrent_delete(tmp_path: Path) -> None:
    """A delete racing a report replacement is never undone: the artifact ends up deleted."""
    import threading

    from toolrt.adapters.local.file_artifacts import FileArtifactStore
    from toolrt.contracts import builders as b
    from toolrt.domain import ValidationReport

    deleter: list[threading.Thread] = []

    class Racing(FileArtifactStore):
        def get(self, code_hash: Any) -> Any:
            found = super().get(code_hash)
            if not deleter:  # the first read of replace_report: another writer deletes now
                other = FileArtifactStore(tmp_path / "artifacts")
                deleter.append(threading.Thread(target=other.delete, args=(code_hash,)))
                deleter[0].start()
                deleter[0].join(timeout=0.3)
            return found

    store = Racing(tmp_path / "artifacts")
    artifact = b.artifact()
    store.put(artifact)
    store.replace_report(artifact.code_hash, ValidationReport(policy_version="newer"))
    deleter[0].join(timeout=10)
    assert not deleter[0].is_alive()
    assert FileArtifactStore(tmp_path / "artifacts").get(artifact.code_hash) is None
