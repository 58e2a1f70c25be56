"""toolrt use cases and the ToolRuntime facade. Depends on the domain and the ports only."""

from toolrt.application.async_runtime import AsyncToolRuntime
from toolrt.application.background_executions import BackgroundExecutions
from toolrt.application.collect_garbage import (
    CollectGarbage,
    CollectGarbageRequest,
    GarbageCollection,
    GarbageCollectionPolicy,
    PrunedTool,
)
from toolrt.application.definitions import to_definition
from toolrt.application.deregister_tool import DeregisterTool, DeregisterToolRequest, Deregistration
from toolrt.application.examples import ExampleResult, ExampleRunner
from toolrt.application.execute_tool import ExecuteTool, ExecuteToolRequest, check_params
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.queries import GetToolStatus, ListTools, ListVersions, ToolStatusReport
from toolrt.application.register_tool import RegisterTool, RegisterToolRequest, Registration
from toolrt.application.register_tools import BatchItem, RegisterTools
from toolrt.application.repair_store import RepairReport, RepairRequest, RepairStore
from toolrt.application.rollback_tool import RollbackTool, RollbackToolRequest
from toolrt.application.runtime import ExecutionPage, ToolRuntime
from toolrt.application.runtime_ports import RuntimePorts
from toolrt.application.search_tools import SearchResult, SearchTools
from toolrt.application.tool_templates import Placeholder, TemplateCatalog, ToolTemplate
from toolrt.application.traffic import ToolMetrics, TrafficControl, VersionMetrics
from toolrt.application.update_tool import ToolUpdate, Update, UpdateTool, UpdateToolRequest
from toolrt.ports import ToolUsage

__all__ = [
    "AsyncToolRuntime",
    "BackgroundExecutions",
    "BatchItem",
    "CollectGarbage",
    "CollectGarbageRequest",
    "Deregistration",
    "DeregisterTool",
    "DeregisterToolRequest",
    "ExampleResult",
    "ExampleRunner",
    "ExecuteTool",
    "ExecuteToolRequest",
    "ExecutionPage",
    "ExecutionPolicy",
    "GarbageCollection",
    "GarbageCollectionPolicy",
    "GetToolStatus",
    "ListTools",
    "ListVersions",
    "Registration",
    "RegisterTool",
    "RegisterToolRequest",
    "RegisterTools",
    "PrunedTool",
    "RepairReport",
    "RepairRequest",
    "RepairStore",
    "Placeholder",
    "RollbackTool",
    "RollbackToolRequest",
    "RuntimePorts",
    "SearchResult",
    "ToolMetrics",
    "TrafficControl",
    "VersionMetrics",
    "SearchTools",
    "TemplateCatalog",
    "ToolRuntime",
    "ToolStatusReport",
    "ToolTemplate",
    "ToolUsage",
    "ToolUpdate",
    "Update",
    "UpdateTool",
    "UpdateToolRequest",
    "check_params",
    "to_definition",
]
