"""A ToolRepository in one SQLite file: WAL, busy timeout, BEGIN IMMEDIATE, versioned schema.

Each capability is its own store in :mod:`toolrt.adapters.local.sqlite`; this is all of them on
one :class:`~toolrt.adapters.local.sqlite.SqliteDatabase`.
"""

from __future__ import annotations

from pathlib import Path

from toolrt.adapters.local.sqlite import (
    SqliteCodeReferences,
    SqliteCounters,
    SqliteDatabase,
    SqliteExecutionLog,
    SqliteSearchIndex,
    SqliteTeams,
    SqliteToolRecords,
)
from toolrt.adapters.local.sqlite.derived import owner_scope, team_scope
from toolrt.adapters.local.sqlite.execution_log import execution_row
from toolrt.adapters.local.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, SEARCH_SCHEMA

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEARCH_SCHEMA",
    "SqliteToolRepository",
    "execution_row",
    "owner_scope",
    "team_scope",
]


class SqliteToolRepository(
    SqliteToolRecords, SqliteCodeReferences, SqliteSearchIndex, SqliteTeams, SqliteExecutionLog, SqliteCounters
):
    """Tools, their code references and search index, executions, teams and counters in one SQLite
    file, safe across processes and threads (see :class:`~toolrt.adapters.local.sqlite.SqliteDatabase`
    for connections, locking and durability, and each store for what it keeps).

    ``busy_timeout_s``: how long a write waits for another's lock before ``TransientError``.
    ``record_sync_s``: how soon execution records, committed without waiting for the disk, are
    fsynced (0: each record waits for the disk).
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0, record_sync_s: float = 0.1) -> None:
        super().__init__(SqliteDatabase(path, busy_timeout_s=busy_timeout_s, record_sync_s=record_sync_s))
