"""The local adapters (SQLite repository, file artifact store) pass the shipped contract suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.contracts import ArtifactStoreContract, ToolRepositoryContract
from toolrt.ports import ArtifactStore, ToolRepository


class TestSqliteToolRepository(ToolRepositoryContract):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> Iterator[None]:
        self._dir = tmp_path
        self._opened: list[SqliteToolRepository] = []
        yield
        for repo in self._opened:
            repo.close()

    def make_repository(self) -> ToolRepository:
        repo = SqliteToolRepository(self._dir / f"tools-{len(self._opened)}.sqlite")
        self._opened.append(repo)
        return repo


class TestFileArtifactStore(ArtifactStoreContract):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self._dir = tmp_path

    def make_store(self) -> ArtifactStore:
        return FileArtifactStore(self._dir / "artifacts")
