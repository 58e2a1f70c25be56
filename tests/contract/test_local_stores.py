"""The local adapters pass the shipped contract suites: each SQLite store on its own (the stores
that derive from tool records as separate objects on the records' database), all of them as one
repository, and the file artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite import (
    SqliteCodeReferences,
    SqliteCounters,
    SqliteDatabase,
    SqliteExecutionLog,
    SqliteSearchIndex,
    SqliteTeams,
    SqliteToolRecords,
)
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.contracts import (
    ArtifactStoreContract,
    CodeReferencesContract,
    CountersContract,
    ExecutionLogContract,
    OneStoreContract,
    SearchIndexContract,
    TeamsContract,
    ToolRecordsContract,
)
from toolrt.ports import (
    ArtifactStore,
    CodeReferences,
    Counters,
    ExecutionLog,
    SearchIndex,
    Teams,
    ToolRecords,
    ToolRepository,
)


class _SqliteFiles:
    """A fresh database file per store, all closed when the test ends."""

    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> Iterator[None]:
        self._dir = tmp_path
        self._opened: list[SqliteDatabase] = []
        yield
        for database in self._opened:
            database.close()

    def _path(self) -> Path:
        return self._dir / f"tools-{len(self._opened)}.sqlite"

    def _database(self) -> SqliteDatabase:
        database = SqliteDatabase(self._path())
        self._opened.append(database)
        return database


class TestSqliteToolRecords(_SqliteFiles, ToolRecordsContract):
    def make_tool_records(self) -> ToolRecords:
        return SqliteToolRecords(self._database())


class TestSqliteCodeReferences(_SqliteFiles, CodeReferencesContract):
    def make_code_references(self) -> tuple[ToolRecords, CodeReferences]:
        database = self._database()
        return SqliteToolRecords(database), SqliteCodeReferences(database)


class TestSqliteSearchIndex(_SqliteFiles, SearchIndexContract):
    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        database = self._database()
        return SqliteToolRecords(database), SqliteSearchIndex(database)


class TestSqliteExecutionLog(_SqliteFiles, ExecutionLogContract):
    def make_execution_log(self) -> ExecutionLog:
        return SqliteExecutionLog(self._database())


class TestSqliteTeams(_SqliteFiles, TeamsContract):
    def make_teams(self) -> Teams:
        return SqliteTeams(self._database())


class TestSqliteCounters(_SqliteFiles, CountersContract):
    def make_counters(self) -> Counters:
        return SqliteCounters(self._database())


class TestSqliteToolRepository(_SqliteFiles, OneStoreContract):
    def make_repository(self) -> ToolRepository:
        repo = SqliteToolRepository(self._path())
        self._opened.append(repo.database)
        return repo


class TestFileArtifactStore(ArtifactStoreContract):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self._dir = tmp_path

    def make_store(self) -> ArtifactStore:
        return FileArtifactStore(self._dir / "artifacts")
