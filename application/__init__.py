"""toolrt use cases and the ToolRuntime facade. Depends on the domain and the ports only.

The names are imported when first used (PEP 562): ``from toolrt.application.runtime import
ToolRuntime`` does not load the asyncio twin, the garbage collector or any other use case.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolrt.application.async_runtime import AsyncToolRuntime
    from toolrt.application.background_executions import BackgroundExecutions
    from toolrt.application.checks import check_params
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
    from toolrt.application.execute_tool import ExecuteTool, ExecuteToolRequest
    from toolrt.application.policy import ExecutionPolicy
    from toolrt.application.queries import GetToolStatus, ListTools, ListVersions, ToolStatusReport
    from toolrt.application.register_tool import RegisterTool, RegisterToolRequest, Registration
    from toolrt.application.register_tools import BatchItem, RegisterTools
    from toolrt.application.repair_store import RepairReport, RepairRequest, RepairStore
    from toolrt.application.rollback_tool import RollbackTool, RollbackToolRequest
    from toolrt.application.runtime import ExecutionPage, ToolRuntime
    from toolrt.application.runtime_ports import RuntimePorts
    from toolrt.application.search_tools import SearchResult, SearchTools
    from toolrt.application.services import RuntimeServices
    from toolrt.application.tool_templates import Placeholder, TemplateCatalog, ToolTemplate
    from toolrt.application.traffic import ToolMetrics, TrafficControl, VersionMetrics
    from toolrt.application.update_tool import ToolUpdate, Update, UpdateTool, UpdateToolRequest
    from toolrt.ports import ToolUsage

_SOURCES: dict[str, str] = {
    "AsyncToolRuntime": "toolrt.application.async_runtime",
    "BackgroundExecutions": "toolrt.application.background_executions",
    "CollectGarbage": "toolrt.application.collect_garbage",
    "CollectGarbageRequest": "toolrt.application.collect_garbage",
    "GarbageCollection": "toolrt.application.collect_garbage",
    "GarbageCollectionPolicy": "toolrt.application.collect_garbage",
    "PrunedTool": "toolrt.application.collect_garbage",
    "to_definition": "toolrt.application.definitions",
    "DeregisterTool": "toolrt.application.deregister_tool",
    "DeregisterToolRequest": "toolrt.application.deregister_tool",
    "Deregistration": "toolrt.application.deregister_tool",
    "ExampleResult": "toolrt.application.examples",
    "ExampleRunner": "toolrt.application.examples",
    "ExecuteTool": "toolrt.application.execute_tool",
    "ExecuteToolRequest": "toolrt.application.execute_tool",
    "check_params": "toolrt.application.checks",
    "ExecutionPolicy": "toolrt.application.policy",
    "GetToolStatus": "toolrt.application.queries",
    "ListTools": "toolrt.application.queries",
    "ListVersions": "toolrt.application.queries",
    "ToolStatusReport": "toolrt.application.queries",
    "RegisterTool": "toolrt.application.register_tool",
    "RegisterToolRequest": "toolrt.application.register_tool",
    "Registration": "toolrt.application.register_tool",
    "BatchItem": "toolrt.application.register_tools",
    "RegisterTools": "toolrt.application.register_tools",
    "RepairReport": "toolrt.application.repair_store",
    "RepairRequest": "toolrt.application.repair_store",
    "RepairStore": "toolrt.application.repair_store",
    "RollbackTool": "toolrt.application.rollback_tool",
    "RollbackToolRequest": "toolrt.application.rollback_tool",
    "ExecutionPage": "toolrt.application.runtime",
    "ToolRuntime": "toolrt.application.runtime",
    "RuntimePorts": "toolrt.application.runtime_ports",
    "RuntimeServices": "toolrt.application.services",
    "SearchResult": "toolrt.application.search_tools",
    "SearchTools": "toolrt.application.search_tools",
    "Placeholder": "toolrt.application.tool_templates",
    "TemplateCatalog": "toolrt.application.tool_templates",
    "ToolTemplate": "toolrt.application.tool_templates",
    "ToolMetrics": "toolrt.application.traffic",
    "TrafficControl": "toolrt.application.traffic",
    "VersionMetrics": "toolrt.application.traffic",
    "ToolUpdate": "toolrt.application.update_tool",
    "Update": "toolrt.application.update_tool",
    "UpdateTool": "toolrt.application.update_tool",
    "UpdateToolRequest": "toolrt.application.update_tool",
    "ToolUsage": "toolrt.ports",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'toolrt.application' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "RuntimeServices",
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
