"""The tool-formats port: an agent's tools in a model API's shape, and that API's tool calls back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from toolrt.domain import Tool


@attrs.frozen
class ToolCall:
    """A model's request to call a tool: the API shape it came in (``openai``, ``openai-responses``,
    ``anthropic``), its call id, the exported tool name, and its arguments (JSON text or an object)."""

    shape: str
    call_id: str
    name: str
    arguments: Any


@runtime_checkable
class ToolFormats(Protocol):
    """The wire formats ``ToolRuntime.tool_schemas`` and ``ToolRuntime.dispatch`` speak.

    Shipped: ``toolrt.adapters.wire_formats.ModelApiFormats`` (OpenAI, Anthropic, MCP, OpenAPI).
    What reaches an agent (which tools, under which names) is decided before these are called.
    """

    def render_schemas(self, names: Mapping[str, Tool], fmt: str, *, title: str, strict: bool = False) -> Any:
        """The tools in ``names`` (exported name to tool) in the shape format ``fmt`` takes;
        ValidationError for an unknown format or a ``strict`` it has no form of."""

    def parse_tool_calls(self, message: Any) -> list[ToolCall] | None:
        """Every tool call of a whole model message in order, or None when ``message`` is one call;
        ValidationError when it is neither."""

    def parse_tool_call(self, call: Any) -> ToolCall:
        """One tool call; ValidationError when ``call`` is none."""

    def drop_nulls(self, schema: Any, value: Any) -> Any:
        """``value`` without the nulls a strict export made a model send for optional parameters."""

    def render_result(self, call: ToolCall, content: Any, *, error: bool) -> dict[str, Any]:
        """The message or block that carries ``content`` back to the model in the call's own shape."""
