"""The memory adapters pass the shipped contract suites: each storage port on its own in-memory
store, the shared in-process search index over in-memory records, and all of them as one repository."""

from toolrt.adapters.memory import (
    InMemoryArtifactStore,
    InMemoryCounters,
    InMemoryExecutionLog,
    InMemoryTeams,
    InMemoryToolRecords,
    InMemoryToolRepository,
    InProcessGateway,
)
from toolrt.adapters.shared.tools import ListedSearchIndex
from toolrt.contracts import (
    ArtifactStoreContract,
    CodeReferencesContract,
    CountersContract,
    ExecutionLogContract,
    OneStoreContract,
    SearchIndexContract,
    TeamsContract,
    ToolGatewayContract,
    ToolRecordsContract,
    ToolRepositoryContract,
)
from toolrt.ports import (
    ArtifactStore,
    CodeReferences,
    Counters,
    ExecutionLog,
    SearchIndex,
    Teams,
    ToolGateway,
    ToolRecords,
    ToolRepository,
)


class TestInMemoryToolRecords(ToolRecordsContract):
    def make_tool_records(self) -> ToolRecords:
        return InMemoryToolRecords()


class TestInMemoryCodeReferences(CodeReferencesContract):
    def make_code_references(self) -> tuple[ToolRecords, CodeReferences]:
        records = InMemoryToolRecords()
        return records, records


class TestInMemorySearchIndex(SearchIndexContract):
    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        records = InMemoryToolRecords()
        return records, records


class TestListedSearchIndex(SearchIndexContract):
    """The search index any store of tool records gets without a text index of its own."""

    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        records = InMemoryToolRecords()
        return records, ListedSearchIndex(records)


class TestInMemoryExecutionLog(ExecutionLogContract):
    def make_execution_log(self) -> ExecutionLog:
        return InMemoryExecutionLog()


class TestInMemoryTeams(TeamsContract):
    def make_teams(self) -> Teams:
        return InMemoryTeams()


class TestInMemoryCounters(CountersContract):
    def make_counters(self) -> Counters:
        return InMemoryCounters()


class TestInMemoryToolRepository(OneStoreContract):
    def make_repository(self) -> ToolRepository:
        return InMemoryToolRepository()


class TestEveryContractAtOnce(ToolRepositoryContract):
    """The all-at-once suite a user's one-object store subclasses, on the memory repository."""

    def make_repository(self) -> ToolRepository:
        return InMemoryToolRepository()


class TestInMemoryArtifactStore(ArtifactStoreContract):
    def make_store(self) -> ArtifactStore:
        return InMemoryArtifactStore()


class TestInProcessGateway(ToolGatewayContract):
    def make_gateway(self) -> ToolGateway:
        return InProcessGateway()
