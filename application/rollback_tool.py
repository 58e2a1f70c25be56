"""RollbackTool: put an earlier version of a tool back in force."""

from __future__ import annotations

from typing import Any

import attrs

from toolrt.application._tools import active_owned_tool, refusals_counted, save_and_sync
from toolrt.domain import NotFoundError, Tool, ToolRolledBack
from toolrt.logs import get_logger
from toolrt.ports import ArtifactStore, Clock, EventPublisher, MetricsSink, Teams, ToolGateway, ToolRecords

log = get_logger(__name__)


@attrs.frozen
class RollbackToolRequest:
    """The owner asks for ``version`` to be in force again."""

    agent_id: str
    tool_id: str
    version: int


class RollbackTool:
    """Roll a tool back.

    Business rules:
    - only the owner may roll back, and only an active tool;
    - the version must exist and its artifact must still be stored (an active tool keeps every
      version's artifact alive, so a missing one means a damaged store: NotFoundError);
    - the history is kept: rolling back moves the pointer, and a later update becomes the next
      number after the highest version;
    - the gateway is told; if that fails, the version in force before stays in force.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        teams: Teams,
        artifacts: ArtifactStore,
        gateway: ToolGateway,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
    ) -> None:
        self._tools = tools
        self._teams = teams
        self._artifacts = artifacts
        self._gateway = gateway
        self._clock = clock
        self._metrics = metrics
        self._events = events

    def execute(self, request: RollbackToolRequest) -> Tool:
        bound = log.bind(agent_id=request.agent_id, tool_id=request.tool_id)
        with refusals_counted(self._metrics, bound, "rollbacks", "rollback"):
            return self._rollback(request, bound)

    def _rollback(self, request: RollbackToolRequest, bound: Any) -> Tool:
        before = active_owned_tool(self._tools, self._teams, request.agent_id, request.tool_id, "roll back")
        target = before.version(request.version)
        if before.current_version == target.number:
            return before
        if self._artifacts.get(target.code_hash) is None:
            raise NotFoundError("artifact", f"{target.code_hash} (version {target.number} of {before.tool_id})")
        now = self._clock.now()
        stored = save_and_sync(self._tools, self._gateway, self._clock, before, before.with_current(target.number, now))
        self._metrics.increment("rollbacks", outcome="success")
        self._events.publish(ToolRolledBack(now, before.tool_id, request.agent_id, target.number))
        bound.info("tool rolled back", version=target.number)
        return stored
