"""Finding a tool by id or by name, as an agent refers to it, and parsing call parameters and weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from toolrt.domain import Tool, ValidationError

if TYPE_CHECKING:
    from toolrt.application import ToolRuntime


def resolve_tool(rt: ToolRuntime, agent_id: str, ref: str, *, include_inactive: bool = False) -> Tool:
    """The tool ``ref`` names for ``agent_id`` (see :meth:`ToolRuntime.resolve_tool`)."""
    return rt.resolve_tool(agent_id, ref, include_inactive=include_inactive)


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
            raise ValidationError(
                f"parameters are not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
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


def parse_weights(text: Sequence[str]) -> dict[int, int]:
    """``["1=90", "2=10"]`` as ``{1: 90, 2: 10}``; ValidationError otherwise."""
    weights: dict[int, int] = {}
    for item in text:
        version, sep, weight = str(item).partition("=")
        if not sep or not version.strip().isdigit() or not weight.strip().isdigit():
            raise ValidationError(f"a weight is VERSION=PERCENT, e.g. 2=10, got {item!r}")
        weights[int(version)] = int(weight)
    return weights
