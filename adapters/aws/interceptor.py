"""The gateway interceptor: who is calling, which tools they may list, and which they may call.

AgentCore Gateway merges the tools of all its targets into one ``tools/list`` and hands a target's
Lambda nothing about the caller. toolrt's tenancy on AWS therefore rests on three pieces, each
enforced by AWS rather than by convention:

1. The gateway's **CUSTOM_JWT authorizer** verifies every request's bearer token (signature, issuer,
   audience or client, expiry) before anything else runs; a token's ``agent_claim`` claim (``sub``
   by default) names the agent.
2. This **interceptor** Lambda runs at both interception points with the request headers passed to
   it. On REQUEST, a ``tools/call`` of a toolrt tool the caller may not run is answered here with
   the same JSON-RPC error as a tool that does not exist (the target is never invoked); an allowed
   call gets the caller's agent written into the reserved ``__toolrt_caller`` argument, replacing
   whatever the client put there. On RESPONSE, ``tools/list`` (and the gateway's built-in search
   tool) keep only the tools the caller may discover.
3. The **router** (:mod:`toolrt.adapters.aws.lambda_router`) refuses calls without a caller and
   checks owner and visibility again, so a gap in one layer does not open a tenant's tools.

Why not a gateway per agent: gateways are an account quota (and a provisioning step per agent), and
public tools would be published N times. Why not IAM alone: with ``AWS_IAM`` any principal allowed
``InvokeGateway`` sees every target, and nothing maps a principal to an agent.

The token is decoded, not verified, here: the gateway has verified it before the interceptor runs,
and the interceptor is reachable only through the gateway (its resource policy names the gateway's
role). Lookups use the tool repository (DynamoDB), the same records the runtime writes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from toolrt.adapters.aws.gateway import (
    TOOL_NAME_DELIMITER,
    gateway_tool_name,
    published_name,
    split_gateway_tool_name,
)
from toolrt.adapters.aws.lambda_router import CALLER_ARGUMENT
from toolrt.application.access import may_execute
from toolrt.application.logs import get_logger
from toolrt.domain import NotFoundError, Tool, ToolRuntimeError
from toolrt.ports import ToolQuery, ToolRepository

log = get_logger(__name__)

OUTPUT_VERSION = "1.0"
DEFAULT_AGENT_CLAIM = "sub"
# The gateway's own semantic search tool (when search is enabled on the gateway): its results list
# tools too, and are filtered like tools/list.
SEARCH_TOOL = "x_amz_bedrock_agentcore_search"
# JSON-RPC "invalid params", the code MCP servers answer an unknown tool with.
UNKNOWN_TOOL = -32602
MAX_LISTED = 100_000


def agent_from_headers(headers: Mapping[str, Any], claim: str = DEFAULT_AGENT_CLAIM) -> str | None:
    """The agent named by the bearer token's ``claim``, or ``None`` when there is no usable token."""
    value = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
    if not isinstance(value, str) or not value.lower().startswith("bearer "):
        return None
    parts = value[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    agent = payload.get(claim) if isinstance(payload, dict) else None
    return agent if isinstance(agent, str) and agent else None


class GatewayInterceptor:
    """The REQUEST and RESPONSE interceptor of a toolrt gateway (see the module's docstring).

    ``repository`` holds the tool records; ``agent_claim`` names the token claim that is the agent.
    Calling it with an interceptor event returns the interceptor output the gateway expects.
    """

    def __init__(self, repository: ToolRepository, *, agent_claim: str = DEFAULT_AGENT_CLAIM) -> None:
        self._repository = repository
        self._claim = agent_claim

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        mcp = event.get("mcp") or {}
        request = mcp.get("gatewayRequest") or {}
        body = _dict(request.get("body"))
        agent = agent_from_headers(request.get("headers") or {}, self._claim)
        if "gatewayResponse" in mcp:
            return self._on_response(agent, body, mcp.get("gatewayResponse") or {})
        return self._on_request(agent, body)

    # -- REQUEST -------------------------------------------------------------------------------

    def _on_request(self, agent: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("method") != "tools/call":
            return _forward(body)
        params = _dict(body.get("params"))
        name = str(params.get("name", ""))
        if TOOL_NAME_DELIMITER not in name:
            return _forward(body)  # not a toolrt tool (the gateway's search tool, for one)
        tool = self._tool(name)
        if agent is None or tool is None or not may_execute(self._repository, tool, agent):
            log.info("interceptor.denied", gateway_tool=name, agent_id=agent or "")
            return _answer(
                200,
                {
                    "jsonrpc": "2.0",
                    "id": body.get("id"),
                    "error": {"code": UNKNOWN_TOOL, "message": f"Unknown tool: {name}"},
                },
            )
        arguments = _dict(params.get("arguments"))
        forwarded = {**body, "params": {**params, "arguments": {**arguments, CALLER_ARGUMENT: agent}}}
        return _forward(forwarded)

    # -- RESPONSE ------------------------------------------------------------------------------

    def _on_response(self, agent: str | None, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        status = response.get("statusCode", 200)
        body = response.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            return _answer(status, body)
        method = request.get("method")
        params = _dict(request.get("params"))
        if method == "tools/list":
            result = body["result"]
            result = {**result, "tools": self._visible(agent, result.get("tools"))}
            return _answer(status, {**body, "result": result})
        if method == "tools/call" and params.get("name") == SEARCH_TOOL:
            return _answer(status, {**body, "result": self._filter_search(agent, body["result"])})
        return _answer(status, body)

    def _filter_search(self, agent: str | None, result: dict[str, Any]) -> dict[str, Any]:
        filtered = dict(result)
        structured = result.get("structuredContent")
        if isinstance(structured, dict) and "tools" in structured:
            filtered["structuredContent"] = {**structured, "tools": self._visible(agent, structured["tools"])}
        content = []
        for block in result.get("content") or []:
            text = block.get("text") if isinstance(block, dict) else None
            try:
                doc = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "tools" in doc:
                block = {**block, "text": json.dumps({**doc, "tools": self._visible(agent, doc["tools"])})}
            content.append(block)
        if "content" in result:
            filtered["content"] = content
        return filtered

    def _visible(self, agent: str | None, tools: Any) -> list[Any]:
        """The listed tools ``agent`` may discover; tools that are not toolrt's pass unchanged."""
        if not isinstance(tools, list):
            return []
        names = self._discoverable_names(agent) if agent is not None else set()
        kept = []
        for item in tools:
            name = str(item.get("name", "")) if isinstance(item, dict) else ""
            if TOOL_NAME_DELIMITER not in name or name in names:
                kept.append(item)
        return kept

    def _discoverable_names(self, agent: str) -> set[str]:
        teams = self._repository.teams_of(agent)
        found = self._repository.list(ToolQuery(visible_to=agent, teams=teams, limit=MAX_LISTED))
        return {gateway_tool_name(tool) for tool in found}

    def _tool(self, name: str) -> Tool | None:
        try:
            tool_id, published = split_gateway_tool_name(name)
            tool = self._repository.get(tool_id)
        except NotFoundError:
            return None
        if not tool.is_active or published_name(tool) != published:
            return None
        return tool


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _forward(body: Any) -> dict[str, Any]:
    return {"interceptorOutputVersion": OUTPUT_VERSION, "mcp": {"transformedGatewayRequest": {"body": body}}}


def _answer(status: Any, body: Any) -> dict[str, Any]:
    return {
        "interceptorOutputVersion": OUTPUT_VERSION,
        "mcp": {"transformedGatewayResponse": {"statusCode": status, "body": body}},
    }


_interceptor: GatewayInterceptor | None = None


def build_interceptor_from_env(environ: Mapping[str, str] | None = None) -> GatewayInterceptor:
    """An interceptor over the DynamoDB table named by ``TOOLRT_DYNAMODB_TABLE``."""
    import os

    from toolrt.adapters.aws.clients import clients_from_env
    from toolrt.adapters.aws.repository import DynamoDbToolRepository

    env = os.environ if environ is None else environ
    clients = clients_from_env(env)
    return GatewayInterceptor(
        DynamoDbToolRepository(clients.dynamodb, env.get("TOOLRT_DYNAMODB_TABLE", "toolrt")),
        agent_claim=env.get("TOOLRT_AGENT_CLAIM", DEFAULT_AGENT_CLAIM),
    )


def handler(
    event: Any, context: Any, *, factory: Callable[[], GatewayInterceptor] = build_interceptor_from_env
) -> dict[str, Any]:
    """The interceptor Lambda's entry point; a lookup failure denies (fails closed)."""
    global _interceptor
    if _interceptor is None:
        _interceptor = factory()
    try:
        return _interceptor(event, context)
    except ToolRuntimeError as exc:
        log.warning("interceptor.failed", error=str(exc), error_type=type(exc).__name__)
        request = ((event or {}).get("mcp") or {}).get("gatewayRequest") or {}
        body = _dict(request.get("body"))
        return _answer(
            200,
            {
                "jsonrpc": "2.0",
                "id": body.get("id"),
                "error": {"code": -32603, "message": "toolrt: lookup failed; retry"},
            },
        )
