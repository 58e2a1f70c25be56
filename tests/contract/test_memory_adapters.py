"""The memory adapters pass the shipped contract suites."""

from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryToolRepository, InProcessGateway
from toolrt.contracts import ArtifactStoreContract, ToolGatewayContract, ToolRepositoryContract
from toolrt.ports import ArtifactStore, ToolGateway, ToolRepository


class TestInMemoryToolRepository(ToolRepositoryContract):
    def make_repository(self) -> ToolRepository:
        return InMemoryToolRepository()


class TestInMemoryArtifactStore(ArtifactStoreContract):
    def make_store(self) -> ArtifactStore:
        return InMemoryArtifactStore()


class TestInProcessGateway(ToolGatewayContract):
    def make_gateway(self) -> ToolGateway:
        return InProcessGateway()
