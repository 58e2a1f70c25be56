"""DeregisterTool: unpublish a tool, deactivate or delete it, and free code nobody else uses."""

from __future__ import annotations

from typing import Any

import attrs

from toolrt.application._artifacts import release_if_unreferenced, visible_users
from toolrt.application._tools import owned_tool
from toolrt.domain import ArtifactDeleted, CodeHash, ToolDeregistered
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    Clock,
    CodeReferences,
    EventPublisher,
    MetricsSink,
    Teams,
    ToolGateway,
    ToolRecords,
)

log = get_logger(__name__)


@attrs.frozen
class DeregisterToolRequest:
    """The owner withdraws a tool; ``purge`` also deletes its record and history."""

    agent_id: str
    tool_id: str
    purge: bool = False


@attrs.frozen
class Deregistration:
    """What was done; ``problems`` lists the cleanup steps that failed (the rest still ran).

    ``deleted_artifacts``: the tool's code that no tool the agent can see uses any more. The store
    deletes code nobody uses; whether it keeps some for tools the agent cannot see is not said (that
    would tell the agent that another agent's private tool holds exactly that code).
    """

    tool_id: str
    purged: bool
    deleted_artifacts: tuple[CodeHash, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when every cleanup step succeeded."""
        return not self.problems


class DeregisterTool:
    """Deregister a tool.

    Business rules:
    - only the owner may deregister;
    - the tool is withdrawn from the gateway, then marked inactive (or deleted with ``purge``);
      an inactive tool references no artifact;
    - an artifact is deleted only when no other tool references it;
    - a failing step does not stop the others: each failure is reported in ``problems``;
    - deregistering an already inactive tool is allowed (it retries the cleanup; with ``purge`` it
      deletes the record).
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        references: CodeReferences,
        teams: Teams,
        artifacts: ArtifactStore,
        gateway: ToolGateway,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
    ) -> None:
        self._tools = tools
        self._references = references
        self._teams = teams
        self._artifacts = artifacts
        self._gateway = gateway
        self._clock = clock
        self._metrics = metrics
        self._events = events

    def execute(self, request: DeregisterToolRequest) -> Deregistration:
        tool = owned_tool(self._tools, self._teams, request.agent_id, request.tool_id, "deregister")
        bound = log.bind(agent_id=request.agent_id, tool_id=tool.tool_id)
        problems: list[str] = []
        now = self._clock.now()

        try:
            self._gateway.deregister(tool)
        except Exception as exc:
            problems.append(f"gateway deregistration failed: {exc}")

        try:
            if request.purge:
                self._tools.delete(tool.tool_id)
            elif tool.is_active or tool.gateway_ref is not None:
                self._tools.save(tool.deactivated(now))
        except Exception as exc:
            # The record still references its artifacts: deleting them now would strand it.
            problems.append(f"tool record update failed: {exc}")
            return self._finish(request, bound, problems, ())

        released: list[CodeHash] = []
        for code_hash in sorted(tool.code_hashes):
            try:
                if release_if_unreferenced(self._references, self._artifacts, code_hash):
                    self._events.publish(ArtifactDeleted(now, str(code_hash)))
                users = visible_users(
                    code_hash,
                    request.agent_id,
                    tools=self._tools,
                    references=self._references,
                    teams=self._teams,
                    limit=1,
                )
                if not users:
                    released.append(code_hash)
            except Exception as exc:
                problems.append(f"artifact {code_hash.short} cleanup failed: {exc}")
        return self._finish(request, bound, problems, tuple(released))

    def _finish(
        self,
        request: DeregisterToolRequest,
        bound: Any,
        problems: list[str],
        deleted: tuple[CodeHash, ...],
    ) -> Deregistration:
        now = self._clock.now()
        self._metrics.increment("deregistrations", outcome="clean" if not problems else "partial")
        self._events.publish(ToolDeregistered(now, request.tool_id, request.agent_id, request.purge, tuple(problems)))
        if problems:
            bound.warning("tool deregistered with problems", problems=problems)
        else:
            bound.info("tool deregistered", purged=request.purge, deleted_artifacts=len(deleted))
        return Deregistration(request.tool_id, request.purge, deleted, tuple(problems))
