"""In-memory adapters: the test harness profile, and the system pieces every profile shares."""

from toolrt.adapters.memory.artifacts import InMemoryArtifactStore
from toolrt.adapters.memory.gateway import InProcessGateway
from toolrt.adapters.memory.inprocess_sandbox import InProcessSandbox
from toolrt.adapters.memory.metrics import InMemoryMetrics, RecordingEventPublisher
from toolrt.adapters.memory.repository import InMemoryToolRepository
from toolrt.adapters.memory.system import SystemClock, UuidIdGenerator

__all__ = [
    "InMemoryArtifactStore",
    "InMemoryMetrics",
    "InMemoryToolRepository",
    "InProcessGateway",
    "InProcessSandbox",
    "RecordingEventPublisher",
    "SystemClock",
    "UuidIdGenerator",
]
