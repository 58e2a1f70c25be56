"""The operations driving adapters offer on tools, each once: what it asks of the runtime and the
JSON view of its answer. The MCP server's management tools (and ``manage_tools``' actions) dispatch
from this table, and the CLI commands of the same names run the same entries, so a new operation
is one entry here plus its place in each surface (its MCP schema, its CLI options).

Arguments arrive as JSON-like data already checked against the operation's schema (MCP) or built
from options (CLI); a tool operation gets the tool the adapter resolved from the caller's reference
(how a name resolves differs: an MCP session's listed names, the CLI's ids and own names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from toolrt.adapters.views import (
    deregistration_view,
    metrics_view,
    registration_view,
    template_view,
    tool_view,
    update_view,
    version_view,
)
from toolrt.domain import Language, Tool, ValidationError, Visibility

if TYPE_CHECKING:  # the use cases load when an operation runs, not with the CLI
    from toolrt.application import ToolRuntime

__all__ = ["OPERATIONS", "Operation", "ToolOperation", "run_on_tool", "version_arg"]

View = dict[str, Any]


@attrs.frozen
class Operation:
    """An operation that names no existing tool: ``run(runtime, agent_id, args)`` gives its view."""

    run: Callable[[ToolRuntime, str, dict[str, Any]], View]


@attrs.frozen
class ToolOperation:
    """An operation on one tool: ``run(runtime, agent_id, tool, args)`` gives its view."""

    run: Callable[[ToolRuntime, str, Tool, dict[str, Any]], View]


def version_arg(args: Mapping[str, Any]) -> int:
    """The ``version`` argument, an integer (a JSON boolean is not one)."""
    version = args.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValidationError(f"version must be an integer, got {version!r}")
    return version


def _list_templates(rt: ToolRuntime, agent: str, args: dict[str, Any]) -> View:
    return {"templates": [template_view(t) for t in rt.list_templates()]}


def _create_from_template(rt: ToolRuntime, agent: str, args: dict[str, Any]) -> View:
    registration = rt.create_from_template(
        agent,
        str(args["template"]),
        dict(args["values"]),
        args.get("visibility") or Visibility.PRIVATE,
        on_duplicate=str(args.get("on_duplicate") or "warn"),
    )
    return registration_view(registration)


def _register_tool(rt: ToolRuntime, agent: str, args: dict[str, Any]) -> View:
    definition = dict(args)
    visibility = definition.pop("visibility", None) or Visibility.PRIVATE
    on_duplicate = str(definition.pop("on_duplicate", None) or "warn")
    return registration_view(rt.register_tool(agent, definition, visibility, on_duplicate=on_duplicate))


def _update_tool(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    changes = dict(args)
    visibility = changes.pop("visibility", None)
    definition = None
    if changes:
        merged = tool.definition.to_json()
        if "code" in changes and "input_schema" not in changes and tool.definition.language is Language.PYTHON:
            merged.pop("input_schema", None)  # new Python code: infer its schema afresh
        merged.update(changes)
        definition = merged
    return update_view(rt.update_tool(agent, tool.tool_id, definition, visibility))


def _deregister_tool(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    return deregistration_view(rt.deregister_tool(agent, tool.tool_id, args.get("purge") is True))


def _list_versions(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    history = rt.list_versions(tool.tool_id, agent)
    return {
        "tool_id": tool.tool_id,
        "name": tool.name,
        "current_version": tool.current_version,
        "versions": [version_view(v) | {"current": v.number == tool.current_version} for v in history],
    }


def _test_tool(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    results = rt.test_tool(agent, tool.tool_id, args.get("version"))
    return {
        "tool_id": tool.tool_id,
        "passed": all(r.passed for r in results),
        "examples": [{"index": r.index, "passed": r.passed, "detail": r.describe()} for r in results],
    }


def _rollback_tool(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    return tool_view(rt.rollback_tool(agent, tool.tool_id, version_arg(args)))


def _promote(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    return tool_view(rt.promote(agent, tool.tool_id, version_arg(args)))


def _set_traffic(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    weights = args["weights"]  # JSON keys are strings: TrafficSplit reads "2" as version 2
    guard = None
    if "guard_margin" in args or "guard_min_calls" in args:
        guard = {k.removeprefix("guard_"): args[k] for k in ("guard_margin", "guard_min_calls") if k in args}
    after = rt.set_traffic(agent, tool.tool_id, weights, guard=guard)
    split = {str(v): w for v, w in (after.traffic.weights if after.traffic else ())}
    return tool_view(after) | {"traffic": split, "traffic_note": after.traffic_note}


def _tool_metrics(rt: ToolRuntime, agent: str, tool: Tool, args: dict[str, Any]) -> View:
    return metrics_view(rt.tool_metrics(tool.tool_id, agent))


#: Every operation by the name the MCP server gives its tool (``manage_tools``' actions map to these).
OPERATIONS: Mapping[str, Operation | ToolOperation] = {
    "list_templates": Operation(_list_templates),
    "create_from_template": Operation(_create_from_template),
    "register_tool": Operation(_register_tool),
    "update_tool": ToolOperation(_update_tool),
    "deregister_tool": ToolOperation(_deregister_tool),
    "list_versions": ToolOperation(_list_versions),
    "test_tool": ToolOperation(_test_tool),
    "rollback_tool": ToolOperation(_rollback_tool),
    "promote": ToolOperation(_promote),
    "set_traffic": ToolOperation(_set_traffic),
    "tool_metrics": ToolOperation(_tool_metrics),
}


def run_on_tool(name: str, rt: ToolRuntime, agent_id: str, tool: Tool, args: dict[str, Any]) -> View:
    """Run the tool operation ``name`` (a key of :data:`OPERATIONS`) and give its view."""
    operation = OPERATIONS[name]
    if not isinstance(operation, ToolOperation):
        raise TypeError(f"{name} is no operation on a tool")
    return operation.run(rt, agent_id, tool, args)
