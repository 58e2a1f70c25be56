"""Garbage collection on the local profile: N tools (default 100,000) and M executions (1,000,000).

Run: ``python -m benchmarks.gc [N] [--executions M] [--orphans K] [--dir PATH]``.

Setup seeds the SQLite file in bulk (``add_many`` for the tools, one ``executemany`` for the
execution records, spread over 60 days so that about half are past the 30-day retention), writes
the distinct artifacts and K orphans (artifacts no tool references) with ``FileArtifactStore.put``,
and leaves every fifth tool inactive with three versions. Then ``rt.collect_garbage`` is timed on a
``toolrt.connect("local")`` runtime over that folder: a dry run, the real run, and a second real
run (nothing left to do).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import toolrt
from benchmarks._stats import quiet_logs
from benchmarks.local_store import definition
from toolrt.adapters.local import _serde
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.domain import Artifact, Execution, ExecutionStatus, Tool, ValidationReport, normalize_code
from toolrt.domain.figures import minute_of

CHUNK = 10_000
NOW = datetime.now(UTC)


def _artifact(variant: int, created: datetime) -> Artifact:
    d = definition("shared", variant)
    return Artifact(
        d.code_hash, d.language, normalize_code(d.code), d.entrypoint, ValidationReport(policy_version="bench"), created
    )


def seed(data: Path, tools: int, executions: int, orphans: int) -> None:
    """Fill ``data`` as the local profile lays it out (toolrt.sqlite, artifacts/)."""
    started = time.perf_counter()
    repo = SqliteToolRepository(data / "toolrt.sqlite")
    store = FileArtifactStore(data / "artifacts")
    codes = max(1, tools // 20)
    old = NOW - timedelta(days=90)
    for variant in range(codes + orphans):  # variants past `codes` belong to no tool
        store.put(_artifact(variant, old))
    artifacts_s = time.perf_counter() - started

    def batch(start: int, stop: int) -> Iterator[Tool]:
        for i in range(start, stop):
            tool = Tool.create(
                tool_id=f"tool-{i:07d}",
                owner=f"agent-{i % max(1, tools // 10):06d}",
                definition=definition(f"tool_{i}", i % codes),
                now=old,
            )
            if i % 5 == 0:  # inactive, with versions to prune (their code stays shared by active tools)
                for step in (1, 2):
                    tool = tool.with_version(definition(f"tool_{i}", (i + step) % codes), old)
                tool = tool.deactivated(old)
            yield tool

    for start in range(0, tools, CHUNK):
        repo.add_many(batch(start, min(tools, start + CHUNK)))
    tools_s = time.perf_counter() - started - artifacts_s

    template = _serde.dumps(
        Execution("EXEC-ID", "tool-0000001", 1, "agent-000001", ExecutionStatus.SUCCEEDED, old, old, output=3)
    )
    stamp = old.isoformat()

    def rows() -> Iterator[tuple[object, ...]]:
        for i in range(executions):
            moment = NOW - timedelta(seconds=60 * 86400 * i / max(1, executions))
            created = moment.isoformat()
            execution_id = f"exec-{i:08d}"
            body = template.replace("EXEC-ID", execution_id).replace(stamp, created)
            yield (execution_id, f"tool-{i % tools:07d}", "succeeded", created, body, "agent-000001",
                   minute_of(moment), 1, 0.0, None, "process")  # fmt: skip

    conn = repo.database.connection()  # bulk seeding, not a repository operation
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO executions (execution_id, tool_id, status, created_at, body, caller, created_min, version,"
        " wall_ms, error_type, isolation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    repo.close()
    print(
        f"setup: {codes + orphans} artifacts ({orphans} orphans) in {artifacts_s:.1f} s, {tools} tools in "
        f"{tools_s:.1f} s, {executions} executions in {time.perf_counter() - started - artifacts_s - tools_s:.1f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gc", description=__doc__)
    parser.add_argument("tools", nargs="?", type=int, default=100_000, help="tools (100000)")
    parser.add_argument("--executions", type=int, default=1_000_000, help="execution records (1000000)")
    parser.add_argument("--orphans", type=int, default=1_000, help="unreferenced artifacts (1000)")
    parser.add_argument("--dir", type=Path, default=None, help="data directory (default: a temp dir, removed)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    quiet_logs()
    data = args.dir or Path(tempfile.mkdtemp(prefix="toolrt-bench-gc-"))
    print(f"gc: {args.tools} tools, {args.executions} executions, {args.orphans} orphan artifacts, data in {data}")
    try:
        seed(data, args.tools, args.executions, args.orphans)
        with toolrt.connect("local", data_dir=data, sandbox="inprocess") as rt:
            for label, dry_run in (("dry run", True), ("real run", False), ("second real run", False)):
                started = time.perf_counter()
                result = rt.collect_garbage(older_than="30d", keep_versions=1, dry_run=dry_run)
                elapsed = time.perf_counter() - started
                print(
                    f"  {label:<16} {elapsed:7.2f} s   artifacts {len(result.artifacts):>6} "
                    f"({result.artifact_bytes} bytes)   executions {result.executions:>8}   "
                    f"versions {result.versions:>6} from {len(result.pruned)} tools"
                    + (f"   problems {len(result.problems)}" if result.problems else "")
                )
    finally:
        if args.dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
