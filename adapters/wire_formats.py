"""Model APIs' wire formats (OpenAI, Anthropic, MCP, OpenAPI): an agent's tools in the shapes those APIs
take, and their tool calls and results back; the :class:`~toolrt.ports.ToolFormats` adapter.

The names the tools are exported under are the application's (``toolrt.application.tool_names``):
they decide what an agent sees, so they follow the tenancy rules, not any one API.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from toolrt.domain import Tool, ValidationError
from toolrt.ports import ToolCall

__all__ = [
    "FORMATS",
    "ModelApiFormats",
    "drop_nulls",
    "parse_tool_call",
    "parse_tool_calls",
    "render_result",
    "render_schemas",
    "strict_schema",
]

FORMATS = ("openai", "openai-responses", "anthropic", "mcp", "openapi", "openapi-3.0")


def _openapi_30(schema: Any) -> Any:
    """JSON Schema 2020-12 as OpenAPI 3.0's dialect: nullable instead of null types, no $schema/const."""
    if isinstance(schema, list):
        return [_openapi_30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_30(v) for k, v in schema.items() if k not in ("$schema", "$id")}
    kind = out.get("type")
    if isinstance(kind, list):
        others = [t for t in kind if t != "null"]
        if "null" in kind:
            out["nullable"] = True
        if len(others) == 1:
            out["type"] = others[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": t} for t in others]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


# Keywords OpenAI's strict mode (Structured Outputs) does not accept in a function's parameters.
_NOT_STRICT = frozenset(
    {"patternProperties", "unevaluatedProperties", "propertyNames", "minProperties", "maxProperties"}
)
# Left out of the strict form: a default is the tool's own (the model sends null, dispatch drops it).
_DROPPED_IN_STRICT = frozenset({"default"})


def strict_schema(schema: Any) -> Any | None:
    """``schema`` as OpenAI's strict mode takes it, or None when strict mode cannot say the same.

    Every object lists all its properties as required and closes itself (``additionalProperties:
    false``); a property that was optional becomes nullable (its type also allows ``null``), and
    :func:`drop_nulls` removes the nulls the model sends for them before the tool is called, so the
    tool's own default applies (``default`` itself is left out). An object that accepts other
    properties (a free-form mapping) or a keyword strict mode lacks has no strict form.
    """
    if isinstance(schema, list):
        items = [strict_schema(s) for s in schema]
        return None if any(i is None for i in items) else items
    if not isinstance(schema, dict):
        return schema
    if _NOT_STRICT & schema.keys():
        return None
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED_IN_STRICT:
            continue
        if key in ("properties", "$defs", "definitions"):
            if not isinstance(value, dict):
                return None
            converted = {k: strict_schema(v) for k, v in value.items()}
            if any(v is None for v in converted.values()):
                return None
            out[key] = converted
        elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
            converted_value = strict_schema(value)
            if converted_value is None:
                return None
            out[key] = converted_value
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "object" or "properties" in out:
        if out.get("additionalProperties") not in (None, False):
            return None
        properties: dict[str, Any] = out.setdefault("properties", {})
        required = set(out.get("required", []))
        for name, child in properties.items():
            if name not in required:
                properties[name] = _nullable(child)
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]} if kind != "null" else schema
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def drop_nulls(schema: Any, value: Any) -> Any:
    """``value`` without the nulls a strict-mode model sends for optional properties that do not take
    null, at every depth of ``schema``, so that the tool's own defaults apply."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    required = set(schema.get("required", []))
    out = {}
    for key, item in value.items():
        child = properties.get(key)
        if item is None and key not in required and not _takes_null(child):
            continue
        out[key] = drop_nulls(child, item)
    return out


def _takes_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return True
    kind = schema.get("type")
    if kind is None:
        return not any(k in schema for k in ("properties", "items", "enum", "const"))
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def render_schemas(names: Mapping[str, Tool], fmt: str, *, title: str = "toolrt tools", strict: bool = False) -> Any:
    """The tools in ``names`` in the shape ``fmt`` (one of :data:`FORMATS`) expects; ``strict``
    (OpenAI formats) marks every tool whose schema has a strict form (:func:`strict_schema`) strict."""
    if fmt not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if strict and fmt not in ("openai", "openai-responses"):
        raise ValidationError(
            f"strict=True is OpenAI's strict mode: format 'openai' or 'openai-responses', got {fmt!r}"
        )
    entries: list[Any] = []
    for name, tool in names.items():
        definition = tool.current.definition
        schema = copy.deepcopy(dict(definition.input_schema))
        schema.pop("$schema", None)
        description = definition.description
        closed = strict_schema(schema) if strict else None
        if fmt == "openai":
            function: dict[str, Any] = {"name": name, "description": description, "parameters": closed or schema}
            if strict:
                function["strict"] = closed is not None
            entries.append({"type": "function", "function": function})
        elif fmt == "openai-responses":
            # The Responses API asks for "strict" explicitly; strict mode needs every schema closed.
            entries.append(
                {
                    "type": "function",
                    "name": name,
                    "description": description,
                    "parameters": closed or schema,
                    "strict": closed is not None,
                }
            )
        elif fmt == "anthropic":
            entries.append({"name": name, "description": description, "input_schema": schema})
        elif fmt == "mcp":
            entry: dict[str, Any] = {"name": name, "description": description, "inputSchema": schema}
            if definition.output_schema is not None:
                entry["outputSchema"] = copy.deepcopy(dict(definition.output_schema))
            entries.append(entry)
        else:
            entries.append((name, tool, schema))
    if not fmt.startswith("openapi"):
        return entries
    return _openapi(entries, fmt, title)


def _openapi(entries: list[Any], fmt: str, title: str) -> dict[str, Any]:
    convert = _openapi_30 if fmt == "openapi-3.0" else (lambda s: s)
    paths: dict[str, Any] = {}
    for name, tool, schema in entries:
        definition = tool.current.definition
        output = definition.output_schema if definition.output_schema is not None else {}
        paths[f"/tools/{name}"] = {
            "post": {
                "operationId": name,
                "summary": definition.description.splitlines()[0][:120] if definition.description else name,
                "description": definition.description,
                "requestBody": {"required": True, "content": {"application/json": {"schema": convert(schema)}}},
                "responses": {
                    "200": {
                        "description": "the tool's output",
                        "content": {"application/json": {"schema": convert(copy.deepcopy(dict(output)))}},
                    }
                },
            }
        }
    return {
        "openapi": "3.0.3" if fmt == "openapi-3.0" else "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
    }


def _as_mapping(call: Any) -> Mapping[str, Any]:
    if isinstance(call, Mapping):
        return call
    dump = getattr(call, "model_dump", None)  # the SDKs' pydantic models
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return data
    raise ValidationError(f"a tool call must be a mapping or an SDK tool-call object, got {type(call).__name__}")


def parse_tool_call(call: Any) -> ToolCall:
    """Read an OpenAI Chat Completions tool call, an OpenAI Responses function_call or an Anthropic tool_use."""
    data = _as_mapping(call)
    kind = data.get("type")
    if kind == "function" and isinstance(data.get("function"), Mapping):
        function = data["function"]
        return ToolCall(
            "openai", str(data.get("id", "")), str(function.get("name", "")), function.get("arguments", "{}")
        )
    if kind == "function_call":
        return ToolCall(
            "openai-responses", str(data.get("call_id", "")), str(data.get("name", "")), data.get("arguments", "{}")
        )
    if kind == "tool_use":
        return ToolCall("anthropic", str(data.get("id", "")), str(data.get("name", "")), data.get("input", {}))
    raise ValidationError(
        "not a tool call: expected an OpenAI tool call (type 'function'), a Responses function_call or an "
        f"Anthropic tool_use block, got type {kind!r}"
    )


def _is_single_call(data: Mapping[str, Any]) -> bool:
    return data.get("type") in ("function", "function_call", "tool_use")


def parse_tool_calls(message: Any) -> list[ToolCall] | None:
    """Every tool call of a whole model message, in order, or None when ``message`` is one tool call.

    Takes an OpenAI Chat Completions message (``tool_calls``; a ``ChatCompletion`` is read through
    its first choice), an OpenAI Responses response or its ``output`` items (the ``function_call``
    items), an Anthropic ``Message`` or its ``content`` blocks (the ``tool_use`` blocks), as SDK
    objects or dicts; items that are not tool calls (text, reasoning) are skipped. A message with no
    tool call gives an empty list; something that is no message and no tool call is a ValidationError.
    """
    if isinstance(message, (list, tuple)):
        items = [_as_mapping(item) for item in message]
    else:
        data = _as_mapping(message)
        if _is_single_call(data):
            return None
        if isinstance(data.get("choices"), list) and data["choices"]:  # a whole ChatCompletion
            data = _as_mapping(data["choices"][0].get("message") or {})
        if "tool_calls" in data and data.get("role", "assistant") == "assistant":
            items = [_as_mapping(item) for item in data.get("tool_calls") or []]
        elif isinstance(data.get("output"), list):
            items = [_as_mapping(item) for item in data["output"]]
        elif isinstance(data.get("content"), list) and data.get("role", "assistant") == "assistant":
            items = [_as_mapping(item) for item in data["content"]]
        else:
            raise ValidationError(
                "not a tool call: expected an OpenAI tool call (type 'function'), a Responses function_call, "
                "an Anthropic tool_use block, or a whole model message holding them (OpenAI tool_calls, "
                f"Responses output, Anthropic content), got {', '.join(sorted(map(str, data))) or 'an empty object'}"
            )
    return [parse_tool_call(item) for item in items if _is_single_call(item)]


def render_result(call: ToolCall, content: Any, *, error: bool) -> dict[str, Any]:
    """The message or block that carries a tool's result back to the model in the call's own shape."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if call.shape == "openai":
        return {"role": "tool", "tool_call_id": call.call_id, "content": text}
    if call.shape == "openai-responses":
        return {"type": "function_call_output", "call_id": call.call_id, "output": text}
    return {"type": "tool_result", "tool_use_id": call.call_id, "content": text, "is_error": error}


class ModelApiFormats:
    """The wire formats of OpenAI (Chat Completions and Responses), Anthropic, MCP and OpenAPI."""

    formats = FORMATS

    def render_schemas(self, names: Mapping[str, Tool], fmt: str, *, title: str, strict: bool = False) -> Any:
        """See :func:`render_schemas`."""
        return render_schemas(names, fmt, title=title, strict=strict)

    def parse_tool_calls(self, message: Any) -> list[ToolCall] | None:
        """See :func:`parse_tool_calls`."""
        return parse_tool_calls(message)

    def parse_tool_call(self, call: Any) -> ToolCall:
        """See :func:`parse_tool_call`."""
        return parse_tool_call(call)

    def drop_nulls(self, schema: Any, value: Any) -> Any:
        """See :func:`drop_nulls`."""
        return drop_nulls(schema, value)

    def render_result(self, call: ToolCall, content: Any, *, error: bool) -> dict[str, Any]:
        """See :func:`render_result`."""
        return render_result(call, content, error=error)
