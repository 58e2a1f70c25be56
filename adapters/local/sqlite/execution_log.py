"""The execution log in SQLite: an ``executions`` row per record (the JSON body plus the columns
queries filter, order and aggregate on), group-committed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs

from toolrt.adapters.local import _serde
from toolrt.adapters.local.sqlite.database import SqliteDatabase, SqliteStore
from toolrt.adapters.shared.executions import check_keep_newest, translate_criteria
from toolrt.domain import Execution, ExecutionStatus, NotFoundError
from toolrt.domain.criteria import (
    NEWEST_FIRST,
    AnyOf,
    AtLeast,
    Below,
    Condition,
    Equals,
    ExecutionField,
    OneOf,
    holds_all,
)
from toolrt.domain.figures import FAILURE_STATUSES, FINAL_STATUSES, check_window, minute_of, nearest_rank
from toolrt.ports import ExecutionOutcome, ExecutionQuery, ExecutionSummary, MinuteCount, ToolActivity, ToolUsage
from toolrt.ports.execution_log import NO_USAGE
from toolrt.ports.fleet import build_summary

# Garbage collection holds the write lock for at most this many execution records.
_PURGE_CHUNK = 20_000
# A condition naming more values than this is checked on the records (SQLite bounds host parameters).
_MAX_VALUES = 500


def _utc_text(moment: datetime) -> str:
    # created_at is stored as the record's isoformat(), in UTC as the runtime's clock makes it, so
    # text order is time order; a bound given in another offset is compared in UTC too.
    return (moment.astimezone(UTC) if moment.tzinfo is not None else moment).isoformat()


Columns = Mapping[ExecutionField, tuple[str, Callable[[Any], Any]]]

#: How SQL reads each field of an execution record: its column, and how a value compared with it is
#: written. A condition on a field missing here is checked on the decoded records instead.
COLUMNS: Columns = {
    ExecutionField.EXECUTION_ID: ("execution_id", str),
    ExecutionField.TOOL_ID: ("tool_id", str),
    ExecutionField.VERSION: ("version", int),
    ExecutionField.CALLER: ("caller", str),
    ExecutionField.STATUS: ("status", lambda status: ExecutionStatus(status).value),
    ExecutionField.CREATED_AT: ("created_at", _utc_text),
}


def sql_condition(condition: Condition, columns: Columns = COLUMNS) -> tuple[str, list[Any]] | None:
    """``condition`` as an SQL expression over ``columns`` (:data:`COLUMNS`) and its arguments;
    None when SQL cannot say it (a field without a column, too many values)."""
    match condition:
        case Equals(field, value) if field in columns:
            column, encode = columns[field]
            return f"{column} = ?", [encode(value)]
        case OneOf(field, values) if field in columns and len(values) <= _MAX_VALUES:
            column, encode = columns[field]
            return f"{column} IN ({', '.join('?' * len(values))})", [encode(v) for v in values]
        case AtLeast(field, value) if field in columns:
            column, encode = columns[field]
            return f"{column} >= ?", [encode(value)]
        case Below(fields, values) if all(f in columns for f in fields):
            names = ", ".join(columns[f][0] for f in fields)
            return f"({names}) < ({', '.join('?' * len(fields))})", [
                columns[f][1](v) for f, v in zip(fields, values, strict=True)
            ]
        case AnyOf(conditions):
            parts = [sql_condition(c, columns) for c in conditions]
            if not parts or any(p is None for p in parts):
                return None
            return "(" + " OR ".join(p[0] for p in parts if p) + ")", [a for p in parts if p for a in p[1]]
    return None


def execution_row(e: Execution) -> tuple[Any, ...]:
    """The ``executions`` row of a record: (execution_id, tool_id, status, created_at, body, caller,
    created_min, version, wall_ms, error_type, isolation). Bulk loaders use it too."""
    return (
        e.execution_id,
        e.tool_id,
        e.status.value,
        e.created_at.isoformat(),
        _serde.dumps(e),
        e.caller,
        minute_of(e.created_at),
        e.version,
        e.metrics.wall_ms,
        e.error.type if e.error else None,
        e.metrics.isolation.value,
    )


@attrs.define
class _PendingRecord:
    execution: Execution
    done: bool = False
    error: BaseException | None = None


class SqliteExecutionLog(SqliteStore):
    """Execution records (a :class:`~toolrt.ports.ExecutionLog`).

    - Records are group-committed: while one thread writes, records from other threads queue up and
      go in the next transaction together, so N concurrent calls cost one lock instead of N. Each
      caller still returns only once its record is committed (or raises).
    - A record's commit does not wait for the disk (``durable=False``, see
      :class:`~toolrt.adapters.local.sqlite.database.SqliteDatabase`): a crash of the machine loses
      at most ``record_sync_s`` of records, never a tool change. The fsync cost 0.4 to 3 ms of every
      call; ``record_sync_s=0`` waits for the disk on each record instead.
    - Listings are answered by SQL from the query's criteria (:data:`COLUMNS`), aggregates from the
      covering indexes alone.
    """

    #: The fields SQL compares (a store with fewer leaves the others to the decoded records).
    columns: ClassVar[Columns] = COLUMNS

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        # Group commit of execution records: concurrent callers' records share one transaction.
        self._records = threading.Condition(threading.Lock())
        self._record_queue: list[_PendingRecord] = []
        self._recording = False

    def record_execution(self, execution: Execution) -> None:
        """Store ``execution`` durably before returning (group commit: see the class docstring)."""
        item = _PendingRecord(execution)
        with self._records:
            self._record_queue.append(item)
            while not item.done and self._recording:
                self._records.wait()
            if item.done:
                if item.error is not None:
                    raise item.error
                return
            self._recording = True
            batch, self._record_queue = self._record_queue, []
        error: BaseException | None = None
        try:
            rows = [execution_row(pending.execution) for pending in batch]
            doing = f"recording {len(batch)} execution(s), {execution.execution_id!r} among them"
            with self._db.write(doing, durable=False) as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO executions (execution_id, tool_id, status, created_at, body, caller,"
                    " created_min, version, wall_ms, error_type, isolation)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except BaseException as exc:  # every waiting caller hears of it, then this one raises it
            error = exc
        with self._records:
            for pending in batch:
                pending.done, pending.error = True, error
            self._recording = False
            self._records.notify_all()
        if error is not None:
            raise error

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        """Counts, or deletes in chunks (a short write lock each, so executions keep being recorded).

        ``keep_newest``: the finished record at that rank (newest first, by the ``created_at`` index)
        is the newest one to go, with everything older."""
        check_keep_newest(keep_newest)
        finished = "status NOT IN ('pending', 'running')"
        where = f"created_at < ? AND {finished}"
        args: tuple[Any, ...] = (_utc_text(before),)
        if keep_newest is not None:
            cut = self._db.read(
                "finding the oldest execution record to keep",
                lambda c: c.execute(
                    f"SELECT created_at, execution_id FROM executions WHERE {finished}"
                    " ORDER BY created_at DESC, execution_id DESC LIMIT 1 OFFSET ?",
                    (keep_newest,),
                ).fetchone(),
            )
            if cut is not None:
                where = f"(created_at < ? OR (created_at, execution_id) <= (?, ?)) AND {finished}"
                args = (_utc_text(before), cut[0], cut[1])
        if dry_run:
            return int(
                self._db.read(
                    "counting old executions",
                    lambda c: c.execute(f"SELECT count(*) FROM executions WHERE {where}", args).fetchone()[0],
                )
            )
        removed = 0
        while True:
            with self._db.write("removing old executions") as conn:
                count = conn.execute(
                    f"DELETE FROM executions WHERE rowid IN (SELECT rowid FROM executions WHERE {where} LIMIT ?)",
                    (*args, _PURGE_CHUNK),
                ).rowcount
            removed += count
            if count < _PURGE_CHUNK:
                return removed

    def get_execution(self, execution_id: str) -> Execution:
        row = self._db.read(
            f"reading execution {execution_id!r}",
            lambda c: c.execute("SELECT body FROM executions WHERE execution_id = ?", (execution_id,)).fetchone(),
        )
        if row is None:
            raise NotFoundError("execution", execution_id)
        return self._db.decode(execution_id, row[0], Execution)

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Newest first; SQL says what :data:`COLUMNS` can (all of today's fields), the records
        are checked for the rest."""
        translated, left = translate_criteria(query.criteria(), lambda c: sql_condition(c, self.columns))
        args = [arg for _, values in translated for arg in values]
        sql = "SELECT execution_id, body FROM executions"
        if translated:
            sql += " WHERE " + " AND ".join(expression for expression, _ in translated)
        sql += " ORDER BY " + ", ".join(f"{self.columns[field][0]} DESC" for field in NEWEST_FIRST)
        if not left:
            sql += " LIMIT ?"
            args.append(query.limit)

        def run(conn: sqlite3.Connection) -> list[Execution]:
            found: list[Execution] = []
            for key, body in conn.execute(sql, args):
                execution = self._db.decode(key, body, Execution)
                if holds_all(left, execution):
                    found.append(execution)
                    if len(found) >= query.limit:
                        break
            return found

        return self._db.read("listing executions", run)

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        """Read from the columns written with each record, from the index alone
        (``executions_by_tool_time``). Bulk loaders write them too (:func:`execution_row`)."""
        final = [s.value for s in ExecutionStatus if s.is_final]
        sql = (
            "SELECT version, status, wall_ms, error_type FROM executions"
            f" WHERE tool_id = ? AND status IN ({', '.join('?' * len(final))})"
        )
        args: list[Any] = [tool_id, *final]
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(_utc_text(since))
        rows = self._db.read(f"reading outcomes of {tool_id!r}", lambda c: c.execute(sql, args).fetchall())
        return [
            ExecutionOutcome(int(version), ExecutionStatus(status), float(wall_ms or 0.0), error_type)
            for version, status, wall_ms, error_type in rows
        ]

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        """Counted by SQL over the executions of each tool (index ``executions_by_tool_time``)."""
        wanted = sorted(set(tool_ids))
        if not wanted:
            return {}
        counted = [s.value for s in ExecutionStatus if s.is_final and s is not ExecutionStatus.CANCELLED]

        def run(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
            rows: list[tuple[str, int, int, int]] = []
            for start in range(0, len(wanted), 500):  # under SQLite's bound on host parameters
                chunk = wanted[start : start + 500]
                rows += conn.execute(
                    "SELECT tool_id, count(*), count(DISTINCT caller), total(status = 'succeeded') FROM executions"
                    f" WHERE tool_id IN ({', '.join('?' * len(chunk))})"
                    f" AND status IN ({', '.join('?' * len(counted))}) GROUP BY tool_id",
                    (*chunk, *counted),
                ).fetchall()
            return rows

        found = {
            tool_id: ToolUsage(int(n), int(callers), int(ok))
            for tool_id, n, callers, ok in self._db.read("counting usage", run)
        }
        return {tool_id: found.get(tool_id, NO_USAGE) for tool_id in wanted}

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        """Aggregated by SQL over the window from a covering index alone (``executions_by_time``, or
        ``executions_by_tool_time`` for one tool); percentiles by ``ORDER BY wall_ms LIMIT 1
        OFFSET`` at the nearest rank."""
        check_window(since, until)
        final = ", ".join(f"'{s.value}'" for s in FINAL_STATUSES)
        where = f"created_at >= ? AND created_at < ? AND status IN ({final})"
        args: list[Any] = [_utc_text(since), _utc_text(until)]
        if tool_id is not None:
            where += " AND tool_id = ?"
            args.append(tool_id)
        ran = where + " AND status != 'cancelled'"
        failed = ", ".join(f"'{s.value}'" for s in sorted(FAILURE_STATUSES, key=lambda s: s.value))
        by_version = ", version" if tool_id is not None else ", NULL"

        def run(conn: sqlite3.Connection) -> ExecutionSummary:
            minutes = conn.execute(
                f"SELECT created_min, status{by_version}, count(*) FROM executions WHERE {where} GROUP BY 1, 2, 3",
                args,
            ).fetchall()
            statuses: dict[ExecutionStatus, int] = {}
            per_minute = []
            for minute, status, version, count in minutes:
                chosen = ExecutionStatus(status)
                statuses[chosen] = statuses.get(chosen, 0) + count
                per_minute.append(MinuteCount(int(minute), chosen, int(count), version))
            errors = conn.execute(
                f"SELECT error_type, count(*) FROM executions WHERE {where} AND status != 'succeeded'"
                " AND error_type IS NOT NULL GROUP BY 1",
                args,
            ).fetchall()
            isolation = conn.execute(
                f"SELECT isolation, count(*) FROM executions WHERE {ran} GROUP BY 1", args
            ).fetchall()
            tools = conn.execute(
                f"SELECT tool_id, count(*), total(status IN ({failed})) FROM executions WHERE {ran} GROUP BY 1", args
            ).fetchall()
            (callers,) = conn.execute(f"SELECT count(DISTINCT caller) FROM executions WHERE {where}", args).fetchone()
            ran_count = sum(int(n) for _, n, _ in tools)

            def percentile(share: float) -> float | None:
                if not ran_count:
                    return None
                row = conn.execute(
                    f"SELECT wall_ms FROM executions WHERE {ran} ORDER BY wall_ms LIMIT 1 OFFSET ?",
                    (*args, nearest_rank(ran_count, share)),
                ).fetchone()
                return None if row is None else float(row[0])

            return build_summary(
                statuses,
                per_minute,
                {str(t): int(n) for t, n in errors},
                {str(i): int(n) for i, n in isolation},
                (ToolActivity(t, int(n), int(f)) for t, n, f in tools),
                int(callers),
                percentile(0.5),
                percentile(0.95),
            )

        return self._db.read("summarizing executions", run)
