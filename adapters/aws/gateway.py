"""An AgentCore Gateway ToolGateway: each tool is one MCP Lambda target with an inline tool schema.

Agents see a tool as ``{target}___{tool name}``, at most 64 characters (what Bedrock Converse and
OpenAI accept): the target name is a short reversible form of the tool id (:func:`target_name`), so
the Lambda router maps a call back to the tool, and the tool's name is cut to the room left. Target
creation and update are asynchronous on AgentCore: :class:`AgentCoreGateway` waits for ``READY`` and
reports a ``FAILED`` target with the service's reasons. Also :func:`to_openapi`, the OpenAPI 3.0 form
of a tool for OpenAPI targets.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, translate
from toolrt.application.logs import get_logger
from toolrt.domain import NotFoundError, RegistrationError, Tool
from toolrt.ports import GatewayHealth

log = get_logger(__name__)

BACKEND = "agentcore-gateway"
TOOL_NAME_DELIMITER = "___"
# Bedrock Converse, OpenAI and most MCP hosts accept tool names of at most 64 characters.
MAX_TOOL_NAME = 64
MAX_TARGET_NAME = 100
MAX_TARGET_DESCRIPTION = 200
_TARGET_NAME = re.compile(r"^[0-9a-zA-Z](-?[0-9a-zA-Z])*-?\Z")
_UUID_ID = re.compile(r"^tool-([0-9a-f]{32})\Z")
# Target-name forms, told apart by their first characters: "u" + 26 base32 letters (an id toolrt
# generated: "tool-" and 32 hex digits), "r-" + the id itself, "x0" + the id's UTF-8 in hex.
_UUID_PREFIX, _RAW_PREFIX, _ENCODED_PREFIX = "u", "r-", "x0"
# The longest target name that still leaves a readable tool name (21 characters) within 64.
_MAX_PUBLISHED_TARGET = MAX_TOOL_NAME - len(TOOL_NAME_DELIMITER) - 21
_SCHEMA_TYPES = ("string", "number", "object", "array", "boolean", "integer")
_HEALTHY_STATES = ("READY", "UPDATING")
# Target states: asynchronous create and update end in one of these.
_SERVING_TARGET_STATES = frozenset({"READY", "UPDATING", "SYNCHRONIZING"})
_FAILED_TARGET_STATES = frozenset({"FAILED", "UPDATE_UNSUCCESSFUL", "SYNCHRONIZE_UNSUCCESSFUL"})


def target_name(tool_id: str) -> str:
    """The gateway target name of ``tool_id``: short and reversible (see :func:`tool_id_of_target`).

    Ids toolrt generates (``tool-`` and 32 hex digits) become ``u`` and 26 base32 letters, so that
    the name agents see (``{target}___{tool}``) keeps 34 characters for the tool's own name.
    """
    uuid_form = _UUID_ID.match(tool_id)
    if uuid_form:
        return _UUID_PREFIX + base64.b32encode(bytes.fromhex(uuid_form.group(1))).decode("ascii").rstrip("=").lower()
    raw = _RAW_PREFIX + tool_id
    if _TARGET_NAME.match(raw) and len(raw) <= _MAX_PUBLISHED_TARGET:
        return raw
    encoded = _ENCODED_PREFIX + tool_id.encode("utf-8").hex()
    if len(encoded) > _MAX_PUBLISHED_TARGET:
        raise RegistrationError(
            f"tool id {tool_id!r} is too long to publish on the gateway (at most {_MAX_PUBLISHED_TARGET - 2} "
            "characters of letters, digits and single hyphens, or 19 bytes otherwise); ids toolrt "
            "generates always fit",
            step="gateway",
        )
    return encoded


def tool_id_of_target(name: str) -> str:
    """The tool id a target name stands for."""
    if name.startswith(_ENCODED_PREFIX):
        return bytes.fromhex(name[len(_ENCODED_PREFIX) :]).decode("utf-8")
    if name.startswith(_RAW_PREFIX):
        return name[len(_RAW_PREFIX) :]
    if name.startswith(_UUID_PREFIX) and len(name) == 27:
        raw = base64.b32decode(name[1:].upper() + "======")
        return f"tool-{raw.hex()}"
    raise NotFoundError("gateway target", name)


def published_name(tool: Tool) -> str:
    """The tool's own name as the gateway lists it: cut so that the full name fits in 64 characters."""
    room = MAX_TOOL_NAME - len(target_name(tool.tool_id)) - len(TOOL_NAME_DELIMITER)
    return tool.name[:room]


def gateway_tool_name(tool: Tool) -> str:
    """The name agents see: ``{target}___{tool name}``, at most 64 characters, unique per tool."""
    return f"{target_name(tool.tool_id)}{TOOL_NAME_DELIMITER}{published_name(tool)}"


def split_gateway_tool_name(name: str) -> tuple[str, str]:
    """``(tool_id, published name)`` from a ``{target}___{tool name}`` gateway tool name."""
    target, sep, tool = name.partition(TOOL_NAME_DELIMITER)
    if not sep or not target or not tool:
        raise NotFoundError("gateway tool", name)
    return tool_id_of_target(target), tool


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


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The inline ``ToolDefinition`` of ``tool`` (name, description, inputSchema[, outputSchema])."""
    definition = tool.definition
    result: dict[str, Any] = {
        "name": published_name(tool),
        "description": definition.description or tool.name,
        "inputSchema": to_schema_definition(definition.input_schema),
    }
    if definition.output_schema is not None:
        result["outputSchema"] = to_schema_definition(definition.output_schema)
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


class AgentCoreGateway:
    """Publishes tools as targets of one AgentCore Gateway, each an MCP Lambda target.

    ``client`` is a ``bedrock-agentcore-control`` client; ``gateway_id`` the gateway (``toolrt aws
    provision`` creates one); ``lambda_arn`` the Lambda function running
    :mod:`toolrt.adapters.aws.lambda_router`. References are target ids. Creating or updating a
    target waits up to ``ready_timeout_s`` for ``READY`` (polling every ``poll_interval_s``); against
    an emulator whose targets never leave ``UPDATING`` (moto), a short timeout keeps updates quick.
    """

    def __init__(
        self,
        client: Any,
        gateway_id: str,
        lambda_arn: str,
        *,
        ready_timeout_s: float = 120.0,
        poll_interval_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._gateway_id = gateway_id
        self._lambda_arn = lambda_arn
        self._ready_timeout_s = ready_timeout_s
        self._poll_interval_s = poll_interval_s
        self._sleep = sleep
        self._monotonic = monotonic

    @property
    def gateway_id(self) -> str:
        """The gateway's identifier."""
        return self._gateway_id

    def target_configuration(self, tool: Tool) -> dict[str, Any]:
        """The ``targetConfiguration`` publishing ``tool``."""
        return {
            "mcp": {"lambda": {"lambdaArn": self._lambda_arn, "toolSchema": {"inlinePayload": [tool_schema(tool)]}}}
        }

    def register(self, tool: Tool) -> str:
        name = target_name(tool.tool_id)
        response = self._call(
            "create_gateway_target",
            tool,
            gatewayIdentifier=self._gateway_id,
            name=name,
            description=self._description(tool),
            clientToken=str(uuid.uuid4()),
            targetConfiguration=self.target_configuration(tool),
            credentialProviderConfigurations=[{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
        )
        ref = str(response["targetId"])
        try:
            self._wait_until_serving(ref, tool, "create_gateway_target")
        except RegistrationError:
            # Nothing half-published: a target that failed to come up is removed again.
            self._delete_quietly(ref, tool)
            raise
        log.info("gateway.registered", tool_id=tool.tool_id, target_id=ref, gateway_tool=gateway_tool_name(tool))
        return ref

    def update(self, tool: Tool) -> None:
        ref = tool.gateway_ref or self._find_target(tool.tool_id)
        if ref is None:
            raise NotFoundError("published tool", tool.tool_id)
        # An inline schema is replaced as a whole by UpdateGatewayTarget (no synchronization needed).
        self._call(
            "update_gateway_target",
            tool,
            gatewayIdentifier=self._gateway_id,
            targetId=ref,
            name=target_name(tool.tool_id),
            description=self._description(tool),
            targetConfiguration=self.target_configuration(tool),
            credentialProviderConfigurations=[{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
            not_found=("published tool", tool.tool_id),
        )
        # The previous definition serves while the target is UPDATING: only a failed update is an error.
        self._wait_until_serving(ref, tool, "update_gateway_target", pending_ok=True)

    def deregister(self, tool: Tool) -> None:
        ref = tool.gateway_ref or self._find_target(tool.tool_id)
        if ref is None:
            return
        try:
            self._client.delete_gateway_target(gatewayIdentifier=self._gateway_id, targetId=ref)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return  # already gone: cleanup is repeatable
            raise self._translate(exc, "delete_gateway_target", tool.tool_id) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "delete_gateway_target", tool.tool_id) from exc
        log.info("gateway.deregistered", tool_id=tool.tool_id, target_id=ref)

    def published(self) -> Sequence[str]:
        """Targets that serve calls (a ``FAILED`` or ``CREATING`` target is not published)."""
        return [str(t["targetId"]) for t in self._targets() if t.get("status", "READY") in _SERVING_TARGET_STATES]

    def published_tools(self) -> dict[str, str]:
        """Target id to tool id of every serving target."""
        return {
            str(t["targetId"]): tool_id_of_target(str(t["name"]))
            for t in self._targets()
            if t.get("status", "READY") in _SERVING_TARGET_STATES
        }

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

    # -- helpers ---------------------------------------------------------------------------------

    def _targets(self) -> Iterator[dict[str, Any]]:
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

    def _find_target(self, tool_id: str) -> str | None:
        name = target_name(tool_id)
        return next((str(t["targetId"]) for t in self._targets() if t.get("name") == name), None)

    def _wait_until_serving(self, ref: str, tool: Tool, operation: str, *, pending_ok: bool = False) -> None:
        """Poll the target until it is ``READY``; a failed state is a RegistrationError with its reasons.

        Still pending after ``ready_timeout_s``: an error for a new target, a warning for an update.
        """
        deadline = self._monotonic() + self._ready_timeout_s
        while True:
            found = self._call("get_gateway_target", tool, gatewayIdentifier=self._gateway_id, targetId=ref)
            status = str(found.get("status", ""))
            if status == "READY":
                return
            if status in _FAILED_TARGET_STATES:
                reasons = "; ".join(found.get("statusReasons") or []) or "no reason given"
                raise RegistrationError(
                    f"{BACKEND}: target {ref} for tool {tool.tool_id!r} is {status}: {reasons}",
                    tool_name=tool.name,
                    step=operation,
                )
            if self._monotonic() >= deadline:
                if pending_ok:
                    log.warning("gateway.update_pending", tool_id=tool.tool_id, target_id=ref, status=status)
                    return
                raise RegistrationError(
                    f"{BACKEND}: target {ref} for tool {tool.tool_id!r} is still {status or 'unknown'} after "
                    f"{self._ready_timeout_s:.0f} s; try again later",
                    tool_name=tool.name,
                    step=operation,
                )
            self._sleep(self._poll_interval_s)

    def _delete_quietly(self, ref: str, tool: Tool) -> None:
        try:
            self._client.delete_gateway_target(gatewayIdentifier=self._gateway_id, targetId=ref)
        except (ClientError, BotoCoreError) as exc:
            log.warning("gateway.cleanup_failed", tool_id=tool.tool_id, target_id=ref, error=str(exc))

    @staticmethod
    def _description(tool: Tool) -> str:
        text = (tool.definition.description or tool.name).strip() or tool.name
        return text[:MAX_TARGET_DESCRIPTION]

    def _call(self, method: str, tool: Tool, *, not_found: tuple[str, str] | None = None, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(**kwargs)
        except ClientError as exc:
            if not_found is not None and error_code(exc) == "ResourceNotFoundException":
                raise NotFoundError(*not_found) from exc
            raise self._translate(exc, method, tool.tool_id) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, method, tool.tool_id) from exc

    def _translate(self, exc: BaseException, operation: str, tool_id: str) -> Exception:
        error = translate(
            exc,
            backend=BACKEND,
            operation=operation,
            resource=f"tool {tool_id!r} on gateway {self._gateway_id}",
            kind="gateway",
            gateway=True,
        )
        if isinstance(error, RegistrationError):
            return RegistrationError(str(error), tool_name=tool_id, step=operation)
        return error
