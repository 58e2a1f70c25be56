"""An AgentCore Gateway ToolGateway: each tool is one MCP Lambda target with an inline tool schema.

Agents see a tool as ``{target}___{tool name}``; the target name is the tool id (hex-encoded with an
``x0`` prefix when the id is not a valid target name), so the Lambda router can map a call back to
the tool. Also :func:`to_openapi`, the OpenAPI 3.0 form of a tool for OpenAPI targets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, translate
from toolrt.application.logs import get_logger
from toolrt.domain import NotFoundError, RegistrationError, Tool
from toolrt.ports import GatewayHealth

log = get_logger(__name__)

BACKEND = "agentcore-gateway"
TOOL_NAME_DELIMITER = "___"
_TARGET_NAME = re.compile(r"^[0-9a-zA-Z](-?[0-9a-zA-Z])*-?$")
_ENCODED_PREFIX = "x0"
MAX_TARGET_NAME = 100
MAX_TARGET_DESCRIPTION = 200
_SCHEMA_TYPES = ("string", "number", "object", "array", "boolean", "integer")
_HEALTHY_STATES = ("READY", "UPDATING")


def target_name(tool_id: str) -> str:
    """The gateway target name of ``tool_id`` (reversible, see :func:`tool_id_of_target`)."""
    if _TARGET_NAME.match(tool_id) and not tool_id.startswith(_ENCODED_PREFIX) and len(tool_id) <= MAX_TARGET_NAME:
        return tool_id
    encoded = _ENCODED_PREFIX + tool_id.encode("utf-8").hex()
    if len(encoded) > MAX_TARGET_NAME:
        raise RegistrationError(
            f"tool id {tool_id!r} is too long to name a gateway target (at most 49 bytes when it holds "
            "characters other than letters, digits and single hyphens)",
            step="gateway",
        )
    return encoded


def tool_id_of_target(name: str) -> str:
    """The tool id a target name stands for."""
    if name.startswith(_ENCODED_PREFIX):
        return bytes.fromhex(name[len(_ENCODED_PREFIX) :]).decode("utf-8")
    return name


def gateway_tool_name(tool: Tool) -> str:
    """The name agents see: ``{target}___{tool name}``."""
    return f"{target_name(tool.tool_id)}{TOOL_NAME_DELIMITER}{tool.name}"


def split_gateway_tool_name(name: str) -> tuple[str, str]:
    """``(tool_id, tool_name)`` from a ``{target}___{tool name}`` gateway tool name."""
    target, sep, tool = name.partition(TOOL_NAME_DELIMITER)
    if not sep or not target or not tool:
        raise NotFoundError("gateway tool", name)
    return tool_id_of_target(target), tool


def to_schema_definition(schema: Any) -> dict[str, Any]:
    """A JSON Schema in the gateway's ``SchemaDefinition`` form (type, properties, required, items).

    The gateway's inline schema knows six types and no other keywords; the rest (enums, bounds,
    formats) is summarized into ``description`` so that the model still sees it. A missing or
    union type becomes the first concrete type it can name.
    """
    if not isinstance(schema, dict):
        return {"type": "string"}
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k in _SCHEMA_TYPES), None)
    if kind not in _SCHEMA_TYPES:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    result: dict[str, Any] = {"type": kind}
    notes = [str(schema["description"])] if schema.get("description") else []
    for keyword in ("enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "default"):
        if keyword in schema:
            notes.append(f"{keyword}: {schema[keyword]!r}")
    if notes:
        result["description"] = "; ".join(notes)
    if kind == "object":
        props = schema.get("properties") or {}
        result["properties"] = {str(k): to_schema_definition(v) for k, v in props.items()}
        required = [str(r) for r in schema.get("required") or [] if r in props]
        if required:
            result["required"] = required
    if kind == "array":
        result["items"] = to_schema_definition(schema.get("items", {}))
    return result


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The inline ``ToolDefinition`` of ``tool`` (name, description, inputSchema[, outputSchema])."""
    definition = tool.definition
    result: dict[str, Any] = {
        "name": tool.name,
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
    :mod:`toolrt.adapters.aws.lambda_router`. References are target ids.
    """

    def __init__(self, client: Any, gateway_id: str, lambda_arn: str) -> None:
        self._client = client
        self._gateway_id = gateway_id
        self._lambda_arn = lambda_arn

    @property
    def gateway_id(self) -> str:
        """The gateway's identifier."""
        return self._gateway_id

    def target_configuration(self, tool: Tool) -> dict[str, Any]:
        """The ``targetConfiguration`` publishing ``tool``."""
        return {"mcp": {"lambda": {"lambdaArn": self._lambda_arn, "toolSchema": {"inlinePayload": [tool_schema(tool)]}}}}

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
        return [str(t["targetId"]) for t in self._targets()]

    def published_tools(self) -> dict[str, str]:
        """Target id to tool id of every published tool."""
        return {str(t["targetId"]): tool_id_of_target(str(t["name"])) for t in self._targets()}

    def health(self) -> GatewayHealth:
        try:
            response = self._client.get_gateway(gatewayIdentifier=self._gateway_id)
        except (ClientError, BotoCoreError) as exc:
            return GatewayHealth(False, f"gateway {self._gateway_id}: {translate(exc, backend=BACKEND, operation='get_gateway', resource=self._gateway_id, kind='gateway')}")
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
                exc, backend=BACKEND, operation="list_gateway_targets", resource=f"gateway {self._gateway_id}",
                kind="gateway", gateway=True,
            ) from exc

    def _find_target(self, tool_id: str) -> str | None:
        name = target_name(tool_id)
        return next((str(t["targetId"]) for t in self._targets() if t.get("name") == name), None)

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
            exc, backend=BACKEND, operation=operation, resource=f"tool {tool_id!r} on gateway {self._gateway_id}",
            kind="gateway", gateway=True,
        )
        if isinstance(error, RegistrationError):
            return RegistrationError(str(error), tool_name=tool_id, step=operation)
        return error
