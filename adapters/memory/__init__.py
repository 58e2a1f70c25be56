"""In-memory adapters: the test harness profile."""

from toolrt.adapters.memory.artifacts import InMemoryArtifactStore
from toolrt.adapters.memory.counters import InMemoryCounters
from toolrt.adapters.memory.execution_log import InMemoryExecutionLog
from toolrt.adapters.memory.gateway import InProcessGateway
from toolrt.adapters.memory.inprocess_sandbox import InProcessSandbox
from toolrt.adapters.memory.metrics import InMemoryMetrics
from toolrt.adapters.memory.repository import InMemoryToolRepository
from toolrt.adapters.memory.teams import InMemoryTeams
from toolrt.adapters.memory.tool_records import InMemoryToolRecords

__all__ = [
    "InMemoryArtifactStore",
    "InMemoryCounters",
    "InMemoryExecutionLog",
    "InMemoryMetrics",
    "InMemoryTeams",
    "InMemoryToolRecords",
    "InMemoryToolRepository",
    "InProcessGateway",
    "InProcessSandbox",
]
