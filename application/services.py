"""RuntimeServices: the use cases a ToolRuntime delegates to, built once by the composition root.

The facade builds nothing: ``toolrt.services.ServicesContainer`` builds each use case with the
ports it needs (by keyword) and hands them over in this one value. A use case shared by others
(the example runner, the traffic control) is the same instance everywhere.
"""

from __future__ import annotations

import attrs

from toolrt.application.background_executions import BackgroundExecutions
from toolrt.application.collect_garbage import CollectGarbage, GarbageCollectionPolicy
from toolrt.application.deregister_tool import DeregisterTool
from toolrt.application.event_bus import EventBus
from toolrt.application.examples import ExampleRunner
from toolrt.application.execute_tool import ExecuteTool
from toolrt.application.fleet_metrics import ReadFleetMetrics, StoredCounters
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.queries import GetToolStatus, ListTools, ListVersions
from toolrt.application.register_tool import RegisterTool
from toolrt.application.register_tools import RegisterTools
from toolrt.application.repair_store import RepairStore
from toolrt.application.requirements import Requirements
from toolrt.application.rollback_tool import RollbackTool
from toolrt.application.runtime_ports import RuntimePorts
from toolrt.application.search_tools import SearchTools
from toolrt.application.tool_templates import TemplateCatalog
from toolrt.application.traffic import TrafficControl
from toolrt.application.update_tool import UpdateTool

__all__ = ["RuntimeServices"]


@attrs.frozen(kw_only=True)
class RuntimeServices:
    """Every use case of one runtime, with the ports and policies they were built on."""

    ports: RuntimePorts
    policy: ExecutionPolicy
    gc_policy: GarbageCollectionPolicy
    #: The profile's name (``memory``, ``local``, ``aws``, or ``custom`` for a runtime built from ports).
    profile: str
    #: Metrics that also count into the store (what no execution record holds).
    counters: StoredCounters
    #: Events to the event publisher port and to ``ToolRuntime.subscribe`` handlers.
    events: EventBus
    requirements: Requirements
    templates: TemplateCatalog
    examples: ExampleRunner
    search: SearchTools
    register: RegisterTool
    register_many: RegisterTools
    update: UpdateTool
    deregister: DeregisterTool
    rollback: RollbackTool
    traffic: TrafficControl
    execute: ExecuteTool
    background: BackgroundExecutions
    status: GetToolStatus
    list: ListTools
    versions: ListVersions
    collect_garbage: CollectGarbage
    fleet: ReadFleetMetrics
    repair: RepairStore
