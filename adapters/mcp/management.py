"""toolrt's own MCP tools: the full set, and the two a model sees by default (search_tools and manage_tools).

A model's tool list should hold the agent's tools, not a dozen of toolrt's. By default the server
lists two of its own: ``search_tools`` (read-only) and ``manage_tools``, whose ``action`` names what
to do (``call`` a tool by name, ``register``, ``update``, ``deregister``, ``versions``, ``test``,
``templates``, ``create_from_template``, ``rollback``, ``promote``, ``traffic``, ``metrics``); its
other fields are those of the full-set tool the action stands for, checked against that tool's
schema. The full set (``register_tool``, ``update_tool``, ...) is a server option, and its names are
answered in either mode. Every tool here carries MCP annotations (read-only, destructive,
idempotent, open world) so that a host can ask before a destructive one runs.
"""

from __future__ import annotations

from typing import Any

from toolrt.adapters.mcp import compat
from toolrt.application.duplicates import ON_DUPLICATE
from toolrt.domain import (
    VISIBILITY_SCHEMA,
    Finding,
    Severity,
    ValidationError,
    ValidationReport,
    definition_schema,
)

__all__ = [
    "ACTIONS",
    "ALL_NAMES",
    "FULL_NAMES",
    "MANAGE",
    "MANAGEMENT_MODES",
    "SCHEMAS",
    "SEARCH",
    "listed",
    "resolve",
]

SEARCH = "search_tools"
MANAGE = "manage_tools"
MANAGEMENT_MODES = ("compact", "full")

# A definition's fields as ToolDefinition describes them (toolrt.domain.definition_schema), and the
# visibility it is registered with: the same shape a tool file has.
_DEFINITION = definition_schema()
_DEFINITION_PROPERTIES: dict[str, Any] = {**_DEFINITION["properties"], "visibility": dict(VISIBILITY_SCHEMA)}
_TOOL_REF = {"type": "string", "description": "The tool's id, or its name as listed."}
_TOOL_VERSION = {
    "type": "object",
    "properties": {"tool": _TOOL_REF, "version": {"type": "integer", "minimum": 1}},
    "required": ["tool", "version"],
    "additionalProperties": False,
}

FULL_SET: tuple[dict[str, Any], ...] = (
    dict(
        name="register_tool",
        description="Register a new tool you own from its code and parameter schema. The new tool appears in the tool list.",
        inputSchema={
            "type": "object",
            "properties": {
                **_DEFINITION_PROPERTIES,
                "on_duplicate": {
                    "enum": list(ON_DUPLICATE),
                    "description": "When a tool you can see already does this: warn (default), create anyway, "
                    "reuse it instead, or error.",
                },
            },
            "required": _DEFINITION["required"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="update_tool",
        description="Give one of your tools a new version: pass the fields that change (code, description, schemas, limits, tags) and/or a visibility.",
        inputSchema={
            "type": "object",
            "properties": {"tool": _TOOL_REF, **_DEFINITION_PROPERTIES},
            "required": ["tool"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="deregister_tool",
        description="Withdraw one of your tools; purge also deletes its record and history.",
        inputSchema={
            "type": "object",
            "properties": {"tool": _TOOL_REF, "purge": {"type": "boolean", "default": False}},
            "required": ["tool"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="list_versions",
        description="List a tool's versions, oldest first, with the one in force.",
        inputSchema={
            "type": "object",
            "properties": {"tool": _TOOL_REF},
            "required": ["tool"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="test_tool",
        description="Run a tool's examples (its current version's, or the given version's) and report each.",
        inputSchema={
            "type": "object",
            "properties": {"tool": _TOOL_REF, "version": {"type": "integer", "minimum": 1}},
            "required": ["tool"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="search_tools",
        description=(
            "Find tools you can use by saying what they should do (e.g. 'convert miles to kilometres'). "
            "Results are best first, each with the name to call and its full input schema."
        ),
        inputSchema={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What the tool should do, in a few words."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Only tools with every tag."},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="call_tool",
        description="Call a tool found with search_tools: its name (or id) and its arguments.",
        inputSchema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The name search_tools gave, or the tool's id."},
                "arguments": {"type": "object", "description": "The tool's parameters.", "default": {}},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="list_templates",
        description="List the tool templates you can start from instead of writing code, with their placeholders.",
        inputSchema={"type": "object", "properties": {}, "additionalProperties": False},
    ),
    dict(
        name="create_from_template",
        description="Register a tool of your own from a template: its name and a value for each placeholder.",
        inputSchema={
            "type": "object",
            "properties": {
                "template": {"type": "string", "description": "The template's name (list_templates)."},
                "values": {"type": "object", "additionalProperties": {"type": "string"}},
                "visibility": dict(VISIBILITY_SCHEMA),
                "on_duplicate": {"enum": list(ON_DUPLICATE)},
            },
            "required": ["template", "values"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="rollback_tool",
        description="Put an earlier version of one of your tools back in force.",
        inputSchema=_TOOL_VERSION,
    ),
    dict(
        name="set_traffic",
        description='Route calls of one of your tools between its versions by weight, e.g. {"1": 90, "2": 10} '
        "(percentages summing to 100, the version in force among them; {} sends all to the version in force). "
        "guard_margin and guard_min_calls end the split if a candidate version fails more often.",
        inputSchema={
            "type": "object",
            "properties": {
                "tool": _TOOL_REF,
                "weights": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100},
                },
                "guard_margin": {"type": "number", "minimum": 0, "maximum": 1},
                "guard_min_calls": {"type": "integer", "minimum": 1},
            },
            "required": ["tool", "weights"],
            "additionalProperties": False,
        },
    ),
    dict(
        name="promote",
        description="Put a version of one of your tools in force and end any traffic split.",
        inputSchema=_TOOL_VERSION,
    ),
    dict(
        name="tool_metrics",
        description="Per-version calls, outcomes, error types and p50/p95 wall time of a tool you can see.",
        inputSchema={
            "type": "object",
            "properties": {"tool": _TOOL_REF},
            "required": ["tool"],
            "additionalProperties": False,
        },
    ),
)
FULL_NAMES = frozenset(t["name"] for t in FULL_SET)

# (readOnlyHint, destructiveHint, idempotentHint) of each tool; none reaches beyond toolrt (openWorldHint
# false) except calling a tool, whose code may.
_HINTS: dict[str, tuple[bool, bool, bool]] = {
    "register_tool": (False, False, False),
    "update_tool": (False, True, False),
    "deregister_tool": (False, True, True),
    "list_versions": (True, False, True),
    "test_tool": (False, False, True),
    "search_tools": (True, False, True),
    "call_tool": (False, True, False),
    "list_templates": (True, False, True),
    "create_from_template": (False, False, False),
    "rollback_tool": (False, True, True),
    "set_traffic": (False, True, True),
    "promote": (False, True, True),
    "tool_metrics": (True, False, True),
    MANAGE: (False, True, False),
}


def _annotations(name: str) -> dict[str, Any]:
    read_only, destructive, idempotent = _HINTS[name]
    return {
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": name in ("call_tool", MANAGE),
    }


# manage_tools' actions, harmless ones first, and the full-set tool each stands for.
ACTIONS: dict[str, str] = {
    "templates": "list_templates",
    "versions": "list_versions",
    "metrics": "tool_metrics",
    "call": "call_tool",
    "test": "test_tool",
    "register": "register_tool",
    "create_from_template": "create_from_template",
    "update": "update_tool",
    "rollback": "rollback_tool",
    "promote": "promote",
    "traffic": "set_traffic",
    "deregister": "deregister_tool",
}
_SCHEMAS = {t["name"]: t["inputSchema"] for t in FULL_SET}


def _manage_properties() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "action": {"enum": list(ACTIONS), "description": "What to do (see the tool's description)."},
        "tool": _TOOL_REF,
        "arguments": {"type": "object", "description": "call: the called tool's parameters.", "default": {}},
    }
    for action, full in ACTIONS.items():
        if action == "call":
            continue
        for key, schema in _SCHEMAS[full]["properties"].items():
            properties.setdefault(key, schema)
    return properties


MANAGE_TOOL: dict[str, Any] = dict(
    name=MANAGE,
    description=(
        "Manage your tools, or call any tool by name. 'action' says what to do, with these fields: "
        "call (tool, arguments): call a tool search_tools found; "
        "register (name, description, language, code; optional input_schema, visibility, ...): add a tool of yours; "
        "update (tool, the fields that change); deregister (tool, purge); versions (tool); test (tool, version); "
        "templates; create_from_template (template, values); rollback (tool, version); promote (tool, version); "
        "traffic (tool, weights); metrics (tool)."
    ),
    inputSchema={
        "type": "object",
        "properties": _manage_properties(),
        "required": ["action"],
        "additionalProperties": False,
    },
)
ALL_NAMES = FULL_NAMES | {MANAGE}
SCHEMAS: dict[str, dict[str, Any]] = {**_SCHEMAS, MANAGE: MANAGE_TOOL["inputSchema"]}


def listed(*, full: bool, searching: bool) -> list[compat.types.Tool]:
    """toolrt's own tools as the SDK's ``Tool``: search_tools and manage_tools, or (``full``) the full set,
    call_tool among them only while searching (then the caller's own tools are all that is listed)."""
    if full:
        chosen = [t for t in FULL_SET if searching or t["name"] != "call_tool"]
    else:
        chosen = [next(t for t in FULL_SET if t["name"] == SEARCH), MANAGE_TOOL]
    return [
        compat.tool(t["name"], t["description"], t["inputSchema"], annotations=_annotations(t["name"])) for t in chosen
    ]


def resolve(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The full-set tool a call stands for, and its arguments: manage_tools' action becomes the tool
    it names (``call``'s ``tool`` becomes call_tool's ``name``); any other name is itself."""
    if name != MANAGE:
        return name, arguments
    rest = dict(arguments)
    action = rest.pop("action", None)
    full = ACTIONS.get(action) if isinstance(action, str) else None
    if full is None:
        finding = Finding(
            "params.action",
            Severity.ERROR,
            f"action must be one of {', '.join(ACTIONS)}, got {action!r}",
            hint="pass 'action' with one of those values",
        )
        raise ValidationError(f"invalid params for {MANAGE}", ValidationReport((finding,)))
    if full == "call_tool":
        called = {"name": rest.pop("tool", None), "arguments": rest.pop("arguments", {})}
        if rest:
            raise ValidationError(
                f"invalid params for {MANAGE}: action 'call' takes 'tool' and 'arguments', not {', '.join(sorted(rest))}"
            )
        return full, {k: v for k, v in called.items() if v is not None}
    return full, rest
