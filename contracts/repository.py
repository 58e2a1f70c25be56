"""The contract of a store that implements every storage port in one object (a ToolRepository)."""

from __future__ import annotations

import pytest

from toolrt.contracts import builders as b
from toolrt.contracts.code_references import CodeReferencesContract
from toolrt.contracts.counters import CountersContract
from toolrt.contracts.execution_log import ExecutionLogContract
from toolrt.contracts.search_index import SearchIndexContract
from toolrt.contracts.teams import TeamsContract
from toolrt.contracts.tool_records import ToolRecordsContract
from toolrt.ports import (
    CodeReferences,
    Counters,
    ExecutionLog,
    SearchIndex,
    Teams,
    ToolRecords,
    ToolRepository,
)


class OneStoreContract:
    """What holds across the capabilities of one store, beyond each port's own contract.

    Subclass and implement :meth:`make_repository` (a fresh, empty store per call), beside a
    subclass of each port's contract; or subclass :class:`ToolRepositoryContract` for all at once.
    """

    def make_repository(self) -> ToolRepository:
        raise NotImplementedError

    @pytest.fixture
    def repo(self) -> ToolRepository:
        return self.make_repository()

    def test_is_a_tool_repository(self, repo: ToolRepository) -> None:
        """The adapter satisfies every storage port's Protocol at once."""
        assert isinstance(repo, ToolRepository)

    def test_change_marker_moves_with_teams_and_not_with_executions(self, repo: ToolRepository) -> None:
        """A store that offers a change marker changes it for a membership change, and keeps it for
        an execution record (watchers announce what agents may list, and executions change none)."""
        before = repo.change_marker()
        if before is None:
            return  # the store cannot tell (memory, DynamoDB): its watchers rely on events alone
        repo.add(b.tool())
        added = repo.change_marker()
        repo.record_execution(b.execution())
        assert repo.change_marker() == added
        repo.add_team_member("red", "a")
        joined = repo.change_marker()
        assert joined != added
        repo.remove_team_member("red", "a")
        assert repo.change_marker() != joined


class ToolRepositoryContract(
    ToolRecordsContract,
    CodeReferencesContract,
    SearchIndexContract,
    ExecutionLogContract,
    TeamsContract,
    CountersContract,
    OneStoreContract,
):
    """Every storage port's contract, and :class:`OneStoreContract`, against one store: subclass
    and implement :meth:`make_repository` (a fresh, empty store per call). Each test gets one store,
    whatever ports it uses."""

    def make_tool_records(self) -> ToolRecords:
        return self.make_repository()

    def make_code_references(self) -> tuple[ToolRecords, CodeReferences]:
        store = self.make_repository()
        return store, store

    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        store = self.make_repository()
        return store, store

    def make_execution_log(self) -> ExecutionLog:
        return self.make_repository()

    def make_teams(self) -> Teams:
        return self.make_repository()

    def make_counters(self) -> Counters:
        return self.make_repository()

    # The ports a test asks for are one store (a fixture per port would make one store each).

    @pytest.fixture
    def records(self, repo: ToolRepository) -> ToolRecords:
        return repo

    @pytest.fixture
    def references(self, repo: ToolRepository) -> CodeReferences:
        return repo

    @pytest.fixture
    def index(self, repo: ToolRepository) -> SearchIndex:
        return repo

    @pytest.fixture
    def executions(self, repo: ToolRepository) -> ExecutionLog:
        return repo

    @pytest.fixture
    def teams(self, repo: ToolRepository) -> Teams:
        return repo

    @pytest.fixture
    def counters(self, repo: ToolRepository) -> Counters:
        return repo
