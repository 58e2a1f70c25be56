"""Execution history listings on the local store: pages of ``list_executions`` among N records (default 200,000).

Run: ``python -m benchmarks.execution_history [N] [--tools T] [--agents A] [--samples S] [--dir PATH]``.

Setup writes N execution records (spread over 30 days, T tools owned round-robin by A agents, each
call by a random agent) straight into one SQLite file, in the rows ``execution_row`` makes. Each
listing is then timed on the real store, which says every field of the query in SQL (its column
table), beside the same store with a column table of only the tool, the status and the time (the
baseline, as listings were answered before queries became criteria: the caller and the version
checked on the decoded records). The ratio is the store's p50 over the baseline's.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._stats import measure, quiet_logs, row
from toolrt.adapters.local.sqlite import SqliteDatabase, SqliteExecutionLog
from toolrt.adapters.local.sqlite.execution_log import COLUMNS, execution_row
from toolrt.domain import Execution, ExecutionMetrics, ExecutionStatus
from toolrt.domain.criteria import ExecutionField
from toolrt.ports import ExecutionQuery

NOW = datetime(2026, 1, 31, tzinfo=UTC)
CHUNK = 20_000
STATUSES = [ExecutionStatus.SUCCEEDED] * 8 + [ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT]


class NarrowedLog(SqliteExecutionLog):
    """The baseline: SQL narrows by tool, status and time only; the rest is checked on the records."""

    columns = {
        field: COLUMNS[field]
        for field in (
            ExecutionField.TOOL_ID,
            ExecutionField.STATUS,
            ExecutionField.CREATED_AT,
            ExecutionField.EXECUTION_ID,
        )
    }


def seed(database: SqliteDatabase, n: int, tools: int, agents: int, rng: random.Random) -> None:
    started = time.perf_counter()

    def rows(start: int, stop: int) -> Iterator[tuple[object, ...]]:
        for i in range(start, stop):
            tool = rng.randrange(tools)
            yield execution_row(
                Execution(
                    execution_id=f"exec-{i:08d}",
                    tool_id=f"tool-{tool:05d}",
                    version=1 + rng.randrange(3),
                    caller=f"agent-{rng.randrange(agents):04d}",
                    status=rng.choice(STATUSES),
                    created_at=NOW - timedelta(seconds=30 * 86400 * (n - i) / n),
                    output={"n": i},
                    metrics=ExecutionMetrics(wall_ms=rng.uniform(1, 50)),
                )
            )

    conn = database.connection()  # bulk seeding, not a store operation
    for start in range(0, n, CHUNK):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO executions (execution_id, tool_id, status, created_at, body, caller, created_min, version,"
            " wall_ms, error_type, isolation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(start, min(n, start + CHUNK)),
        )
        conn.execute("COMMIT")
    print(f"setup: {n} execution records in {time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.execution_history", description=__doc__)
    parser.add_argument("executions", nargs="?", type=int, default=200_000, help="execution records (200000)")
    parser.add_argument("--tools", type=int, default=1000, help="tools (1000)")
    parser.add_argument("--agents", type=int, default=200, help="agents, owners and callers (200)")
    parser.add_argument("--samples", type=int, default=100, help="timed calls per listing (100)")
    parser.add_argument("--dir", type=Path, default=None, help="data directory (default: a temp dir, removed)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    quiet_logs()
    rng = random.Random(7)
    data = args.dir or Path(tempfile.mkdtemp(prefix="toolrt-bench-history-"))
    print(f"execution history: {args.executions} records, {args.tools} tools, {args.agents} agents, data in {data}")
    try:
        database = SqliteDatabase(data / "tools.sqlite")
        seed(database, args.executions, args.tools, args.agents, rng)
        store, baseline = SqliteExecutionLog(database), NarrowedLog(database)
        agents = [f"agent-{rng.randrange(args.agents):04d}" for _ in range(args.samples + 3)]

        def owned(agent: str) -> frozenset[str]:
            number = int(agent.removeprefix("agent-"))
            return frozenset(f"tool-{t:05d}" for t in range(number, args.tools, args.agents))

        first = store.list_executions(ExecutionQuery(limit=100))
        cursor = (first[-1].created_at, first[-1].execution_id)
        listings: list[tuple[str, list[ExecutionQuery]]] = [
            (
                "an agent's history (own calls, its tools')",
                [ExecutionQuery(caller=a, tool_ids=owned(a), limit=100) for a in agents],
            ),
            (
                "an agent's calls of one tool",
                [ExecutionQuery(caller=a, tool_id="tool-00000", limit=100) for a in agents],
            ),
            (
                "one version of a tool",
                [ExecutionQuery(tool_id=f"tool-{rng.randrange(args.tools):05d}", version=2, limit=100) for _ in agents],
            ),
            ("the owner's first page", [ExecutionQuery(limit=100) for _ in agents]),
            ("the owner's second page", [ExecutionQuery(before=cursor, limit=100) for _ in agents]),
        ]
        print("\nlistings of 100 (the store: every field in SQL; baseline: tool, status and time in SQL):")
        for label, queries in listings:
            for query in queries[:3]:  # the same answers, whichever table said the query
                assert store.list_executions(query) == baseline.list_executions(query), query
            before = measure(lambda i, q=queries: baseline.list_executions(q[i]), args.samples)
            after = measure(lambda i, q=queries: store.list_executions(q[i]), args.samples)
            print(row(f"  baseline: {label}", before))
            print(row(f"  store:    {label}", after, statistics.median(before)))
        database.close()
    finally:
        if args.dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
