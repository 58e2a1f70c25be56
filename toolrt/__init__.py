"""toolrt: a dynamic tool runtime for AI agents.

``toolrt.connect(profile, **settings)`` gives a :class:`ToolRuntime`; everything else a user of the
library needs is re-exported here.
"""

from toolrt.application import (
    AsyncToolRuntime,
    Deregistration,
    ExecutionPolicy,
    GarbageCollection,
    Registration,
    SearchResult,
    ToolMetrics,
    ToolRuntime,
    ToolStatusReport,
    ToolUpdate,
    Update,
    VersionMetrics,
)
from toolrt.bootstrap import connect
from toolrt.domain import (
    Artifact,
    CodeHash,
    ConflictError,
    EgressDeniedError,
    EgressPolicy,
    Execution,
    ExecutionError,
    ExecutionStatus,
    Finding,
    IsolationLevel,
    Language,
    LimitExceededError,
    Limits,
    Lock,
    LockedPackage,
    MissingDependencyError,
    NetworkAccess,
    NotFoundError,
    OwnershipError,
    RegistrationError,
    RequirementError,
    RequirementsUnsupportedError,
    Severity,
    StorageError,
    TeamMembershipError,
    Tool,
    ToolDefinition,
    ToolExample,
    ToolRuntimeError,
    ToolStatus,
    ToolVersion,
    TrafficGuard,
    TransientError,
    ValidationError,
    ValidationReport,
    Visibility,
)
from toolrt.ports import Embedder, ToolUsage, Tracer
from toolrt.settings import Settings, SettingsError

__version__ = "0.1.0"


def connect_async(
    profile: str | None = None, *, embedder: Embedder | None = None, tracer: Tracer | None = None, **settings: object
) -> AsyncToolRuntime:
    """The asyncio twin of :func:`connect`."""
    return AsyncToolRuntime(connect(profile, embedder=embedder, tracer=tracer, **settings))


__all__ = [
    "Artifact",
    "AsyncToolRuntime",
    "CodeHash",
    "ConflictError",
    "EgressDeniedError",
    "Lock",
    "LockedPackage",
    "RequirementError",
    "RequirementsUnsupportedError",
    "EgressPolicy",
    "Embedder",
    "Deregistration",
    "Execution",
    "ExecutionError",
    "ExecutionPolicy",
    "ExecutionStatus",
    "Finding",
    "GarbageCollection",
    "IsolationLevel",
    "Language",
    "LimitExceededError",
    "Limits",
    "MissingDependencyError",
    "NetworkAccess",
    "NotFoundError",
    "OwnershipError",
    "Registration",
    "RegistrationError",
    "SearchResult",
    "Settings",
    "SettingsError",
    "Severity",
    "StorageError",
    "TeamMembershipError",
    "Tool",
    "ToolDefinition",
    "ToolMetrics",
    "ToolUsage",
    "Tracer",
    "TrafficGuard",
    "VersionMetrics",
    "ToolExample",
    "ToolRuntime",
    "ToolRuntimeError",
    "ToolStatus",
    "ToolStatusReport",
    "ToolVersion",
    "TransientError",
    "ToolUpdate",
    "Update",
    "ValidationError",
    "ValidationReport",
    "Visibility",
    "__version__",
    "connect",
    "connect_async",
]
