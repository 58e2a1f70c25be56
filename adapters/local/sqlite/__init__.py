"""The local stores in one SQLite file: a module per capability, one database helper they share."""

from toolrt.adapters.local.sqlite.code_references import SqliteCodeReferences
from toolrt.adapters.local.sqlite.counters import SqliteCounters
from toolrt.adapters.local.sqlite.database import SqliteDatabase, SqliteStore
from toolrt.adapters.local.sqlite.execution_log import SqliteExecutionLog
from toolrt.adapters.local.sqlite.search_index import SqliteSearchIndex
from toolrt.adapters.local.sqlite.teams import SqliteTeams
from toolrt.adapters.local.sqlite.tool_records import SqliteToolRecords

__all__ = [
    "SqliteCodeReferences",
    "SqliteCounters",
    "SqliteDatabase",
    "SqliteExecutionLog",
    "SqliteSearchIndex",
    "SqliteStore",
    "SqliteTeams",
    "SqliteToolRecords",
]
