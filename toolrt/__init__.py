"""toolrt: a dynamic tool runtime for AI agents.

``toolrt.connect(profile, **settings)`` gives a :class:`ToolRuntime`; everything else a user of the
library needs is re-exported here. The names are imported when first used (PEP 562), so that
``import toolrt`` costs a few milliseconds and a program pays only for what it touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name and the module it comes from, imported on first access.
_APPLICATION = (
    "AsyncToolRuntime Deregistration ExecutionPolicy GarbageCollection Registration SearchResult ToolMetrics "
    "ToolRuntime ToolStatusReport ToolUpdate Update VersionMetrics"
)
_DOMAIN = (
    "Artifact CodeHash ConflictError EgressDeniedError EgressPolicy Execution ExecutionError ExecutionStatus "
    "Finding IsolationLevel Language LimitExceededError Limits Lock LockedPackage MissingDependencyError "
    "NetworkAccess NotFoundError OwnershipError RegistrationError RequirementError RequirementsUnsupportedError "
    "Severity StorageError TeamMembershipError Tool ToolDefinition ToolExample ToolRuntimeError ToolStatus "
    "ToolVersion TrafficGuard TransientError ValidationError ValidationReport Visibility"
)
_SOURCES: dict[str, str] = {
    **dict.fromkeys(_APPLICATION.split(), "toolrt.application"),
    **dict.fromkeys(_DOMAIN.split(), "toolrt.domain"),
    **dict.fromkeys(("Embedder", "ToolUsage", "Tracer"), "toolrt.ports"),
    **dict.fromkeys(("Settings", "SettingsError"), "toolrt.settings"),
    "connect": "toolrt.bootstrap",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'toolrt' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def connect_async(
    profile: str | None = None, *, embedder: Embedder | None = None, tracer: Tracer | None = None, **settings: object
) -> AsyncToolRuntime:
    """The asyncio twin of :func:`connect`."""
    from toolrt.application import AsyncToolRuntime
    from toolrt.bootstrap import connect

    return AsyncToolRuntime(connect(profile, embedder=embedder, tracer=tracer, **settings))


__all__ = [
    "Artifact",
    "AsyncToolRuntime",
    "CodeHash",
    "ConflictError",
    "Deregistration",
    "EgressDeniedError",
    "EgressPolicy",
    "Embedder",
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
    "Lock",
    "LockedPackage",
    "MissingDependencyError",
    "NetworkAccess",
    "NotFoundError",
    "OwnershipError",
    "Registration",
    "RegistrationError",
    "RequirementError",
    "RequirementsUnsupportedError",
    "SearchResult",
    "Settings",
    "SettingsError",
    "Severity",
    "StorageError",
    "TeamMembershipError",
    "Tool",
    "ToolDefinition",
    "ToolExample",
    "ToolMetrics",
    "ToolRuntime",
    "ToolRuntimeError",
    "ToolStatus",
    "ToolStatusReport",
    "ToolUpdate",
    "ToolUsage",
    "ToolVersion",
    "Tracer",
    "TrafficGuard",
    "TransientError",
    "Update",
    "ValidationError",
    "ValidationReport",
    "VersionMetrics",
    "Visibility",
    "connect",
    "__version__",
    "connect_async",
]
