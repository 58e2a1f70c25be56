"""Driven ports: the Protocols the toolrt core needs from the outside world."""

from toolrt.ports.artifacts import ArtifactStore, TempFileKeeper
from toolrt.ports.embedder import Embedder
from toolrt.ports.environments import EnvironmentBuilder, EnvironmentInfo, ProgressCallback, PruneReport
from toolrt.ports.fleet import (
    CountBook,
    ExecutionSummary,
    MinuteCount,
    StoredCount,
    ToolActivity,
    ToolCensus,
    census_of,
    summarize_executions,
)
from toolrt.ports.gateway import GatewayHealth, ToolGateway
from toolrt.ports.metrics import EventPublisher, MetricsSink
from toolrt.ports.repository import (
    ExecutionOutcome,
    ExecutionQuery,
    SearchHit,
    SearchQuery,
    TeamBook,
    ToolQuery,
    ToolRepository,
    ToolUsage,
    count_usage,
    newest_first,
    outcomes_of,
)
from toolrt.ports.sandbox import CancelSignal, OutputCallback, Sandbox, SandboxRequest, SandboxResult
from toolrt.ports.system import Clock, IdGenerator
from toolrt.ports.telemetry import AttributeValue, NoTracer, Span, Tracer
from toolrt.ports.validator import CodeValidator

__all__ = [
    "AttributeValue",
    "ArtifactStore",
    "CancelSignal",
    "Clock",
    "CodeValidator",
    "Embedder",
    "EnvironmentBuilder",
    "EnvironmentInfo",
    "ProgressCallback",
    "PruneReport",
    "EventPublisher",
    "CountBook",
    "ExecutionOutcome",
    "ExecutionSummary",
    "MinuteCount",
    "StoredCount",
    "ToolActivity",
    "ToolCensus",
    "census_of",
    "summarize_executions",
    "ExecutionQuery",
    "GatewayHealth",
    "IdGenerator",
    "NoTracer",
    "MetricsSink",
    "OutputCallback",
    "Sandbox",
    "SandboxRequest",
    "SandboxResult",
    "SearchHit",
    "SearchQuery",
    "Span",
    "TempFileKeeper",
    "ToolGateway",
    "ToolQuery",
    "TeamBook",
    "ToolRepository",
    "Tracer",
    "ToolUsage",
    "count_usage",
    "outcomes_of",
    "newest_first",
]
