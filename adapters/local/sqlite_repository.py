"""A ToolRepository in one SQLite file: WAL, busy timeout, BEGIN IMMEDIATE, versioned schema."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import sqlite3
import threading
import time
import typing
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import attrs

from toolrt.adapters.local import _serde
from toolrt.application.logs import get_logger
from toolrt.domain import (
    CodeHash,
    ConflictError,
    Execution,
    ExecutionStatus,
    NotFoundError,
    StorageError,
    Tool,
    ToolStatus,
    TransientError,
    ValidationError,
    Visibility,
)
from toolrt.domain.search import FIELD_WEIGHTS, FIELDS, CorpusStats, SearchDocument, rank
from toolrt.ports import ExecutionOutcome, ExecutionQuery, SearchHit, SearchQuery, ToolQuery, ToolUsage
from toolrt.ports.fleet import (
    FAILURE_STATUSES,
    FINAL_STATUSES,
    ExecutionSummary,
    MinuteCount,
    StoredCount,
    ToolActivity,
    ToolCensus,
    build_summary,
    check_window,
    dimensions_text,
    minute_of,
    nearest_rank,
    parse_dimensions,
)
from toolrt.ports.repository import NO_USAGE

log = get_logger(__name__)

T = TypeVar("T")

# Each step moves the schema from version i to i + 1 (``PRAGMA user_version``). Steps are append-only:
# never edit a released step, add a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # The tool itself is the JSON body; the other columns are copies kept for indexes and filters.
        """CREATE TABLE tools (
            tool_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            visibility TEXT NOT NULL,
            description TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            record_version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        # The database itself refuses two active tools of one owner with one name.
        "CREATE UNIQUE INDEX tools_active_name ON tools (owner, name) WHERE status = 'active'",
        "CREATE INDEX tools_by_owner ON tools (owner, status, name, tool_id)",
        "CREATE INDEX tools_by_name ON tools (name, tool_id)",
        "CREATE INDEX tools_by_status ON tools (status, name, tool_id)",
        "CREATE INDEX tools_by_visibility ON tools (visibility, status, name, tool_id)",
        "CREATE INDEX tools_by_code_hash ON tools (code_hash)",
        # Every code hash in each tool's history, written in the same transaction as the record.
        # An active tool references all of its rows here; an inactive tool none (see references()).
        """CREATE TABLE code_refs (
            code_hash TEXT NOT NULL,
            tool_id TEXT NOT NULL REFERENCES tools (tool_id) ON DELETE CASCADE,
            PRIMARY KEY (code_hash, tool_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX code_refs_by_tool ON code_refs (tool_id)",
        # Tags of the current version, for ToolQuery.tag.
        """CREATE TABLE tool_tags (
            tag TEXT NOT NULL,
            tool_id TEXT NOT NULL REFERENCES tools (tool_id) ON DELETE CASCADE,
            PRIMARY KEY (tag, tool_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX tool_tags_by_tool ON tool_tags (tool_id)",
        """CREATE TABLE executions (
            execution_id TEXT PRIMARY KEY,
            tool_id TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX executions_by_tool ON executions (tool_id, created_at)",
    ),
    (
        # The search index (see search()): analyzed terms of each active tool's fields, written in
        # the same transaction as the record (rowid = tools.rowid). Public tools go to one FTS5 table;
        # the others to a second one whose "scope" column holds a token naming the owner, so an
        # agent's own tools are found (and counted, for its statistics) with `scope:token AND ...`
        # without reading anyone else's. fts5vocab counts documents per term. Nothing here ever
        # holds an inactive tool.
        "CREATE VIRTUAL TABLE search_public USING fts5(name, description, params, tags,"
        " tokenize = 'unicode61 remove_diacritics 0')",
        "CREATE VIRTUAL TABLE search_public_vocab USING fts5vocab(search_public, 'row')",
        "CREATE VIRTUAL TABLE search_private USING fts5(scope, name, description, params, tags,"
        " tokenize = 'unicode61 remove_diacritics 0')",
        # Count and per-field term totals of the indexed documents, per scope ('public' or an owner's
        # token), for BM25's average length.
        """CREATE TABLE search_totals (
            scope TEXT PRIMARY KEY,
            documents INTEGER NOT NULL,
            name INTEGER NOT NULL,
            description INTEGER NOT NULL,
            params INTEGER NOT NULL,
            tags INTEGER NOT NULL
        )""",
    ),
    (
        # Teams: a tool shared with a team names it here (NULL for every other visibility), and the
        # membership the runtime's owner manages. Team tools are indexed for search in
        # search_private with two scope tokens, the owner's and the team's, so that one MATCH on
        # either finds them once; search_totals rows say which owner and team they count.
        "ALTER TABLE tools ADD COLUMN team TEXT",
        "CREATE INDEX tools_by_team ON tools (team, status, name, tool_id) WHERE team IS NOT NULL",
        """CREATE TABLE team_members (
            team TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            PRIMARY KEY (team, agent_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX team_members_by_agent ON team_members (agent_id, team)",
        "ALTER TABLE search_totals ADD COLUMN owner TEXT",
        "ALTER TABLE search_totals ADD COLUMN team TEXT",
        "UPDATE search_totals SET owner = scope WHERE scope != 'public'",
        # The caller as a column, so that usage (distinct callers) is counted by SQL.
        "ALTER TABLE executions ADD COLUMN caller TEXT",
        "UPDATE executions SET caller = json_extract(body, '$.caller')",
    ),
    (
        # Fleet figures (execution_summary) are aggregated by SQL over a time window: the fields they
        # group and sort by are columns (copies of the body's, written with it), and created_at is
        # indexed. created_min is whole minutes since the epoch (UTC).
        "ALTER TABLE executions ADD COLUMN created_min INTEGER",
        "ALTER TABLE executions ADD COLUMN version INTEGER",
        "ALTER TABLE executions ADD COLUMN wall_ms REAL",
        "ALTER TABLE executions ADD COLUMN error_type TEXT",
        "ALTER TABLE executions ADD COLUMN isolation TEXT",
        "UPDATE executions SET created_min = CAST(strftime('%s', created_at) AS INTEGER) / 60,"
        " version = json_extract(body, '$.version'), wall_ms = json_extract(body, '$.metrics.wall_ms'),"
        " error_type = json_extract(body, '$.error.type'), isolation = json_extract(body, '$.metrics.isolation')",
        # Covering indexes: a window's aggregates (execution_summary), one tool's outcomes, usage
        # and history are read from the index alone, never from the rows and their bodies. The
        # second one starts as executions_by_tool did, which it replaces.
        # Both lead with (created_at, execution_id), the order of history listings, so that a page
        # of a busy tool's history reads its first rows without sorting the others.
        "CREATE INDEX executions_by_time ON executions (created_at, execution_id, status, tool_id, caller,"
        " created_min, version, wall_ms, error_type, isolation)",
        "CREATE INDEX executions_by_tool_time ON executions (tool_id, created_at, execution_id, status, version,"
        " wall_ms, error_type, created_min, caller, isolation)",
        "DROP INDEX executions_by_tool",
        # Counters no record holds (registrations, artifact cache, refusals): a total per minute,
        # name and dimensions, added to by every process on this file.
        """CREATE TABLE counters (
            minute INTEGER NOT NULL,
            name TEXT NOT NULL,
            dimensions TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (minute, name, dimensions)
        ) WITHOUT ROWID""",
    ),
)
# Decoded tool records kept (see SqliteToolRepository._tool).
_DECODED_TOOLS = 4096
# Garbage collection holds the write lock for at most this many artifacts or execution records.
_DELETE_CHUNK = 256
_PURGE_CHUNK = 20_000
SEARCH_SCHEMA = 2  # the first schema version with the search index
PUBLIC_SCOPE = "public"
CONTENT = "{name description params tags}"  # an FTS5 column filter: query terms never match the scope


def _token(kind: str, name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()[:16]
    return kind + "".join(chr(ord("a") + b % 26) for b in digest)


def owner_scope(owner: str) -> str:
    """The token naming an owner's non-public tools in the search index (one unicode61 token).
    Query terms are only ever matched against the content columns, never against this one."""
    return _token("owner", owner)


def team_scope(team: str) -> str:
    """The token naming a team's tools in the search index (see :func:`owner_scope`)."""
    return _token("team", team)


def _scope_of(tool: Tool) -> str:
    # The scope column of a non-public tool: its owner's token, and its team's for team tools.
    return owner_scope(tool.owner) + ("" if tool.team is None else " " + team_scope(tool.team))


# Which query terms find candidates (see search()): those in at most this many public tools, or
# this share of them; all terms when none is that rare.
RARE_TERM_MIN_DOCS = 100
RARE_TERM_SHARE = 0.01
SCHEMA_VERSION = len(MIGRATIONS)


def _lower(value: str | None) -> str | None:
    # SQLite's lower() folds ASCII only; the query semantics are Python's str.lower().
    return value.lower() if value is not None else None


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


class _WalSync:
    """Makes execution records committed without waiting for the disk durable soon after, off the
    callers' path: one fsync of the WAL file covers every record committed since the last one."""

    def __init__(self, wal: Path, interval_s: float) -> None:
        self._wal = wal
        self._interval_s = interval_s
        self._changed = threading.Condition(threading.Lock())
        self._pending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def written(self) -> None:
        """Records were committed to the WAL: they reach the disk within the interval."""
        with self._changed:
            if self._closed:
                self._sync()
                return
            waiting = not self._pending
            self._pending = True
            if os.getpid() != self._pid:  # a forked child: the parent's thread is not here
                self._pid, self._thread = os.getpid(), None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="toolrt-sqlite-wal-sync", daemon=True)
                self._thread.start()
            elif waiting:
                self._changed.notify()  # only to start an interval: a wake-up per record costs the GIL

    def close(self) -> None:
        """Sync what is pending now and stop the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._changed:
            if self._pending:
                self._pending = False
                self._sync()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                # Gather the records of the interval into one fsync (close() syncs what is left).
                deadline = time.monotonic() + self._interval_s
                while not self._closed and (left := deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                if self._closed:
                    return
                self._pending = False
            self._sync()

    def _sync(self) -> None:
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and removed: its frames are in the database file, synced by SQLite
        except OSError as exc:
            log.warning("could not open the WAL to make execution records durable", path=str(self._wal), error=str(exc))
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            log.warning(
                "fsync of the WAL failed; recent execution records may not survive a power loss", error=str(exc)
            )
        finally:
            os.close(fd)


@attrs.define
class _PendingRecord:
    execution: Execution
    done: bool = False
    error: BaseException | None = None


class SqliteToolRepository:
    """Tools, artifact references and executions in one SQLite file, safe across processes and threads.

    - Every thread gets its own connection (opened on first use, in autocommit mode); a process that
      forks opens fresh connections in the child. ``close()`` closes all of them.
    - WAL journal, ``busy_timeout`` and ``synchronous=FULL``: readers never block the writer, a
      committed change survives a crash of the process or the machine.
    - Every read-modify-write runs in ``BEGIN IMMEDIATE``, so the record-version check, the record,
      its code references and tags change in one serialized transaction (never a lost update).
    - A lock still held after ``busy_timeout_s`` raises :class:`TransientError`; any other SQLite
      failure raises :class:`StorageError` naming the file.
    - Execution records are group-committed: while one thread writes, records from other threads
      queue up and go in the next transaction together, so N concurrent calls cost one lock instead
      of N. Each caller still returns only once its record is committed (or raises).
    - An execution record's commit does not wait for the disk (``synchronous=NORMAL`` for that
      transaction): it is in the WAL file when the caller returns, so it survives a crash of the
      process, and a background thread fsyncs the WAL at most ``record_sync_s`` later (and
      ``close()`` before it returns), so a crash of the machine loses at most that window of
      records, never a tool change, and never leaves a half-written record. The fsync cost
      0.4 to 3 ms of every call; ``record_sync_s=0`` waits for the disk on each record instead.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0, record_sync_s: float = 0.1) -> None:
        self._path = Path(path)
        self._backend = f"sqlite {self._path}"
        self._busy_timeout_ms = max(0, int(busy_timeout_s * 1000))
        self._local = threading.local()
        self._decoded: dict[str, tuple[str, Tool]] = {}  # tool id -> (stored body, decoded tool)
        self._lock = threading.Lock()
        self._commit_counter = itertools.count(1)
        self._commits = 0
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        # Group commit of execution records: concurrent callers' records share one transaction.
        self._records = threading.Condition(threading.Lock())
        self._record_queue: list[_PendingRecord] = []
        self._recording = False
        if record_sync_s < 0:
            raise ValidationError(f"record_sync_s must be zero or more, got {record_sync_s!r}")
        self._wal_sync = _WalSync(Path(f"{self._path}-wal"), record_sync_s) if record_sync_s > 0 else None
        self._migrate()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- connections and errors ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError("repository is closed", backend=self._backend)
        if os.getpid() != self._pid:
            # A forked child must not share the parent's SQLite handles; leave them to the parent.
            with self._lock:
                self._pid = os.getpid()
                self._connections = []
                self._local = threading.local()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        with self._translate("opening the database"):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.create_function("toolrt_lower", 1, _lower, deterministic=True)
            except BaseException:
                conn.close()
                raise
            return conn

    @contextlib.contextmanager
    def _translate(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise TransientError(
                    f"{self._backend}: database stayed locked for more than "
                    f"{self._busy_timeout_ms} ms while {doing}; retry"
                ) from exc
            raise StorageError(f"{doing} failed: {exc}", backend=self._backend) from exc
        except sqlite3.Error as exc:
            raise StorageError(f"{doing} failed: {exc}", backend=self._backend) from exc
        except OSError as exc:
            raise StorageError(f"{doing} failed: {exc}", backend=self._backend) from exc

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        with self._translate(doing):
            # How this commit reaches the disk (see the class docstring): switched only when it
            # changes, so a thread that records executions call after call never switches.
            relaxed = getattr(self._local, "relaxed_commit", False)
            if relaxed != getattr(self._local, "relaxed", False):
                conn.execute(f"PRAGMA synchronous = {'NORMAL' if relaxed else 'FULL'}")
                self._local.relaxed = relaxed
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
                # PRAGMA data_version shows other connections' commits only: count this object's.
                self._commits = next(self._commit_counter)
            finally:
                if conn.in_transaction:
                    # The original error matters more than a failing rollback.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")

    def _read(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        with self._translate(doing):
            return fn(conn)

    def _migrate(self) -> None:
        with self._write("migrating the schema") as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"database schema version {current} is newer than this toolrt supports "
                    f"({SCHEMA_VERSION}); upgrade toolrt",
                    backend=self._backend,
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                # user_version lives in the database header, so it commits with the steps above.
                conn.execute(f"PRAGMA user_version = {version + 1}")
                log.info("sqlite_schema_migrated", path=str(self._path), version=version + 1)
            if current < SEARCH_SCHEMA <= SCHEMA_VERSION:
                self._fill_search_index(conn)  # tools stored before the index existed, in the final schema

    def change_marker(self) -> tuple[int, int, int]:
        """A value that changes whenever any process adds, changes or deletes a tool record, or
        changes a team's membership (within one process: it holds a string hash).

        For watchers such as the MCP server, which tells its clients when the tool list changed.
        ``PRAGMA data_version`` costs nothing and says whether another connection committed (and a
        counter, whether this object did); only then are the tool records counted (executions are written to the same file and must not
        look like tool changes).
        """

        def read(conn: sqlite3.Connection) -> tuple[int, int, int]:
            data_version = (int(conn.execute("PRAGMA data_version").fetchone()[0]), self._commits)
            cached = getattr(self._local, "marker", None)
            if cached is not None and cached[0] == data_version:
                return cast(tuple[int, int, int], cached[1])
            count, versions = conn.execute("SELECT count(*), coalesce(sum(record_version), 0) FROM tools").fetchone()
            # Membership changes what agents may list, too (teams are few: read them whole).
            members = hash(tuple(conn.execute("SELECT team, agent_id FROM team_members ORDER BY team, agent_id")))
            marker = (int(count), int(versions), members)
            self._local.marker = (data_version, marker)
            return marker

        return self._read("reading the change marker", read)

    def schema_version(self) -> int:
        """The schema version stored in the file."""
        return int(self._read("reading the schema version", lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    def close(self) -> None:
        """Close every connection this repository opened (in this process)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._closed = True
            mine = os.getpid() == self._pid
        if mine and self._wal_sync is not None:
            self._wal_sync.close()  # the records committed last reach the disk before close returns
        if mine:
            for conn in connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def __enter__(self) -> SqliteToolRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decoding --------------------------------------------------------------------------------

    def _decode(self, key: str, body: str, cls: type[T]) -> T:
        try:
            return _serde.loads(body, cls)
        except ValueError as exc:
            raise StorageError(f"stored record {key!r} is unreadable: {exc}", backend=self._backend) from exc

    def _tools(self, rows: Iterable[tuple[str, str]]) -> list[Tool]:
        return [self._tool(tool_id, body) for tool_id, body in rows]

    def _tool(self, tool_id: str, body: str) -> Tool:
        """The tool stored as ``body``, decoded once per distinct body: every call of a tool reads
        its record, and decoding it costs more than the read. A Tool is immutable, and the cached
        one is returned only for the very same stored text, so a change is never missed."""
        cached = self._decoded.get(tool_id)
        if cached is not None and cached[0] == body:
            return cached[1]
        tool = self._decode(tool_id, body, Tool)
        if len(self._decoded) >= _DECODED_TOOLS:
            self._decoded.clear()  # the hot tools come back within a call each
        self._decoded[tool_id] = (body, tool)
        return tool

    # -- tools -----------------------------------------------------------------------------------

    def add(self, tool: Tool) -> None:
        with self._write(f"adding tool {tool.tool_id!r}") as conn:
            self._insert(conn, tool)

    def add_many(self, tools: Iterable[Tool]) -> int:
        """Add every tool in one transaction (all or none, the rules of :meth:`add` each); the count."""
        count = 0
        with self._write("adding tools in bulk") as conn:
            for tool in tools:
                self._insert(conn, tool)
                count += 1
        return count

    def _insert(self, conn: sqlite3.Connection, tool: Tool) -> None:
        if conn.execute("SELECT 1 FROM tools WHERE tool_id = ?", (tool.tool_id,)).fetchone():
            raise ConflictError(f"tool id {tool.tool_id!r} already exists")
        self._check_name(conn, tool)
        try:
            conn.execute(
                "INSERT INTO tools (tool_id, owner, name, status, visibility, description, code_hash,"
                " record_version, updated_at, body, team) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._row(tool),
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"tool {tool.tool_id!r} conflicts with a stored tool: {exc}") from exc
        self._write_children(conn, tool)
        self._index(conn, tool)

    def get(self, tool_id: str) -> Tool:
        row = self._read(
            f"reading tool {tool_id!r}",
            lambda c: c.execute("SELECT tool_id, body FROM tools WHERE tool_id = ?", (tool_id,)).fetchone(),
        )
        if row is None:
            raise NotFoundError("tool", tool_id)
        return self._tool(row[0], row[1])

    def save(self, tool: Tool) -> None:
        with self._write(f"saving tool {tool.tool_id!r}") as conn:
            row = conn.execute("SELECT record_version FROM tools WHERE tool_id = ?", (tool.tool_id,)).fetchone()
            if row is None:
                raise NotFoundError("tool", tool.tool_id)
            if row[0] != tool.record_version - 1:
                raise ConflictError(
                    f"tool {tool.tool_id!r} changed concurrently (stored record version {row[0]}, "
                    f"update based on {tool.record_version - 1}); re-read and retry"
                )
            self._check_name(conn, tool)
            try:
                conn.execute(
                    "UPDATE tools SET owner = ?, name = ?, status = ?, visibility = ?, description = ?,"
                    " code_hash = ?, record_version = ?, updated_at = ?, body = ?, team = ? WHERE tool_id = ?",
                    self._row(tool)[1:] + (tool.tool_id,),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"tool {tool.tool_id!r} conflicts with a stored tool: {exc}") from exc
            conn.execute("DELETE FROM code_refs WHERE tool_id = ?", (tool.tool_id,))
            conn.execute("DELETE FROM tool_tags WHERE tool_id = ?", (tool.tool_id,))
            self._write_children(conn, tool)
            self._index(conn, tool)

    def delete(self, tool_id: str) -> None:
        with self._write(f"deleting tool {tool_id!r}") as conn:
            # Children first, so the result does not depend on foreign_keys being enforced.
            conn.execute("DELETE FROM code_refs WHERE tool_id = ?", (tool_id,))
            conn.execute("DELETE FROM tool_tags WHERE tool_id = ?", (tool_id,))
            self._unindex(conn, tool_id)
            if conn.execute("DELETE FROM tools WHERE tool_id = ?", (tool_id,)).rowcount == 0:
                raise NotFoundError("tool", tool_id)

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        where: list[str] = []
        args: list[Any] = []
        if query.owner is not None:
            where.append("owner = ?")
            args.append(query.owner)
        if query.visible_to is not None:
            where.append(f"(owner = ? OR visibility = 'public'{self._team_sql(query.teams)})")
            args += [query.visible_to, *sorted(query.teams)]
        if query.status is not None:
            where.append("status = ?")
            args.append(ToolStatus(query.status).value)
        if query.name is not None:
            where.append("name = ?")
            args.append(query.name)
        if query.tag is not None:
            where.append("tool_id IN (SELECT tool_id FROM tool_tags WHERE tag = ?)")
            args.append(query.tag)
        if query.text is not None:
            where.append("(instr(toolrt_lower(name), ?) > 0 OR instr(toolrt_lower(description), ?) > 0)")
            args += [query.text.lower()] * 2
        sql = "SELECT tool_id, body FROM tools"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY name, tool_id LIMIT ?"
        args.append(max(0, query.limit))
        rows = self._read("listing tools", lambda c: c.execute(sql, args).fetchall())
        return self._tools(rows)

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        rows = self._read(
            f"finding tools by code hash {code_hash.short}",
            lambda c: c.execute(
                "SELECT t.tool_id, t.body FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                " WHERE r.code_hash = ? ORDER BY r.tool_id",
                (str(code_hash),),
            ).fetchall(),
        )
        return self._tools(rows)

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        rows = self._read(
            f"reading references of {code_hash.short}",
            lambda c: c.execute(
                "SELECT r.tool_id FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                # "+t.status": without it SQLite walks every active tool (tools_by_status) first.
                " WHERE r.code_hash = ? AND +t.status = 'active'",
                (str(code_hash),),
            ).fetchall(),
        )
        return frozenset(row[0] for row in rows)

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Checks and deletes inside ``BEGIN IMMEDIATE``: no tool can be stored meanwhile. In chunks,
        so that registrations wait for one chunk at most."""
        deleted: list[CodeHash] = []
        for start in range(0, len(code_hashes), _DELETE_CHUNK):
            with self._write("deleting unreferenced artifacts") as conn:
                for code_hash in code_hashes[start : start + _DELETE_CHUNK]:
                    found = conn.execute(
                        "SELECT 1 FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                        " WHERE r.code_hash = ? AND +t.status = 'active' LIMIT 1",
                        (str(code_hash),),
                    ).fetchone()
                    if found is None:
                        delete(code_hash)
                        deleted.append(code_hash)
        return deleted

    def _check_name(self, conn: sqlite3.Connection, tool: Tool) -> None:
        if not tool.is_active:
            return
        row = conn.execute(
            "SELECT tool_id FROM tools WHERE owner = ? AND name = ? AND status = 'active' AND tool_id != ?",
            (tool.owner, tool.name, tool.tool_id),
        ).fetchone()
        if row is not None:
            raise ConflictError(f"agent {tool.owner!r} already has an active tool named {tool.name!r} ({row[0]})")

    @staticmethod
    def _row(tool: Tool) -> tuple[Any, ...]:
        return (
            tool.tool_id,
            tool.owner,
            tool.name,
            tool.status.value,
            tool.visibility.value,
            tool.definition.description,
            str(tool.code_hash),
            tool.record_version,
            tool.updated_at.isoformat(),
            _serde.dumps(tool),
            tool.team,
        )

    @staticmethod
    def _write_children(conn: sqlite3.Connection, tool: Tool) -> None:
        conn.executemany(
            "INSERT INTO code_refs (code_hash, tool_id) VALUES (?, ?)",
            [(str(h), tool.tool_id) for h in sorted(tool.code_hashes)],
        )
        conn.executemany(
            "INSERT INTO tool_tags (tag, tool_id) VALUES (?, ?)",
            [(tag, tool.tool_id) for tag in tool.definition.tags],
        )

    # -- search --------------------------------------------------------------------------------

    @staticmethod
    def _unindex(conn: sqlite3.Connection, tool_id: str) -> None:
        row = conn.execute("SELECT rowid FROM tools WHERE tool_id = ?", (tool_id,)).fetchone()
        if row is None:
            return
        old = conn.execute("SELECT name, description, params, tags FROM search_public WHERE rowid = ?", row).fetchone()
        if old is not None:
            conn.execute("DELETE FROM search_public WHERE rowid = ?", row)
            SqliteToolRepository._add_totals(conn, PUBLIC_SCOPE, old, -1)
        old = conn.execute(
            "SELECT scope, name, description, params, tags FROM search_private WHERE rowid = ?", row
        ).fetchone()
        if old is not None:
            conn.execute("DELETE FROM search_private WHERE rowid = ?", row)
            SqliteToolRepository._add_totals(conn, old[0], old[1:], -1)

    @staticmethod
    def _team_sql(teams: frozenset[str], table: str = "") -> str:
        # " OR team tools of these teams", with one placeholder per team (sorted by the caller).
        if not teams:
            return ""
        return f" OR ({table}visibility = 'team' AND {table}team IN ({', '.join('?' * len(teams))}))"

    @staticmethod
    def _add_totals(conn: sqlite3.Connection, scope: str, columns: Sequence[str], sign: int) -> None:
        lengths = [sign * len(column.split()) for column in columns]
        owner, _, team = scope.partition(" ")
        conn.execute(
            "INSERT INTO search_totals (scope, documents, name, description, params, tags, owner, team)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET"
            " documents = documents + excluded.documents, name = name + excluded.name,"
            " description = description + excluded.description, params = params + excluded.params,"
            " tags = tags + excluded.tags",
            (scope, sign, *lengths, None if scope == PUBLIC_SCOPE else owner, team or None),
        )

    @staticmethod
    def _index(conn: sqlite3.Connection, tool: Tool) -> None:
        SqliteToolRepository._unindex(conn, tool.tool_id)
        if not tool.is_active:
            return
        columns = SearchDocument.of(tool.tool_id, tool.definition).columns()
        if tool.visibility is Visibility.PUBLIC:
            conn.execute(
                "INSERT INTO search_public (rowid, name, description, params, tags)"
                " SELECT rowid, ?, ?, ?, ? FROM tools WHERE tool_id = ?",
                (*columns, tool.tool_id),
            )
            SqliteToolRepository._add_totals(conn, PUBLIC_SCOPE, columns, 1)
        else:
            scope = _scope_of(tool)
            conn.execute(
                "INSERT INTO search_private (rowid, scope, name, description, params, tags)"
                " SELECT rowid, ?, ?, ?, ?, ? FROM tools WHERE tool_id = ?",
                (scope, *columns, tool.tool_id),
            )
            SqliteToolRepository._add_totals(conn, scope, columns, 1)

    def _fill_search_index(self, conn: sqlite3.Connection) -> int:
        conn.execute("DELETE FROM search_public")
        conn.execute("DELETE FROM search_private")
        conn.execute("DELETE FROM search_totals")
        count = 0
        for tool_id, body in conn.execute("SELECT tool_id, body FROM tools WHERE status = 'active'").fetchall():
            self._index(conn, self._decode(tool_id, body, Tool))
            count += 1
        return count

    def rebuild_search_index(self) -> int:
        """Rebuild the search index from the tool records (``toolrt doctor --repair``); the count indexed."""
        with self._write("rebuilding the search index") as conn:
            return self._fill_search_index(conn)

    def search_index_problems(self) -> typing.List[str]:  # noqa: UP006 (``list`` is a method here)
        """What differs between the search index and the tool records (empty when consistent)."""

        def check(conn: sqlite3.Connection) -> list[str]:
            expected: dict[int, str] = {}
            for rowid, owner, visibility, team in conn.execute(
                "SELECT rowid, owner, visibility, team FROM tools WHERE status = 'active'"
            ):
                scope = owner_scope(owner) + ("" if team is None else " " + team_scope(team))
                expected[rowid] = PUBLIC_SCOPE if visibility == "public" else scope
            indexed = {rowid: PUBLIC_SCOPE for (rowid,) in conn.execute("SELECT rowid FROM search_public")}
            for rowid, scope in conn.execute("SELECT rowid, scope FROM search_private"):
                indexed[rowid] = scope if rowid not in indexed else "twice"
            problems: list[str] = []
            missing = [r for r in expected if r not in indexed]
            if missing:
                problems.append(f"{len(missing)} active tool(s) missing from the search index")
            wrong = [r for r, scope in indexed.items() if expected.get(r) != scope]
            if wrong:
                problems.append(f"{len(wrong)} search index entr(y/ies) for tools that are gone, inactive or moved")
            counts: dict[str, int] = {}
            for scope in indexed.values():
                counts[scope] = counts.get(scope, 0) + 1
            totals = {scope: n for scope, n in conn.execute("SELECT scope, documents FROM search_totals") if n}
            if totals != counts:
                problems.append("the search index's totals do not match its entries")
            return problems

        return self._read("checking the search index", check)

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, int, tuple[str, ...]]]:
            where = "t.status = 'active'" + (
                ""
                if visible_to is None
                else f" AND (t.owner = ? OR t.visibility = 'public'{self._team_sql(teams, 't.')})"
            )
            rows = conn.execute(
                "SELECT t.tool_id, t.record_version, g.tag FROM tools t LEFT JOIN tool_tags g ON g.tool_id = t.tool_id"
                f" WHERE {where} ORDER BY t.tool_id",
                () if visible_to is None else (visible_to, *sorted(teams)),
            ).fetchall()
            found: dict[str, tuple[int, list[str]]] = {}
            for tool_id, record_version, tag in rows:
                entry = found.setdefault(tool_id, (int(record_version), []))
                if tag is not None:
                    entry[1].append(tag)
            return [(tool_id, version, tuple(tags)) for tool_id, (version, tags) in found.items()]

        return self._read("listing discoverable tools", run)

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
            args.append(since.isoformat())
        rows = self._read(f"reading outcomes of {tool_id!r}", lambda c: c.execute(sql, args).fetchall())
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
            for tool_id, n, callers, ok in self._read("counting usage", run)
        }
        return {tool_id: found.get(tool_id, NO_USAGE) for tool_id in wanted}

    # -- teams -----------------------------------------------------------------------------------

    def add_team_member(self, team: str, agent_id: str) -> bool:
        with self._write(f"adding {agent_id!r} to team {team!r}") as conn:
            cursor = conn.execute("INSERT OR IGNORE INTO team_members (team, agent_id) VALUES (?, ?)", (team, agent_id))
            return cursor.rowcount > 0

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        with self._write(f"removing {agent_id!r} from team {team!r}") as conn:
            cursor = conn.execute("DELETE FROM team_members WHERE team = ? AND agent_id = ?", (team, agent_id))
            return cursor.rowcount > 0

    def teams_of(self, agent_id: str) -> frozenset[str]:
        rows = self._read(
            f"reading the teams of {agent_id!r}",
            lambda c: c.execute("SELECT team FROM team_members WHERE agent_id = ?", (agent_id,)).fetchall(),
        )
        return frozenset(row[0] for row in rows)

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        rows = self._read(
            "listing teams", lambda c: c.execute("SELECT team, agent_id FROM team_members ORDER BY team").fetchall()
        )
        teams: dict[str, set[str]] = {}
        for team, agent_id in rows:
            teams.setdefault(team, set()).add(agent_id)
        return {team: frozenset(members) for team, members in teams.items()}

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Candidates from FTS5, then BM25F over the statistics of exactly the visible tools.

        Public candidates: the best by FTS5's own rank (its statistics are the public tools', which
        everyone may see), several times the limit, found through the query's rarer terms. Private
        candidates: the agent's own non-public tools and the team tools of its teams (``scope``
        tokens AND the terms). The visible statistics: public totals and fts5vocab counts plus the
        totals and per-term counts of those scopes; other agents' private tools, and the tools of
        teams the agent is not in, are never read, and move no score.
        """
        if not query.terms:
            return []
        weights = ", ".join(str(FIELD_WEIGHTS[name]) for name in FIELDS)
        candidates = max(query.limit * 5, 50)
        # The agent's scopes: its own token and those of its teams. A non-public tool's scope
        # column holds its owner's token and, for team tools, its team's: it matches once.
        scopes: list[str] | None = None
        if query.visible_to is not None:
            scopes = [owner_scope(query.visible_to), *(team_scope(t) for t in sorted(query.teams))]
        scope = None if scopes is None else "(" + " OR ".join(f'"{token}"' for token in scopes) + ")"

        def run(conn: sqlite3.Connection) -> tuple[list[Any], CorpusStats]:
            marks = ", ".join("?" * len(query.terms))
            public_df: dict[str, int] = dict(
                conn.execute(f"SELECT term, doc FROM search_public_vocab WHERE term IN ({marks})", query.terms)
            )
            public_totals = conn.execute(
                "SELECT documents, name, description, params, tags FROM search_totals WHERE scope = ?", (PUBLIC_SCOPE,)
            ).fetchone() or (0, 0, 0, 0, 0)
            if scope is None:
                private_totals = conn.execute(
                    "SELECT total(documents), total(name), total(description), total(params), total(tags)"
                    " FROM search_totals WHERE scope != ?",
                    (PUBLIC_SCOPE,),
                ).fetchone()
            else:
                assert scopes is not None
                teams = ", ".join("?" * (len(scopes) - 1))
                private_totals = conn.execute(
                    "SELECT total(documents), total(name), total(description), total(params), total(tags)"
                    f" FROM search_totals WHERE scope != ? AND (owner = ? OR team IN ({teams}))",
                    (PUBLIC_SCOPE, *scopes),
                ).fetchone()
            within = "" if scope is None else f"scope : {scope} AND "
            private_df: dict[str, int] = {}
            if private_totals[0]:
                for term in query.terms:
                    (count,) = conn.execute(
                        "SELECT count(*) FROM search_private WHERE search_private MATCH ?",
                        (f'{within}{CONTENT} : "{term}"',),
                    ).fetchone()
                    if count:
                        private_df[term] = int(count)
            rows: list[Any] = []
            # Candidates come from the rarer terms: a term in most tools adds little to any score and
            # would make FTS5 rank most of the table. Every term still counts in the scores below.
            present = [t for t in query.terms if public_df.get(t)]
            rare = [t for t in present if public_df[t] <= max(RARE_TERM_MIN_DOCS, public_totals[0] * RARE_TERM_SHARE)]
            tags_sql = " AND rowid IN (SELECT t.rowid FROM tools t JOIN tool_tags g USING (tool_id) WHERE g.tag = ?)"
            tags_sql *= len(query.tags)
            if present:
                public_sql = (
                    "SELECT rowid, name, description, params, tags FROM search_public WHERE search_public MATCH ?"
                    f"{tags_sql} ORDER BY bm25(search_public, {weights}) LIMIT ?"
                )
                match = " OR ".join(f'"{term}"' for term in (rare or present))
                found = conn.execute(public_sql, (match, *query.tags, candidates)).fetchall()
                if rare and len(found) < candidates and len(rare) < len(present):
                    # Few tools hold the rare terms: fill up with those holding only common ones.
                    every = " OR ".join(f'"{term}"' for term in present)
                    seen = {row[0] for row in found}
                    more = conn.execute(public_sql, (every, *query.tags, candidates)).fetchall()
                    found += [row for row in more if row[0] not in seen][: candidates - len(found)]
                rows += found
            if private_totals[0]:
                # Every match in the agent's scopes (its own and its teams'), unordered: ordering or
                # cutting them by FTS5's bm25() would let the statistics of other agents' private
                # tools (the same table) decide which are scored. The owner's view sees all anyway.
                # The same rare-first choice, made with the visible statistics only.
                visible_docs = public_totals[0] + private_totals[0]
                seen_df = {t: public_df.get(t, 0) + private_df.get(t, 0) for t in query.terms}
                own_rare = [
                    t
                    for t in query.terms
                    if private_df.get(t) and seen_df[t] <= max(RARE_TERM_MIN_DOCS, visible_docs * RARE_TERM_SHARE)
                ]
                words = " OR ".join(f'"{term}"' for term in (own_rare or query.terms))
                match = f"{within}{CONTENT} : ({words})"
                private_sql = f"SELECT rowid, name, description, params, tags FROM search_private WHERE search_private MATCH ?{tags_sql}"
                if scope is None:
                    private_sql += f" ORDER BY bm25(search_private, 0, {weights}) LIMIT {int(candidates)}"
                own = conn.execute(private_sql, (match, *query.tags)).fetchall()
                if scope is not None and own_rare and len(own) < candidates:
                    # Room left: the agent's tools holding only common terms, in storage order (an
                    # order that owes nothing to anyone else's tools).
                    every = " OR ".join(f'"{term}"' for term in query.terms)
                    seen = {row[0] for row in own}
                    more = conn.execute(
                        private_sql + " ORDER BY rowid LIMIT ?",
                        (f"{within}{CONTENT} : ({every})", *query.tags, candidates + len(seen)),
                    ).fetchall()
                    own += [row for row in more if row[0] not in seen][: candidates - len(own)]
                rows += own
            if rows:
                rowids = ", ".join(str(int(row[0])) for row in rows)
                ids = dict(conn.execute(f"SELECT rowid, tool_id FROM tools WHERE rowid IN ({rowids})").fetchall())
                rows = [(ids[row[0]], *row[1:]) for row in rows if row[0] in ids]
            frequency = {t: public_df.get(t, 0) + private_df.get(t, 0) for t in query.terms}
            totals = [a + b for a, b in zip(public_totals, private_totals, strict=True)]
            total = sum(FIELD_WEIGHTS[name] * count for name, count in zip(FIELDS, totals[1:], strict=True))
            return rows, CorpusStats(int(totals[0]), total, frequency)

        rows, stats = self._read("searching tools", run)
        documents = [SearchDocument.from_columns(row[0], row[1:]) for row in rows]
        ranked = rank(query.terms, documents, stats, query.limit)
        wanted = [document.tool_id for document, _ in ranked]  # bodies only for what is returned
        marks = ", ".join("?" * len(wanted))
        bodies = dict(
            self._read(
                "reading found tools",
                lambda c: c.execute(f"SELECT tool_id, body FROM tools WHERE tool_id IN ({marks})", wanted).fetchall(),
            )
        )
        hits = []
        for document, score in ranked:
            if document.tool_id not in bodies:
                continue
            tool = self._tool(document.tool_id, bodies[document.tool_id])
            # Visibility is decided on the record returned, read in the statement that reads its
            # body: a tool made private (or withdrawn) since its index entry was read is left out.
            if tool.is_active and (query.visible_to is None or tool.can_discover(query.visible_to, query.teams)):
                hits.append(SearchHit(tool, score))
        return hits

    # -- executions ------------------------------------------------------------------------------

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
        relaxed = self._wal_sync is not None
        try:
            rows = [execution_row(pending.execution) for pending in batch]
            self._local.relaxed_commit = relaxed
            try:
                with self._write(f"recording {len(batch)} execution(s), {execution.execution_id!r} among them") as conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO executions (execution_id, tool_id, status, created_at, body, caller,"
                        " created_min, version, wall_ms, error_type, isolation)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            finally:
                self._local.relaxed_commit = False  # every other write waits for the disk
            if self._wal_sync is not None:
                self._wal_sync.written()
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
        if keep_newest is not None and (
            isinstance(keep_newest, bool) or not isinstance(keep_newest, int) or keep_newest < 0
        ):
            raise ValidationError(f"keep_newest must be a non-negative integer, got {keep_newest!r}")
        finished = "status NOT IN ('pending', 'running')"
        where = f"created_at < ? AND {finished}"
        args: tuple[Any, ...] = (before.isoformat(),)
        if keep_newest is not None:
            cut = self._read(
                "finding the oldest execution record to keep",
                lambda c: c.execute(
                    f"SELECT created_at, execution_id FROM executions WHERE {finished}"
                    " ORDER BY created_at DESC, execution_id DESC LIMIT 1 OFFSET ?",
                    (keep_newest,),
                ).fetchone(),
            )
            if cut is not None:
                where = f"(created_at < ? OR (created_at, execution_id) <= (?, ?)) AND {finished}"
                args = (before.isoformat(), cut[0], cut[1])
        if dry_run:
            return int(
                self._read(
                    "counting old executions",
                    lambda c: c.execute(f"SELECT count(*) FROM executions WHERE {where}", args).fetchone()[0],
                )
            )
        removed = 0
        while True:
            with self._write("removing old executions") as conn:
                count = conn.execute(
                    f"DELETE FROM executions WHERE rowid IN (SELECT rowid FROM executions WHERE {where} LIMIT ?)",
                    (*args, _PURGE_CHUNK),
                ).rowcount
            removed += count
            if count < _PURGE_CHUNK:
                return removed

    # -- fleet figures ---------------------------------------------------------------------------

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        """Aggregated by SQL over the window from a covering index alone (``executions_by_time``, or
        ``executions_by_tool_time`` for one tool); percentiles by ``ORDER BY wall_ms LIMIT 1
        OFFSET`` at the nearest rank."""
        check_window(since, until)
        final = ", ".join(f"'{s.value}'" for s in FINAL_STATUSES)
        where = f"created_at >= ? AND created_at < ? AND status IN ({final})"
        args: list[Any] = [since.isoformat(), until.isoformat()]
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

        return self._read("summarizing executions", run)

    def tool_census(self) -> ToolCensus:
        """Counted by SQL over the tools' columns (no record is read)."""

        def run(conn: sqlite3.Connection) -> ToolCensus:
            # Both from covering indexes (tools_by_visibility, tools_by_owner): no record is read.
            rows = conn.execute(
                "SELECT status, visibility, count(*) FROM tools INDEXED BY tools_by_visibility GROUP BY 1, 2"
            ).fetchall()
            (owners,) = conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT owner FROM tools INDEXED BY tools_by_owner"
                " WHERE status = 'active')"
            ).fetchone()
            active = sum(int(n) for status, _, n in rows if status == ToolStatus.ACTIVE.value)
            inactive = sum(int(n) for status, _, n in rows if status != ToolStatus.ACTIVE.value)
            visibility: dict[str, int] = {}
            for status, chosen, n in rows:
                if status == ToolStatus.ACTIVE.value:
                    visibility[chosen] = visibility.get(chosen, 0) + int(n)
            return ToolCensus(active, inactive, int(owners), tuple(sorted(visibility.items())))

        return self._read("counting tools", run)

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        """One transaction, an upsert per count (the totals add up across processes)."""
        if not counts:
            return
        with self._write(f"adding {len(counts)} counter value(s)") as conn:
            conn.executemany(
                "INSERT INTO counters (minute, name, dimensions, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (minute, name, dimensions) DO UPDATE SET value = value + excluded.value",
                [(c.minute, c.name, dimensions_text(c.dimensions), c.value) for c in counts],
            )

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        rows = self._read(
            "reading counters",
            lambda c: c.execute(
                "SELECT minute, name, dimensions, value FROM counters WHERE minute >= ? AND minute < ?",
                (since_minute, until_minute),
            ).fetchall(),
        )
        return [StoredCount(int(m), str(n), parse_dimensions(str(d)), int(v)) for m, n, d, v in rows]

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        if dry_run:
            return int(
                self._read(
                    "counting old counters",
                    lambda c: c.execute("SELECT count(*) FROM counters WHERE minute < ?", (before_minute,)).fetchone()[
                        0
                    ],
                )
            )
        with self._write("removing old counters") as conn:
            return int(conn.execute("DELETE FROM counters WHERE minute < ?", (before_minute,)).rowcount)

    def get_execution(self, execution_id: str) -> Execution:
        row = self._read(
            f"reading execution {execution_id!r}",
            lambda c: c.execute("SELECT body FROM executions WHERE execution_id = ?", (execution_id,)).fetchone(),
        )
        if row is None:
            raise NotFoundError("execution", execution_id)
        return self._decode(execution_id, row[0], Execution)

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Newest first; SQL narrows by tool, status and time, the rest is checked on the records."""
        where: list[str] = []
        args: list[Any] = []
        if query.tool_id is not None:
            where.append("tool_id = ?")
            args.append(query.tool_id)
        elif query.tool_ids is not None and query.caller is None:
            if not query.tool_ids:
                return []
            where.append(f"tool_id IN ({', '.join('?' * len(query.tool_ids))})")
            args.extend(sorted(query.tool_ids))
        if query.status is not None:
            where.append("status = ?")
            args.append(query.status.value)
        if query.since is not None:
            where.append("created_at >= ?")
            args.append(query.since.isoformat())
        if query.before is not None:
            where.append("created_at <= ?")
            args.append(query.before[0].isoformat())
        sql = "SELECT execution_id, body FROM executions" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, execution_id DESC"

        def run(conn: sqlite3.Connection) -> list[Execution]:
            found: list[Execution] = []
            for key, body in conn.execute(sql, args):
                execution = self._decode(key, body, Execution)
                if query.matches(execution):
                    found.append(execution)
                    if len(found) >= query.limit:
                        break
            return found

        return self._read("listing executions", run)
