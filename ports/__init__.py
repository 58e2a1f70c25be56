"""Driven ports: the Protocols the toolrt core needs from the outside world."""

from toolrt.ports.artifacts import ArtifactStore, TempFileKeeper
from toolrt.ports.code_references import CodeReferences
from toolrt.ports.counters import Counters, StoredCount
from toolrt.ports.embedder import Embedder
from toolrt.ports.environments import EnvironmentBuilder, EnvironmentInfo, ProgressCallback, PruneReport
from toolrt.ports.execution_log import ExecutionLog, ExecutionOutcome, ExecutionQuery, ToolUsage
from toolrt.ports.fleet import ExecutionSummary, MinuteCount, ToolActivity, ToolCensus
from toolrt.ports.gateway import GatewayHealth, ToolGateway
from toolrt.ports.metrics import EventPublisher, MetricsSink
from toolrt.ports.repository import ToolRepository
from toolrt.ports.sandbox import CancelSignal, OutputCallback, Sandbox, SandboxRequest, SandboxResult
from toolrt.ports.search_index import SearchHit, SearchIndex, SearchQuery
from toolrt.ports.system import Clock, IdGenerator
from toolrt.ports.teams import Teams
from toolrt.ports.telemetry import AttributeValue, NoTracer, Span, Tracer
from toolrt.ports.tool_formats import ToolCall, ToolFormats
from toolrt.ports.tool_records import ToolQuery, ToolRecords
from toolrt.ports.validator import CodeValidator

__all__ = [
    "AttributeValue",
    "ArtifactStore",
    "CodeReferences",
    "Counters",
    "ExecutionLog",
    "SearchIndex",
    "Teams",
    "ToolRecords",
    "CancelSignal",
    "Clock",
    "CodeValidator",
    "Embedder",
    "EnvironmentBuilder",
    "EnvironmentInfo",
    "ProgressCallback",
    "PruneReport",
    "EventPublisher",
    "ExecutionOutcome",
    "ExecutionSummary",
    "MinuteCount",
    "StoredCount",
    "ToolActivity",
    "ToolCensus",
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
    "ToolCall",
    "ToolFormats",
    "ToolGateway",
    "ToolQuery",
    "ToolRepository",
    "Tracer",
    "ToolUsage",
]
