"""An AgentCore Gateway ToolGateway: tools share MCP Lambda targets, many per target, within AgentCore's quotas.

A gateway holds at most 100 targets by default, so toolrt does not make a target per tool: tools are
packed into shard targets named ``s0``, ``s1``, ... (up to ``tools_per_target`` tools and
``max_payload_bytes`` of inline schema each), all served by the Lambda router. Agents see a tool as
``{shard}___{code}_{name}``, at most 64 characters (what Bedrock Converse and OpenAI accept): the code
is a short reversible form of the tool id (:func:`tool_code`), so the router maps a call back to the
tool without a lookup, and the tool's name is cut to the room left.

A shard's inline schema is replaced as a whole by ``UpdateGatewayTarget``: every change reads the
target afresh, writes the whole list back, waits for ``READY`` and checks that its change is there
(writing again if a concurrent writer's list replaced it). Changes to one shard made at the same time
in this process go out in one write (group commit), and :meth:`AgentCoreGateway.register_many` packs
a batch into as few writes as the shards allow. Target operations respect AgentCore's quotas
(:class:`TargetQuota`: five in flight per gateway, five requests a second); throttled calls are
retried by botocore (``adaptive`` mode on the control-plane client, see
:mod:`~toolrt.adapters.aws.clients`). Also :func:`to_openapi`, the OpenAPI 3.0 form of a tool.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, translate
from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT
from toolrt.adapters.aws.leases import Leases, ProcessLeases
from toolrt.domain import NotFoundError, RegistrationError, Tool, ToolDefinition, ToolRuntimeError
from toolrt.logs import get_logger
from toolrt.ports import GatewayHealth

log = get_logger(__name__)

BACKEND = "agentcore-gateway"
TOOL_NAME_DELIMITER = "___"
# Between a tool's code and its name: never part of a code (see tool_code).
CODE_DELIMITER = "_"
# Bedrock Converse, OpenAI and most MCP hosts accept tool names of at most 64 characters.
MAX_TOOL_NAME = 64
MAX_TARGET_DESCRIPTION = 200
# AgentCore's default quotas: targets per gateway, target operations in flight, requests a second.
DEFAULT_MAX_TARGETS = 100
DEFAULT_CONCURRENT_TARGET_OPERATIONS = 5
DEFAULT_TARGET_REQUESTS_PER_S = 5.0
# How much one shard holds. 128 tools on each of 100 targets: 12,800 tools per gateway.
DEFAULT_TOOLS_PER_TARGET = 128
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024
# Shards are s0 ... s999: the longest shard name leaves the same room for every tool's name.
_SHARD = re.compile(r"^s(0|[1-9][0-9]{0,2})\Z")
_MAX_SHARD_NAME = 4
_TARGET_NAME = re.compile(r"^[0-9a-zA-Z](-?[0-9a-zA-Z])*-?\Z")
_UUID_ID = re.compile(r"^tool-([0-9a-f]{32})\Z")
# Code forms, told apart by their first characters: "u" + 26 base32 letters (an id toolrt generated:
# "tool-" and 32 hex digits), "r-" + the id itself, "x0" + the id's UTF-8 in hex. None holds "_".
_UUID_PREFIX, _RAW_PREFIX, _ENCODED_PREFIX = "u", "r-", "x0"
# The longest code that still leaves a readable tool name (21 characters) within 64.
_MAX_CODE = MAX_TOOL_NAME - _MAX_SHARD_NAME - len(TOOL_NAME_DELIMITER) - len(CODE_DELIMITER) - 21
_SCHEMA_TYPES = ("string", "number", "object", "array", "boolean", "integer")
_HEALTHY_STATES = ("READY", "UPDATING")
# Target states: asynchronous create and update end in one of these.
_SERVING_TARGET_STATES = frozenset({"READY", "UPDATING", "SYNCHRONIZING"})
_FAILED_TARGET_STATES = frozenset({"FAILED", "UPDATE_UNSUCCESSFUL", "SYNCHRONIZE_UNSUCCESSFUL"})
_COUNT = re.compile(r"\((\d+) tools?\)")
# The reserved argument every published tool declares (the router's identity channel).
_IDENTITY_PROPERTY = {"type": "string", "description": "Set by the gateway; leave it out."}


def tool_code(tool_id: str) -> str:
    """The short, reversible code of ``tool_id`` in gateway tool names (see :func:`tool_id_of_code`).

    Ids toolrt generates (``tool-`` and 32 hex digits) become ``u`` and 26 base32 letters, so that
    the name agents see keeps 29 characters for the tool's own name.
    """
    uuid_form = _UUID_ID.match(tool_id)
    if uuid_form:
        return _UUID_PREFIX + base64.b32encode(bytes.fromhex(uuid_form.group(1))).decode("ascii").rstrip("=").lower()
    raw = _RAW_PREFIX + tool_id
    if _TARGET_NAME.match(raw) and len(raw) <= _MAX_CODE:
        return raw
    encoded = _ENCODED_PREFIX + tool_id.encode("utf-8").hex()
    if len(encoded) > _MAX_CODE:
        raise RegistrationError(
            f"tool id {tool_id!r} is too long to publish on the gateway (at most {_MAX_CODE - 2} "
            f"characters of letters, digits and single hyphens, or {(_MAX_CODE - 2) // 2} bytes otherwise); "
            "ids toolrt generates always fit",
            step="gateway",
        )
    return encoded


def tool_id_of_code(code: str) -> str:
    """The tool id a code stands for."""
    try:
        if code.startswith(_ENCODED_PREFIX):
            return bytes.fromhex(code[len(_ENCODED_PREFIX) :]).decode("utf-8")
        if code.startswith(_RAW_PREFIX) and len(code) > len(_RAW_PREFIX):
            return code[len(_RAW_PREFIX) :]
        if code.startswith(_UUID_PREFIX) and len(code) == 27:
            return f"tool-{base64.b32decode(code[1:].upper() + '======').hex()}"
    except ValueError:
        pass
    raise NotFoundError("gateway tool code", code)


def is_shard(target_name: str) -> bool:
    """Whether ``target_name`` is one of toolrt's shard targets (``s0`` ... ``s999``)."""
    return bool(_SHARD.match(target_name))


def published_name(tool: Tool) -> str:
    """The tool's own name as the gateway lists it: cut so that the full name fits in 64 characters."""
    room = MAX_TOOL_NAME - _MAX_SHARD_NAME - len(TOOL_NAME_DELIMITER) - len(tool_code(tool.tool_id)) - 1
    return tool.name[:room]


def inline_tool_name(tool: Tool) -> str:
    """The tool's name inside its shard's inline schema: ``{code}_{name}``."""
    return f"{tool_code(tool.tool_id)}{CODE_DELIMITER}{published_name(tool)}"


def gateway_tool_name(target: str, tool: Tool) -> str:
    """The name agents see for ``tool`` in shard ``target``: ``{target}___{code}_{name}`` (at most 64)."""
    return f"{target}{TOOL_NAME_DELIMITER}{inline_tool_name(tool)}"


def split_gateway_tool_name(name: str) -> tuple[str, str]:
    """``(tool_id, published name)`` from a ``{target}___{code}_{name}`` gateway tool name."""
    target, sep, rest = name.partition(TOOL_NAME_DELIMITER)
    code, sep2, tool = rest.partition(CODE_DELIMITER)
    if not sep or not sep2 or not target or not code or not tool:
        raise NotFoundError("gateway tool", name)
    return tool_id_of_code(code), tool


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _branches(schema: dict[str, Any]) -> list[Any]:
    return [b for key in ("anyOf", "oneOf") for b in schema.get(key) or [] if isinstance(b, dict)]


def _types_of(schema: Any) -> list[str]:
    """Every JSON type ``schema`` admits, in order (``null`` included), from type, const, enum or branches."""
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if "const" in schema:
        return ["null" if schema["const"] is None else _json_type(schema["const"])]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        found = ["null" if v is None else _json_type(v) for v in schema["enum"]]
        if "number" in found and "integer" in found:
            found = [("number" if t == "integer" else t) for t in found]
        return list(dict.fromkeys(found))
    types: list[str] = []
    for branch in _branches(schema):
        types.extend(t for t in _types_of(branch) if t not in types)
    if not types:
        types = ["object"] if "properties" in schema else ["array"] if "items" in schema else []
    return types


def to_schema_definition(schema: Any) -> dict[str, Any]:
    """A JSON Schema in the gateway's ``SchemaDefinition`` form (type, properties, required, items).

    The gateway's inline schema knows six types and no other keywords; the rest (enums, bounds,
    formats, nullability, alternatives) is summarized into ``description`` so that the model still
    sees it. The type comes from ``type``, else ``const``/``enum`` values (a numeric enum is a
    number), else the ``anyOf``/``oneOf`` branches; a union keeps its first concrete type and names
    the others. An object branch of a union lends its properties.
    """
    if not isinstance(schema, dict):
        return {"type": "string"}
    types = _types_of(schema)
    concrete = [t for t in types if t in _SCHEMA_TYPES]
    kind = concrete[0] if concrete else "string"
    result: dict[str, Any] = {"type": kind}
    notes = [str(schema["description"])] if schema.get("description") else []
    if len(concrete) > 1:
        notes.append("one of types: " + ", ".join(concrete))
    if "null" in types:
        notes.append("may be null")
    for keyword in (
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
        "format",
        "default",
    ):
        if keyword in schema:
            notes.append(f"{keyword}: {schema[keyword]!r}")
    if notes:
        result["description"] = "; ".join(notes)
    source = schema
    if kind == "object" and "properties" not in schema:
        source = next((b for b in _branches(schema) if "object" in _types_of(b)), schema)
    if kind == "array" and "items" not in schema:
        source = next((b for b in _branches(schema) if "array" in _types_of(b)), schema)
    if kind == "object":
        props = source.get("properties") or {}
        result["properties"] = {str(k): to_schema_definition(v) for k, v in props.items()}
        required = [str(r) for r in source.get("required") or [] if r in props]
        if required:
            result["required"] = required
    if kind == "array":
        result["items"] = to_schema_definition(source.get("items", {}))
    return result


def to_openapi(tool: Tool, *, server_url: str = "https://example.invalid") -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``tool``: one ``POST /tools/{name}`` whose body is its parameters."""
    definition = tool.definition
    operation: dict[str, Any] = {
        "operationId": tool.name,
        "summary": definition.description.splitlines()[0] if definition.description else tool.name,
        "description": definition.description,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _openapi_schema(definition.input_schema)}},
        },
        "responses": {
            "200": {
                "description": "The tool's result",
                "content": {"application/json": {"schema": _openapi_schema(definition.output_schema or {})}},
            },
            "400": {"description": "The parameters do not match the input schema"},
        },
    }
    if definition.tags:
        operation["tags"] = list(definition.tags)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": tool.name,
            "description": definition.description,
            "version": str(tool.current_version),
        },
        "servers": [{"url": server_url}],
        "paths": {f"/tools/{tool.name}": {"post": operation}},
    }


def _openapi_schema(schema: Any) -> Any:
    """JSON Schema (draft 2020-12 style) to the OpenAPI 3.0 schema dialect."""
    if isinstance(schema, list):
        return [_openapi_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$schema", "$id", "$comment"):
            continue  # not part of the OpenAPI 3.0 schema object
        if key == "type" and isinstance(value, list):
            concrete = [t for t in value if t != "null"]
            if len(concrete) < len(value):
                result["nullable"] = True
            if len(concrete) == 1:
                result["type"] = concrete[0]
            elif concrete:
                result.setdefault("anyOf", []).extend({"type": t} for t in concrete)
            continue
        if key == "const":
            result["enum"] = [value]
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(value, dict):
            result[key] = {k: _openapi_schema(v) for k, v in value.items()}
            continue
        result[key] = _openapi_schema(value) if isinstance(value, (dict, list)) else value
    return result


def output_is_wrapped(definition: ToolDefinition) -> bool:
    """Whether ``definition``'s results are published as ``{"result": value}``: the gateway requires an
    object at the top of an output schema, so a tool that returns anything else is wrapped (the
    router wraps the value the same way)."""
    return definition.output_schema is not None and to_schema_definition(definition.output_schema)["type"] != "object"


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The inline ``ToolDefinition`` of ``tool`` (name, description, inputSchema[, outputSchema]).

    The input schema declares the reserved identity argument (see
    :mod:`~toolrt.adapters.aws.identity`); a tool that declares it itself is refused.
    """
    definition = tool.definition
    declared = (definition.input_schema or {}).get("properties") or {}
    if IDENTITY_ARGUMENT in declared:
        raise RegistrationError(
            f"tool {tool.name!r} declares the parameter {IDENTITY_ARGUMENT!r}, which the gateway reserves for "
            "the caller's identity; rename it",
            tool_name=tool.name,
            step="gateway",
        )
    inputs = to_schema_definition(definition.input_schema)
    if inputs["type"] != "object":
        raise RegistrationError(
            f"tool {tool.name!r}: the gateway publishes parameters as an object; its input schema is a {inputs['type']}",
            tool_name=tool.name,
            step="gateway",
        )
    inputs["properties"] = {**inputs.get("properties", {}), IDENTITY_ARGUMENT: dict(_IDENTITY_PROPERTY)}
    result: dict[str, Any] = {
        "name": inline_tool_name(tool),
        "description": definition.description or tool.name,
        "inputSchema": inputs,
    }
    if definition.output_schema is not None:
        output = to_schema_definition(definition.output_schema)
        if output["type"] != "object":
            output = {
                "type": "object",
                "description": "The tool's result, under 'result'.",
                "properties": {"result": output},
                "required": ["result"],
            }
        result["outputSchema"] = output
    return result


def without_identity(definition: Any) -> Any:
    """A listed tool with the reserved identity argument removed from its input schema (what agents see)."""
    if not isinstance(definition, dict) or not isinstance(definition.get("inputSchema"), dict):
        return definition
    schema = definition["inputSchema"]
    properties = schema.get("properties")
    if not isinstance(properties, dict) or IDENTITY_ARGUMENT not in properties:
        return definition
    kept = {k: v for k, v in properties.items() if k != IDENTITY_ARGUMENT}
    required = [r for r in schema.get("required") or [] if r != IDENTITY_ARGUMENT]
    cleaned = {**schema, "properties": kept}
    if "required" in schema:
        cleaned["required"] = required
    return {**definition, "inputSchema": cleaned}


class TargetQuota:
    """AgentCore's quotas on target operations, kept in this process for one gateway.

    At most ``concurrent`` target operations are in flight at once (from the request until the target
    is ``READY`` again) and mutating requests go out at most ``per_second`` a second. Every
    :class:`AgentCoreGateway` of a gateway in this process shares one (:func:`quota_for`); other
    processes are held back by the service itself (throttling, retried by botocore).
    ``max_in_flight`` records the most operations seen at once.
    """

    def __init__(
        self,
        concurrent: int = DEFAULT_CONCURRENT_TARGET_OPERATIONS,
        per_second: float = DEFAULT_TARGET_REQUESTS_PER_S,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrent < 1 or per_second <= 0:
            raise ValueError("a target quota needs at least one operation in flight and a positive rate")
        self.concurrent = concurrent
        self._slots = threading.BoundedSemaphore(concurrent)
        self._interval = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Hold one of the ``concurrent`` operation slots for the duration of the block."""
        self._slots.acquire()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._slots.release()

    def pace(self) -> None:
        """Wait until the next mutating request may go out."""
        with self._lock:
            now = self._monotonic()
            at = max(now, self._next)
            self._next = at + self._interval
        if at > now:
            self._sleep(at - now)


_QUOTAS: dict[str, TargetQuota] = {}
_QUOTAS_LOCK = threading.Lock()


def quota_for(gateway_id: str) -> TargetQuota:
    """The :class:`TargetQuota` every gateway adapter of ``gateway_id`` in this process shares."""
    with _QUOTAS_LOCK:
        return _QUOTAS.setdefault(gateway_id, TargetQuota())


# What became of one change of a shard's tool list.
_APPLIED, _FULL, _ABSENT, _GONE = "applied", "full", "absent", "gone"


@attrs.define(eq=False)
class _Change:
    """Add (or replace) a tool, replace one that must be there, or remove one; ``outcome`` when decided."""

    kind: str  # "add" | "replace" | "remove"
    code: str
    definition: dict[str, Any] | None
    tool_id: str
    outcome: str | ToolRuntimeError | None = None
    done: threading.Event = attrs.field(factory=threading.Event)

    def decide(self, outcome: str | ToolRuntimeError) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.done.set()


@attrs.define
class _Shard:
    """What this process knows of one shard target: its tools when read, else a count from its description."""

    target_id: str
    name: str
    count: int = 0
    tools: dict[str, dict[str, Any]] | None = None


@attrs.define
class _Queue:
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    pending: list[_Change] = attrs.field(factory=list)
    busy: bool = False


def _payload_bytes(tools: dict[str, dict[str, Any]]) -> int:
    return len(json.dumps(list(tools.values()), separators=(",", ":")).encode("utf-8"))


def _code_of(definition: Any) -> str | None:
    name = definition.get("name") if isinstance(definition, dict) else None
    if not isinstance(name, str):
        return None
    code, sep, _ = name.partition(CODE_DELIMITER)
    return code if sep and code else None


def _inline_tools(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mcp = (target.get("targetConfiguration") or {}).get("mcp") or {}
    payload = (((mcp.get("lambda") or {}).get("toolSchema") or {}).get("inlinePayload")) or []
    tools: dict[str, dict[str, Any]] = {}
    for definition in payload:
        code = _code_of(definition)
        if code is not None:
            tools[code] = definition
    return tools


class AgentCoreGateway:
    """Publishes tools on one AgentCore Gateway, packed into shard targets served by the Lambda router.

    ``client`` is a ``bedrock-agentcore-control`` client; ``gateway_id`` the gateway (``toolrt aws
    provision`` creates one); ``lambda_arn`` the function running
    :mod:`toolrt.adapters.aws.lambda_router`. A reference is ``{target id}/{code}``. A shard holds up
    to ``tools_per_target`` tools and ``max_payload_bytes`` of inline schema; at most ``max_targets``
    shards are made (the gateway's target quota). Creating or updating a target waits up to
    ``ready_timeout_s`` for ``READY`` (polling every ``poll_interval_s``); against an emulator whose
    targets never leave ``UPDATING`` (moto), a short timeout keeps writes quick. ``quota``: the
    target-operation limits (default: the one this process shares for the gateway). ``leases``: who
    may rewrite a shard (:mod:`~toolrt.adapters.aws.leases`); the default serializes this process's
    writers only: give :class:`~toolrt.adapters.aws.leases.DynamoDbLeases` when several processes
    register tools on one gateway.
    """

    def __init__(
        self,
        client: Any,
        gateway_id: str,
        lambda_arn: str,
        *,
        ready_timeout_s: float = 120.0,
        poll_interval_s: float = 1.0,
        tools_per_target: int = DEFAULT_TOOLS_PER_TARGET,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_targets: int = DEFAULT_MAX_TARGETS,
        quota: TargetQuota | None = None,
        leases: Leases | None = None,
        write_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if tools_per_target < 1 or max_targets < 1 or max_payload_bytes < 1024:
            raise ValueError("a gateway needs room for at least one tool on one target")
        self._client = client
        self._gateway_id = gateway_id
        self._lambda_arn = lambda_arn
        self._ready_timeout_s = ready_timeout_s
        self._poll_interval_s = poll_interval_s
        self._capacity = tools_per_target
        self._max_bytes = max_payload_bytes
        self._max_targets = min(max_targets, 1000)
        self._quota = quota if quota is not None else quota_for(gateway_id)
        self._leases = leases if leases is not None else ProcessLeases()
        self._attempts = max(1, write_attempts)
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._shards: dict[str, _Shard] | None = None
        self._where: dict[str, str] = {}  # tool code -> target id, as last seen
        self._names: set[str] = set()  # every shard name the gateway has, as last listed
        self._queues: dict[str, _Queue] = {}
        self._creating = threading.Lock()
        self._affinity = random.random()  # noqa: S311 - spreads writers, not a secret

    @property
    def gateway_id(self) -> str:
        """The gateway's identifier."""
        return self._gateway_id

    @property
    def quota(self) -> TargetQuota:
        """The target-operation limits this adapter keeps."""
        return self._quota

    def target_configuration(self, definitions: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The ``targetConfiguration`` of a shard publishing ``definitions`` (see :func:`tool_schema`)."""
        return {"mcp": {"lambda": {"lambdaArn": self._lambda_arn, "toolSchema": {"inlinePayload": list(definitions)}}}}

    # -- the port ----------------------------------------------------------------------------------

    def register(self, tool: Tool) -> str:
        outcome = self.register_many([tool])[0]
        if isinstance(outcome, ToolRuntimeError):
            raise outcome
        log.info("gateway.registered", tool_id=tool.tool_id, ref=outcome)
        return outcome

    def register_many(self, tools: Sequence[Tool]) -> list[str | ToolRuntimeError]:
        """Publish ``tools`` in as few target writes as the shards allow; one reference or error per tool."""
        results: dict[int, str | ToolRuntimeError] = {}
        remaining: list[tuple[int, Tool, dict[str, Any]]] = []
        for index, tool in enumerate(tools):
            try:
                remaining.append((index, tool, tool_schema(tool)))
            except ToolRuntimeError as exc:
                results[index] = exc
        try:
            self._loaded()
        except ToolRuntimeError as exc:
            return [results.get(i, exc) for i in range(len(tools))]
        turned_away: dict[str, set[str]] = {}  # tool code -> shards that had no room for it
        for _ in range(self._attempts):
            if not remaining:
                break
            remaining = self._place(remaining, results, turned_away)
        for index, tool, _ in remaining:
            results[index] = RegistrationError(
                f"{BACKEND}: no shard of gateway {self._gateway_id} took tool {tool.tool_id!r} after "
                f"{self._attempts} attempts (other writers kept filling them); try again",
                tool_name=tool.name,
                step="gateway.register",
                retryable=True,
            )
        return [results[i] for i in range(len(tools))]

    def update(self, tool: Tool) -> None:
        definition = tool_schema(tool)
        code = tool_code(tool.tool_id)
        target_id = self._target_of(tool, code)
        for _ in range(self._attempts):
            if target_id is None:
                raise NotFoundError("published tool", tool.tool_id)
            change = _Change("replace", code, definition, tool.tool_id)
            self._submit(target_id, [change])
            if change.outcome == _APPLIED:
                return
            if isinstance(change.outcome, ToolRuntimeError):
                raise change.outcome
            if change.outcome == _FULL:
                # The new definition no longer fits its shard: it moves to one with room, published
                # there before it leaves the old one (a failure leaves the previous definition serving).
                moved = self._register_elsewhere(tool, definition, target_id)
                self._remove(target_id, code, tool.tool_id, keep=moved)
                return
            # Not on that shard (a stale reference) or the shard is gone: find where it is now.
            self._forget(code)
            self._load(read_tools=True)
            target_id = self._where.get(code)
        raise NotFoundError("published tool", tool.tool_id)

    def deregister(self, tool: Tool) -> None:
        code = tool_code(tool.tool_id)
        target_id = self._target_of(tool, code)
        if target_id is not None:
            self._remove(target_id, code, tool.tool_id)
        log.info("gateway.deregistered", tool_id=tool.tool_id, target_id=target_id or "")

    def published(self) -> Sequence[str]:
        """References of every tool on a serving shard (each shard is read)."""
        return list(self.published_tools())

    def published_tools(self) -> dict[str, str]:
        """Reference to tool id of every tool on a serving shard."""
        found: dict[str, str] = {}
        for shard in self._load(read_tools=True).values():
            for code in shard.tools or {}:
                try:
                    found[f"{shard.target_id}/{code}"] = tool_id_of_code(code)
                except NotFoundError:
                    continue
        return found

    def shard_sizes(self) -> dict[str, int]:
        """Tools per shard target (by target name), as the targets' descriptions last said."""
        return {s.name: s.count for s in self._loaded().values()}

    def health(self) -> GatewayHealth:
        try:
            response = self._client.get_gateway(gatewayIdentifier=self._gateway_id)
        except (ClientError, BotoCoreError) as exc:
            return GatewayHealth(
                False,
                f"gateway {self._gateway_id}: {translate(exc, backend=BACKEND, operation='get_gateway', resource=self._gateway_id, kind='gateway')}",
            )
        status = str(response.get("status", ""))
        reasons = "; ".join(response.get("statusReasons") or [])
        detail = f"gateway {self._gateway_id} is {status}" + (f" ({reasons})" if reasons else "")
        if status == "CREATING":
            # A new gateway is usable moments later; report it as such rather than broken.
            return GatewayHealth(False, detail + "; not ready yet")
        return GatewayHealth(status in _HEALTHY_STATES, detail)

    # -- placement ---------------------------------------------------------------------------------

    def _place(
        self,
        pending: list[tuple[int, Tool, dict[str, Any]]],
        results: dict[int, str | ToolRuntimeError],
        turned_away: dict[str, set[str]],
    ) -> list[tuple[int, Tool, dict[str, Any]]]:
        """Send each tool to a shard (its own if it is already on one; else one with room that has not
        turned it away, or new ones); returns the tools a full shard turned away, to place again."""
        shards = self._loaded()
        room = {tid: self._capacity - s.count for tid, s in shards.items()}
        open_shards = sorted((tid for tid, r in room.items() if r > 0), key=lambda t: _shard_index(shards[t].name))
        groups: dict[str, list[tuple[int, Tool, _Change]]] = {}
        fresh: list[tuple[int, Tool, dict[str, Any]]] = []
        for index, tool, definition in pending:
            code = tool_code(tool.tool_id)
            target_id = self._where.get(code)
            candidates = [t for t in open_shards if t not in turned_away.get(code, ())]
            if target_id is None and candidates:
                # This process fills one shard at a time (its writes then go out together), starting
                # at a place of its own among the open ones: other processes mostly write elsewhere.
                target_id = candidates[int(self._affinity * len(candidates))]
                room[target_id] -= 1
                if room[target_id] <= 0:
                    open_shards.remove(target_id)
            if target_id is None:
                fresh.append((index, tool, definition))
                continue
            groups.setdefault(target_id, []).append((index, tool, _Change("add", code, definition, tool.tool_id)))
        again: list[tuple[int, Tool, dict[str, Any]]] = []
        jobs: list[Callable[[], None]] = [
            functools.partial(self._submit, tid, [c for _, _, c in items]) for tid, items in groups.items()
        ]
        chunks = self._chunks(fresh)
        if chunks:
            # New shards are made one after another (creation is serialised anyway), in the order of
            # the tools: near a full gateway the earlier tools are the ones that get a place.
            jobs.append(functools.partial(self._create_shards, chunks, results, turned_away))
        self._run(jobs)
        for target_id, items in groups.items():
            for index, tool, change in items:
                if change.outcome == _APPLIED:
                    results[index] = f"{target_id}/{change.code}"
                elif isinstance(change.outcome, ToolRuntimeError):
                    results[index] = change.outcome
                else:
                    if change.outcome == _GONE:
                        self._forget(change.code)
                    else:
                        turned_away.setdefault(change.code, set()).add(target_id)
                    again.append((index, tool, change.definition or {}))
        for chunk in chunks:
            again += [item for item in chunk if item[0] not in results]
        return again

    def _chunks(self, items: list[tuple[int, Tool, dict[str, Any]]]) -> list[list[tuple[int, Tool, dict[str, Any]]]]:
        chunks: list[list[tuple[int, Tool, dict[str, Any]]]] = []
        current: dict[str, dict[str, Any]] = {}
        for item in items:
            trial = {**current, tool_code(item[1].tool_id): item[2]}
            if chunks and current and (len(trial) > self._capacity or _payload_bytes(trial) > self._max_bytes):
                chunks.append([])
                current = {}
                trial = {tool_code(item[1].tool_id): item[2]}
            if not chunks:
                chunks.append([])
            chunks[-1].append(item)
            current = trial
        return chunks

    def _run(self, jobs: list[Callable[[], None]]) -> None:
        if len(jobs) <= 1:
            for job in jobs:
                job()
            return
        with ThreadPoolExecutor(max_workers=min(len(jobs), self._quota.concurrent)) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def _target_of(self, tool: Tool, code: str) -> str | None:
        ref = tool.gateway_ref or ""
        target_id, sep, ref_code = ref.partition("/")
        if sep and ref_code == code and target_id:
            return target_id
        self._loaded()
        if code not in self._where:
            self._load(read_tools=True)
        return self._where.get(code)

    def _forget(self, code: str, target_id: str | None = None) -> None:
        """Drop what this process knows of where ``code`` is (only if it is ``target_id``, when given)."""
        with self._lock:
            if target_id is None or self._where.get(code) == target_id:
                self._where.pop(code, None)

    def _register_elsewhere(self, tool: Tool, definition: dict[str, Any], full: str) -> str:
        """Publish ``tool`` on a shard other than ``full``; its reference there."""
        code = tool_code(tool.tool_id)
        self._forget(code)
        results: dict[int, str | ToolRuntimeError] = {}
        remaining = [(0, tool, definition)]
        turned_away = {code: {full}}
        for _ in range(self._attempts):
            if not remaining:
                break
            remaining = self._place(remaining, results, turned_away)
        outcome = results.get(0)
        if not isinstance(outcome, str):
            raise outcome or RegistrationError(
                f"{BACKEND}: no shard of gateway {self._gateway_id} has room for tool {tool.tool_id!r}'s new "
                "definition; the previous one still serves",
                tool_name=tool.name,
                step="gateway.update",
                retryable=True,
            )
        return outcome.partition("/")[0]

    def _remove(self, target_id: str, code: str, tool_id: str, *, keep: str | None = None) -> None:
        """Take the tool off ``target_id``; when it is not there (a stale reference), off whichever
        shard has it now (other than ``keep``, where it was just published)."""
        for _ in range(self._attempts):
            change = _Change("remove", code, None, tool_id)
            self._submit(target_id, [change])
            if isinstance(change.outcome, ToolRuntimeError):
                raise change.outcome
            self._forget(code, target_id)
            if change.outcome != _ABSENT or keep is not None:
                return
            self._load(read_tools=True)
            elsewhere = self._where.get(code)
            if elsewhere is None:
                return
            target_id = elsewhere

    # -- shards ------------------------------------------------------------------------------------

    def _loaded(self) -> dict[str, _Shard]:
        with self._lock:
            shards = self._shards
        return shards if shards is not None else self._load(read_tools=False)

    def _load(self, *, read_tools: bool) -> dict[str, _Shard]:
        """The gateway's shards from ListGatewayTargets (counts from their descriptions); with
        ``read_tools`` each shard is read as well (GetGatewayTarget) and the code index rebuilt."""
        shards: dict[str, _Shard] = {}
        names: set[str] = set()
        for summary in self._summaries():
            name = str(summary.get("name", ""))
            if not is_shard(name):
                continue
            names.add(name)  # taken whatever its state
            if summary.get("status", "READY") not in _SERVING_TARGET_STATES | {"CREATING"}:
                continue
            count = described_count(str(summary.get("description", "")))
            shards[str(summary["targetId"])] = _Shard(str(summary["targetId"]), name, count)
        if read_tools:
            for target_id, shard in list(shards.items()):
                found = self._read(target_id)
                if found is None:
                    del shards[target_id]
                else:
                    shard.tools, shard.count = found.tools, len(found.tools or {})
        with self._lock:
            self._shards = shards
            self._names = names
            if read_tools:
                self._where = {code: tid for tid, s in shards.items() for code in s.tools or {}}
        return shards

    def _summaries(self) -> Iterator[dict[str, Any]]:
        try:
            pages = self._client.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=self._gateway_id)
            for page in pages:
                yield from page.get("items", [])
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc,
                backend=BACKEND,
                operation="list_gateway_targets",
                resource=f"gateway {self._gateway_id}",
                kind="gateway",
                gateway=True,
            ) from exc

    def _read(self, target_id: str) -> _Shard | None:
        """The shard as the service has it now (``None`` when the target is gone)."""
        try:
            found = self._client.get_gateway_target(gatewayIdentifier=self._gateway_id, targetId=target_id)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise self._translate(exc, "get_gateway_target", f"target {target_id}") from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "get_gateway_target", f"target {target_id}") from exc
        tools = _inline_tools(found)
        return _Shard(target_id, str(found.get("name", "")), len(tools), tools)

    def _note(self, target_id: str, name: str, tools: dict[str, dict[str, Any]] | None) -> None:
        with self._lock:
            if self._shards is None:
                self._shards = {}
            if tools is None:
                self._shards.pop(target_id, None)
                self._where = {c: t for c, t in self._where.items() if t != target_id}
                return
            self._shards[target_id] = _Shard(target_id, name, len(tools), dict(tools))
            self._where = {c: t for c, t in self._where.items() if t != target_id}
            self._where.update({code: target_id for code in tools})

    def _submit(self, target_id: str, changes: list[_Change]) -> None:
        """Apply ``changes`` to one shard, together with any other thread's changes queued meanwhile
        (group commit: the first thread writes for all); returns when each change is decided."""
        with self._lock:
            queue = self._queues.setdefault(target_id, _Queue())
        with queue.lock:
            queue.pending.extend(changes)
            lead = not queue.busy
            queue.busy = True
        if lead:
            while True:
                with queue.lock:
                    batch, queue.pending = queue.pending, []
                    if not batch:
                        queue.busy = False
                        break
                self._commit(target_id, batch)
        for change in changes:
            change.done.wait()

    def _commit(self, target_id: str, batch: list[_Change]) -> None:
        """Read the shard, apply ``batch``, write it whole, and check the write held (see the module)."""
        try:
            with self._leases.hold(f"gateway/{self._gateway_id}/{target_id}"), self._quota.operation():
                for _ in range(self._attempts):
                    current = self._read(target_id)
                    if current is None:
                        self._note(target_id, "", None)
                        for change in batch:  # a removal looks for the tool elsewhere, an addition goes elsewhere
                            change.decide(_ABSENT if change.kind == "remove" else _GONE)
                        return
                    tools = current.tools or {}
                    wanted = self._apply(tools, batch)
                    written = [c for c in batch if c.outcome is None]
                    if not written:
                        return
                    if wanted == tools:
                        self._note(target_id, current.name, tools)
                        for change in written:
                            change.decide(_APPLIED)
                        return
                    final = self._write(target_id, current.name, wanted)
                    if final is None or all(_holds(final, c) for c in written):
                        self._note(target_id, current.name, final)
                        for change in written:
                            change.decide(_APPLIED)
                        return
                    # Another writer's list replaced ours between our read and our write: again.
                    log.warning("gateway.write_replaced", target_id=target_id, changes=len(written))
                raise RegistrationError(
                    f"{BACKEND}: target {target_id} of gateway {self._gateway_id} kept being rewritten by "
                    f"other writers; {len(batch)} change(s) not applied after {self._attempts} attempts: try again",
                    step="update_gateway_target",
                    retryable=True,
                )
        except ToolRuntimeError as exc:
            for change in batch:
                change.decide(exc)

    def _apply(self, tools: dict[str, dict[str, Any]], batch: list[_Change]) -> dict[str, dict[str, Any]]:
        wanted = dict(tools)
        for change in batch:
            if change.outcome is not None and change.outcome != _APPLIED:
                continue
            change.outcome = None  # decided afresh against what the service holds now
            if change.kind == "remove":
                if change.code not in wanted:
                    change.decide(_ABSENT)
                    continue
                wanted.pop(change.code)
                continue
            present = change.code in wanted
            if change.kind == "replace" and not present:
                change.decide(_ABSENT)
                continue
            trial = {**wanted, change.code: change.definition or {}}
            if (not present and len(trial) > self._capacity) or _payload_bytes(trial) > self._max_bytes:
                change.decide(_FULL)
                continue
            wanted = trial
        return wanted

    def _write(self, target_id: str, name: str, tools: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
        """Replace the shard's tool list (or delete the target when it is empty); the tools it then has."""
        self._quota.pace()
        if not tools:
            try:
                self._client.delete_gateway_target(gatewayIdentifier=self._gateway_id, targetId=target_id)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise self._translate(exc, "delete_gateway_target", f"target {target_id}") from exc
            except BotoCoreError as exc:
                raise self._translate(exc, "delete_gateway_target", f"target {target_id}") from exc
            return None
        for attempt in range(self._attempts):
            try:
                self._client.update_gateway_target(
                    gatewayIdentifier=self._gateway_id,
                    targetId=target_id,
                    name=name,
                    description=_description(len(tools)),
                    targetConfiguration=self.target_configuration(list(tools.values())),
                    credentialProviderConfigurations=[{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
                )
                break
            except ClientError as exc:
                # Another operation on this target is still running: wait for it, then write.
                if error_code(exc) != "ConflictException" or attempt == self._attempts - 1:
                    raise self._translate(exc, "update_gateway_target", f"target {target_id}") from exc
                self._wait_until_serving(target_id, "update_gateway_target", pending_ok=True)
                self._quota.pace()
            except BotoCoreError as exc:
                raise self._translate(exc, "update_gateway_target", f"target {target_id}") from exc
        final = self._wait_until_serving(target_id, "update_gateway_target", pending_ok=True)
        return _inline_tools(final)

    def _create_shards(
        self,
        chunks: list[list[tuple[int, Tool, dict[str, Any]]]],
        results: dict[int, str | ToolRuntimeError],
        turned_away: dict[str, set[str]],
    ) -> None:
        for chunk in chunks:
            self._create_shard(chunk, results, turned_away)

    def _create_shard(
        self,
        items: list[tuple[int, Tool, dict[str, Any]]],
        results: dict[int, str | ToolRuntimeError],
        turned_away: dict[str, set[str]],
    ) -> None:
        """A new shard target holding ``items``; their references (or one error for all) go to
        ``results``. When another thread opened a shard with room meanwhile, nothing is made: the
        items are placed again (there)."""
        tools = {tool_code(tool.tool_id): definition for _, tool, definition in items}
        refused = set().union(*(turned_away.get(code, set()) for code in tools))
        try:
            with self._creating, self._quota.operation():
                shards = self._load(read_tools=False)
                if any(self._capacity - s.count >= len(tools) for tid, s in shards.items() if tid not in refused):
                    return
                target_id, name = self._create(tools)
        except ToolRuntimeError as exc:
            for index, _, _ in items:
                results[index] = exc
            return
        for index, tool, _ in items:
            results[index] = f"{target_id}/{tool_code(tool.tool_id)}"

    def _create(self, tools: dict[str, dict[str, Any]]) -> tuple[str, str]:
        """Create a shard holding ``tools`` under the first free name (the shards were just listed)."""
        for attempt in range(self._attempts):
            if attempt:
                self._load(read_tools=False)
            with self._lock:
                taken = set(self._names)
            if len(taken) >= self._max_targets:
                raise RegistrationError(
                    f"{BACKEND}: gateway {self._gateway_id} already has {len(taken)} shard targets, its limit "
                    f"(max_targets={self._max_targets}, AgentCore's targets-per-gateway quota); every one holds "
                    f"{self._capacity} tools or {self._max_bytes} bytes of schema. Raise the quota in Service "
                    "Quotas and max_targets, or deregister tools no one uses",
                    step="create_gateway_target",
                )
            name = next(f"s{n}" for n in range(self._max_targets) if f"s{n}" not in taken)
            self._quota.pace()
            try:
                response = self._client.create_gateway_target(
                    gatewayIdentifier=self._gateway_id,
                    name=name,
                    description=_description(len(tools)),
                    clientToken=str(uuid.uuid4()),
                    targetConfiguration=self.target_configuration(list(tools.values())),
                    credentialProviderConfigurations=[{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
                )
            except ClientError as exc:
                if error_code(exc) in ("ConflictException", "ValidationException") and "exist" in str(exc).lower():
                    continue  # another process made a shard of that name first: take the next one
                raise self._translate(exc, "create_gateway_target", f"shard {name}") from exc
            except BotoCoreError as exc:
                raise self._translate(exc, "create_gateway_target", f"shard {name}") from exc
            target_id = str(response["targetId"])
            try:
                self._wait_until_serving(target_id, "create_gateway_target")
            except RegistrationError:
                # Nothing half-published: a target that failed to come up is removed again.
                self._delete_quietly(target_id)
                raise
            self._note(target_id, name, tools)
            log.info("gateway.shard_created", target_id=target_id, shard=name, tools=len(tools))
            return target_id, name
        raise RegistrationError(
            f"{BACKEND}: could not name a new shard on gateway {self._gateway_id} (others kept taking the names); try again",
            step="create_gateway_target",
            retryable=True,
        )

    def _wait_until_serving(self, ref: str, operation: str, *, pending_ok: bool = False) -> dict[str, Any]:
        """Poll the target until it is ``READY`` and return it; a failed state is a RegistrationError
        with its reasons. Still pending after ``ready_timeout_s``: an error for a new target, the
        target as it is for an update (the previous definition serves meanwhile)."""
        deadline = self._monotonic() + self._ready_timeout_s
        while True:
            try:
                found: dict[str, Any] = self._client.get_gateway_target(
                    gatewayIdentifier=self._gateway_id, targetId=ref
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, "get_gateway_target", f"target {ref}") from exc
            status = str(found.get("status", ""))
            if status == "READY":
                return found
            if status in _FAILED_TARGET_STATES:
                reasons = "; ".join(found.get("statusReasons") or []) or "no reason given"
                raise RegistrationError(f"{BACKEND}: target {ref} is {status}: {reasons}", step=operation)
            if self._monotonic() >= deadline:
                if pending_ok:
                    log.debug("gateway.update_pending", target_id=ref, status=status)
                    return found
                raise RegistrationError(
                    f"{BACKEND}: target {ref} is still {status or 'unknown'} after {self._ready_timeout_s:.0f} s; "
                    "try again later",
                    step=operation,
                    retryable=True,
                )
            self._sleep(self._poll_interval_s)

    def _delete_quietly(self, ref: str) -> None:
        try:
            self._client.delete_gateway_target(gatewayIdentifier=self._gateway_id, targetId=ref)
        except (ClientError, BotoCoreError) as exc:
            log.warning("gateway.cleanup_failed", target_id=ref, error=str(exc))

    def _translate(self, exc: BaseException, operation: str, what: str) -> ToolRuntimeError:
        error = translate(
            exc,
            backend=BACKEND,
            operation=operation,
            resource=f"{what} of gateway {self._gateway_id}",
            kind="gateway",
            gateway=True,
        )
        if isinstance(error, RegistrationError):
            return RegistrationError(str(error), step=operation, retryable=error.retryable)
        return error


def _holds(tools: dict[str, dict[str, Any]] | None, change: _Change) -> bool:
    """Whether the shard's tools (as read after a write) reflect ``change``."""
    if change.kind == "remove":
        return tools is None or change.code not in tools
    return tools is not None and tools.get(change.code) == change.definition


def described_count(description: str) -> int:
    """How many tools a shard's description says it holds (0 when it says nothing)."""
    found = _COUNT.search(description)
    return int(found.group(1)) if found else 0


def _description(count: int) -> str:
    return f"toolrt tools ({count} tool{'s' if count != 1 else ''})"[:MAX_TARGET_DESCRIPTION]


def _shard_index(name: str) -> int:
    return int(name[1:]) if is_shard(name) else 10**6
