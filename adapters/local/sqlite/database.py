"""One SQLite file that the SQLite stores share: per-thread connections, transactions, typed
errors, the schema's migrations, durability of execution records, and decoding of stored bodies."""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self, TypeVar

from toolrt.adapters.local import _serde
from toolrt.adapters.local.sqlite.derived import fill_search_index
from toolrt.adapters.local.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, SEARCH_SCHEMA
from toolrt.domain import StorageError, Tool, TransientError, ValidationError
from toolrt.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# Decoded tool records kept (see SqliteDatabase.tool).
_DECODED_TOOLS = 4096


def _lower(value: str | None) -> str | None:
    # SQLite's lower() folds ASCII only; the query semantics are Python's str.lower().
    return value.lower() if value is not None else None


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


class SqliteDatabase:
    """One SQLite file, safe across processes and threads, that every SQLite store works on.

    - Every thread gets its own connection (opened on first use, in autocommit mode); a process that
      forks opens fresh connections in the child. ``close()`` closes all of them.
    - WAL journal, ``busy_timeout`` and ``synchronous=FULL``: readers never block the writer, a
      committed change survives a crash of the process or the machine.
    - Every read-modify-write runs in ``BEGIN IMMEDIATE`` (:meth:`write`), so a store's checks and
      changes are one serialized transaction (never a lost update).
    - A lock still held after ``busy_timeout_s`` raises :class:`TransientError`; any other SQLite
      failure raises :class:`StorageError` naming the file.
    - A write made with ``durable=False`` (execution records) does not wait for the disk
      (``synchronous=NORMAL`` for that transaction): it is in the WAL file when it returns, so it
      survives a crash of the process, and a background thread fsyncs the WAL at most
      ``record_sync_s`` later (and ``close()`` before it returns), so a crash of the machine loses
      at most that window of such writes, never a durable one, and never leaves a half-written
      one. ``record_sync_s=0`` makes every write wait for the disk.
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
        if record_sync_s < 0:
            raise ValidationError(f"record_sync_s must be zero or more, got {record_sync_s!r}")
        self._wal_sync = _WalSync(Path(f"{self._path}-wal"), record_sync_s) if record_sync_s > 0 else None
        self._migrate()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def backend(self) -> str:
        """How errors name this store (``sqlite <path>``)."""
        return self._backend

    @property
    def commits(self) -> int:
        """A number that changes with every transaction this object committed (``PRAGMA
        data_version`` shows other connections' commits only)."""
        return self._commits

    @property
    def syncs_in_background(self) -> bool:
        """True when writes made with ``durable=False`` reach the disk from a background thread."""
        return self._wal_sync is not None

    @property
    def local(self) -> threading.local:
        """This thread's state (its connection, and what stores cache per connection); a forked
        child starts with none."""
        self.connection()
        return self._local

    # -- connections and errors ------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (for stores, and for bulk loaders that write rows directly)."""
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
        with self.translate("opening the database"):
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
    def translate(self, doing: str) -> Iterator[None]:
        """Raise SQLite's and the file system's errors as ``TransientError`` (a lock held too long)
        or ``StorageError``, saying what was being done."""
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
    def write(self, doing: str, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed when the block ends (rolled back when it
        raises). ``durable=False`` commits without waiting for the disk (see the class docstring)."""
        conn = self.connection()
        relaxed = not durable and self._wal_sync is not None
        with self.translate(doing):
            # How this commit reaches the disk: switched only when it changes, so a thread that
            # records executions call after call never switches.
            if relaxed != getattr(self._local, "relaxed", False):
                conn.execute(f"PRAGMA synchronous = {'NORMAL' if relaxed else 'FULL'}")
                self._local.relaxed = relaxed
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
                self._commits = next(self._commit_counter)
            finally:
                if conn.in_transaction:
                    # The original error matters more than a failing rollback.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
        if relaxed and self._wal_sync is not None:
            self._wal_sync.written()

    def read(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)``, its errors translated."""
        conn = self.connection()
        with self.translate(doing):
            return fn(conn)

    def _migrate(self) -> None:
        with self.write("migrating the schema") as conn:
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
                # Tools stored before the index existed, indexed in the final schema.
                fill_search_index(conn, self.decode)

    def schema_version(self) -> int:
        """The schema version stored in the file."""
        return int(self.read("reading the schema version", lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    def close(self) -> None:
        """Close every connection this object opened (in this process); writes made with
        ``durable=False`` reach the disk before it returns."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._closed = True
            mine = os.getpid() == self._pid
        if mine and self._wal_sync is not None:
            self._wal_sync.close()
        if mine:
            for conn in connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    # -- decoding --------------------------------------------------------------------------------

    def decode(self, key: str, body: str, cls: type[T]) -> T:
        """The stored JSON ``body`` of record ``key`` as a ``cls``; StorageError when unreadable."""
        try:
            return _serde.loads(body, cls)
        except ValueError as exc:
            raise StorageError(f"stored record {key!r} is unreadable: {exc}", backend=self._backend) from exc

    def tool(self, tool_id: str, body: str) -> Tool:
        """The tool stored as ``body``, decoded once per distinct body: every call of a tool reads
        its record, and decoding it costs more than the read. A Tool is immutable, and the cached
        one is returned only for the very same stored text, so a change is never missed."""
        cached = self._decoded.get(tool_id)
        if cached is not None and cached[0] == body:
            return cached[1]
        tool = self.decode(tool_id, body, Tool)
        if len(self._decoded) >= _DECODED_TOOLS:
            self._decoded.clear()  # the hot tools come back within a call each
        self._decoded[tool_id] = (body, tool)
        return tool


class SqliteStore:
    """What every SQLite store is built on: a :class:`SqliteDatabase`, shared when several stores
    are one repository (their changes then commit in one file, one transaction at a time)."""

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__()
        self._db = database

    @property
    def database(self) -> SqliteDatabase:
        """The database this store works on."""
        return self._db

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    def schema_version(self) -> int:
        """The schema version stored in the file."""
        return self._db.schema_version()

    def close(self) -> None:
        """Close the database (every store on it)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
