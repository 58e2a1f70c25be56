"""Shared steps of the use cases that change an existing tool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from toolrt.application.access import may_see
from toolrt.domain import NotFoundError, OwnershipError, RegistrationError, Tool, ToolRuntimeError
from toolrt.logs import get_logger
from toolrt.ports import AttributeValue, Clock, MetricsSink, Teams, ToolGateway, ToolRecords

log = get_logger(__name__)


@contextmanager
def refusals_counted(metrics: MetricsSink, bound: Any, counter: str, operation: str) -> Iterator[None]:
    """Count and log a toolrt error leaving the block: ``counter{outcome=failure}`` and
    ``errors{type, operation}``, then re-raise it."""
    try:
        yield
    except ToolRuntimeError as exc:
        metrics.increment(counter, outcome="failure")
        metrics.increment("errors", type=type(exc).__name__, operation=operation)
        bound.info(f"tool {operation} refused", error=str(exc), error_type=type(exc).__name__)
        raise


def tool_span_attributes(agent_id: str, tool_name: str, language: str) -> dict[str, AttributeValue]:
    """The attributes every span about one tool starts with (OpenTelemetry's GenAI names where
    they exist, ``toolrt.*`` otherwise)."""
    return {"toolrt.agent.id": agent_id, "gen_ai.tool.name": tool_name, "toolrt.tool.language": language}


def owned_tool(tools: ToolRecords, teams: Teams, agent_id: str, tool_id: str, action: str) -> Tool:
    """The tool, if ``agent_id`` owns it. Another agent's tool is OwnershipError when ``agent_id``
    may see it, and otherwise NotFoundError, the answer an unknown id gets: whether a private tool
    exists is no one else's to learn."""
    tool = tools.get(tool_id)
    if not tool.is_owned_by(agent_id):
        if not may_see(teams, tool, agent_id):
            raise NotFoundError("tool", tool_id)
        raise OwnershipError(agent_id, tool_id, action)
    return tool


def active_owned_tool(tools: ToolRecords, teams: Teams, agent_id: str, tool_id: str, action: str) -> Tool:
    """Like :func:`owned_tool`, and the tool must be active (NotFoundError otherwise)."""
    tool = owned_tool(tools, teams, agent_id, tool_id, action)
    if not tool.is_active:
        raise NotFoundError("active tool", tool_id)
    return tool


def save_and_sync(tools: ToolRecords, gateway: ToolGateway, clock: Clock, before: Tool, after: Tool) -> Tool:
    """Store ``after`` and publish it; if publishing fails, put ``before``'s content back in force
    and raise RegistrationError.

    A gateway that no longer knows the tool (an in-process registry after a restart, a target
    deleted out of band) gets it published again, and the new reference is stored.

    Returns the stored tool. The restoring save keeps the record version moving forward, so a
    concurrent reader never sees an older record version again.
    """
    tools.save(after)
    if after.gateway_ref is None:
        return after
    try:
        try:
            gateway.update(after)
        except NotFoundError:
            log.info("tool missing from the gateway: publishing it again", tool_id=after.tool_id)
            republished = after.with_gateway_ref(gateway.register(after), clock.now())
            try:
                tools.save(republished)
            except Exception:
                gateway.deregister(republished)  # the record will say the old version: so must the gateway
                raise
            return republished
    except Exception as failure:
        try:
            stored = tools.get(after.tool_id).record_version
            tools.save(attrs.evolve(before, updated_at=clock.now(), record_version=stored + 1))
        except Exception as exc:
            log.error("restoring the previous version failed", tool_id=after.tool_id, error=str(exc))
        error = RegistrationError(
            f"publishing the change to tool {before.name!r} failed; version {before.current_version} "
            f"stays in force: {failure}",
            tool_name=before.name,
            step="gateway.update",
            retryable=bool(getattr(failure, "retryable", False)),
        )
        raise error from failure
    return after
