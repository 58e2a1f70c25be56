"""In-memory adapters: the test harness profile."""

from toolrt.adapters.memory.artifacts import InMemoryArtifactStore
from toolrt.adapters.memory.gateway import InProcessGateway
from toolrt.adapters.memory.inprocess_sandbox import InProcessSandbox
from toolrt.adapters.memory.metrics import InMemoryMetrics
from toolrt.adapters.memory.repository import InMemoryToolRepository

__all__ = [
    "InMemoryArtifactStore",
    "InMemoryMetrics",
    "InMemoryToolRepository",
    "InProcessGateway",
    "InProcessSandbox",
]
