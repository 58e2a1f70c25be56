"""Finding a tool by id or by name, as an agent refers to it, and parsing call parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from toolrt.application import ToolRuntime
from toolrt.domain import NotFoundError, Tool, ToolStatus, ValidationError


def resolve_tool(rt: ToolRuntime, agent_id: str, ref: str, *, include_inactive: bool = False) -> Tool:
    """The tool ``ref`` names for ``agent_id``: a tool id, else a name (the agent's own tool first).

    An ambiguous name (several public tools of other agents) raises ValidationError listing the ids.
    """
    try:
        tool = rt.get_tool(ref)
    except NotFoundError:
        pass
    else:
        if tool.can_discover(agent_id) or tool.can_execute(agent_id):
            return tool
        raise NotFoundError("tool", ref)
    status = None if include_inactive else ToolStatus.ACTIVE
    own = [t for t in rt.list_tools(owner=agent_id, name=ref, status=status) if t.name == ref]
    if own:
        # With inactive ones included, the active tool (or the newest) is the one meant.
        return sorted(own, key=lambda t: (t.is_active, t.updated_at))[-1]
    visible = [t for t in rt.list_tools(agent_id, name=ref, status=status) if t.name == ref]
    if len(visible) == 1:
        return visible[0]
    if not visible:
        raise NotFoundError("tool", ref)
    ids = ", ".join(f"{t.tool_id} (owner {t.owner})" for t in visible)
    raise ValidationError(f"the name {ref!r} matches {len(visible)} tools: {ids}; pass a tool id")


def parse_params(args: Sequence[str]) -> dict[str, Any]:
    """Call parameters from one JSON object, or from ``key=value`` pairs.

    A value is parsed as JSON when it parses (``n=3`` gives a number, ``flag=true`` a boolean,
    ``xs=[1,2]`` a list) and kept as a string otherwise (``name=Ada``).
    """
    if not args:
        return {}
    if len(args) == 1 and args[0].lstrip().startswith("{"):
        try:
            params = json.loads(args[0])
        except json.JSONDecodeError as exc:
            raise ValidationError(f"parameters are not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(params, dict):
            raise ValidationError(f"parameters must be a JSON object, got {type(params).__name__}")
        return params
    params = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        if not sep or not key:
            raise ValidationError(f"parameter {arg!r} is not key=value (or pass one JSON object)")
        if key in params:
            raise ValidationError(f"parameter {key!r} given twice")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params
