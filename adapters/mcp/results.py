"""What a tool call answers over MCP: the tool's value, once, and its printed output beside it.

- A value is ``structuredContent`` (an object as it is; anything else as ``{"result": value}``) and one
  text block with the value (a string as itself, anything else as JSON). Frameworks read one or the
  other: both say the same, and neither holds anything else.
- A declared output schema is listed as it is when it describes an object, else wrapped the same
  way (``{"result": <schema>}``), so that ``structuredContent`` always matches the listed schema.
- What the tool printed goes in the result's ``_meta`` (``toolrt/stdout``, ``toolrt/stderr``), never in a
  second content block; ``printed="text"`` (a server option) appends it to the text block instead.
- A failed call is one text block (``isError``) with the error, the tool's own traceback, and what it
  printed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from toolrt.adapters.mcp import compat
from toolrt.adapters.mcp.compat import types
from toolrt.adapters.views import jsonable
from toolrt.domain import Execution, Tool

__all__ = [
    "PRINTED_MODES",
    "STDERR_KEY",
    "STDOUT_KEY",
    "error_result",
    "execution_result",
    "output_schema",
    "value_result",
]

STDOUT_KEY = "toolrt/stdout"
STDERR_KEY = "toolrt/stderr"
PRINTED_MODES = ("meta", "text")
# The most of a stream a result carries (its end: the last lines are the telling ones).
STDOUT_CHARS = 4000
STDERR_CHARS = 2000


def output_schema(tool: Tool) -> dict[str, Any] | None:
    """The output schema listed for ``tool``: its declared one, wrapped as ``{"result": ...}`` unless it is an object."""
    declared = tool.definition.output_schema
    if not isinstance(declared, Mapping):
        return None
    if declared.get("type") == "object":
        return dict(declared)
    return {"type": "object", "properties": {"result": dict(declared)}, "required": ["result"]}


def _structured(value: Any, tool: Tool | None) -> dict[str, Any]:
    declared = tool.definition.output_schema if tool is not None else None
    object_schema = declared is None or (isinstance(declared, Mapping) and declared.get("type") == "object")
    if isinstance(value, dict) and object_schema:
        return value
    return {"result": value}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def value_result(data: Any, tool: Tool | None = None) -> types.CallToolResult:
    """The result of a call that returned ``data``: one text block and ``structuredContent``."""
    value = jsonable(data)
    return compat.call_result([compat.text(_text(value))], structured=_structured(value, tool))


def error_result(message: str, meta: Mapping[str, Any] | None = None) -> types.CallToolResult:
    """An error result: one text block the model reads."""
    return compat.call_result([compat.text(message)], is_error=True, meta=meta)


def execution_result(execution: Execution, name: str, tool: Tool, printed: str = "meta") -> types.CallToolResult:
    """The result of running ``tool`` (listed as ``name``): its value, or what went wrong."""
    stdout = execution.stdout[-STDOUT_CHARS:] if execution.stdout else ""
    stderr = execution.stderr[-STDERR_CHARS:] if execution.stderr else ""
    meta = {key: text for key, text in ((STDOUT_KEY, stdout), (STDERR_KEY, stderr)) if text}
    if not execution.ok:
        error = execution.error
        reason = f"{error.type}: {error.message}" if error else "no detail"
        text = f"tool {name!r} {execution.status.value}: {reason}"
        if error is not None and error.traceback:
            text += f"\n{error.traceback.rstrip()}"  # the tool's own frames, with their line numbers
        if stderr:
            text += f"\nstderr:\n{stderr}"
        if stdout:
            text += f"\nprinted:\n{stdout}"
        return error_result(text, meta)
    value = jsonable(execution.output)
    text = _text(value)
    if printed == "text" and stdout:
        text += f"\n\nprinted:\n{stdout}"
    return compat.call_result([compat.text(text)], structured=_structured(value, tool), meta=meta)
