"""The gateway interceptor: who is calling, which tools they may list, and which they may call.

AgentCore Gateway merges the tools of all its targets into one ``tools/list`` and hands a target's
Lambda nothing about the caller. toolrt's tenancy on AWS rests on checks that each stand on their
own, so that no single piece has to be trusted for the others:

1. The gateway's **CUSTOM_JWT authorizer** verifies every request's bearer token before anything else.
2. This **interceptor** Lambda runs at both interception points with the request headers, and
   verifies the token again itself (:class:`~toolrt.adapters.aws.identity.JwtVerifier`: signature
   against the provider's keys, issuer, audience or client or scope, expiry): AWS does not document
   that the authorizer runs before interceptors, nor that an interceptor can be reached only through
   the gateway. On REQUEST, a ``tools/call`` of a toolrt tool the caller may not run is answered here
   with the same JSON-RPC error as a tool that does not exist (the target is never invoked); an
   allowed call gets the verified token written into the reserved identity argument, replacing
   whatever the client put there. On RESPONSE, ``tools/list`` and the gateway's built-in search keep
   only the tools the caller may discover, without the reserved argument; a search result of a shape
   this code does not understand is answered with no tools (it fails closed).
3. The **router** (:mod:`toolrt.adapters.aws.lambda_router`) verifies the token in that argument
   itself and checks owner and visibility again: invoking it directly with a made-up caller runs
   nothing.

Why not a gateway per agent: gateways are an account quota (and a provisioning step per agent), and
public tools would be published N times. Why not IAM alone: with ``AWS_IAM`` any principal allowed
``InvokeGateway`` sees every target, and nothing maps a principal to an agent. Lookups use the tool
repository (DynamoDB), the same records the runtime writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from toolrt.adapters.aws.gateway import (
    TOOL_NAME_DELIMITER,
    is_shard,
    published_name,
    split_gateway_tool_name,
    without_identity,
)
from toolrt.adapters.aws.identity import (
    IDENTITY_ARGUMENT,
    CallerVerifier,
    JwtAuthorizer,
    JwtVerifier,
    TokenRejected,
    bearer_token,
)
from toolrt.application.access import may_execute
from toolrt.domain import NotFoundError, Tool, ToolRuntimeError
from toolrt.logs import get_logger
from toolrt.ports import ToolQuery, ToolRepository

log = get_logger(__name__)

OUTPUT_VERSION = "1.0"
# The gateway's own semantic search tool (when search is enabled on the gateway): its results list
# tools too, and are filtered like tools/list.
SEARCH_TOOL = "x_amz_bedrock_agentcore_search"
# JSON-RPC "invalid params", the code MCP servers answer an unknown tool with.
UNKNOWN_TOOL = -32602
MAX_LISTED = 100_000


class GatewayInterceptor:
    """The REQUEST and RESPONSE interceptor of a toolrt gateway (see the module's docstring).

    ``repository`` holds the tool records; ``verifier`` turns the request's bearer token into the
    agent it names. Calling it with an interceptor event returns the interceptor output the gateway
    expects.
    """

    def __init__(self, repository: ToolRepository, verifier: CallerVerifier) -> None:
        self._repository = repository
        self._verifier = verifier

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        mcp = event.get("mcp") or {}
        request = mcp.get("gatewayRequest") or {}
        body = _dict(request.get("body"))
        token = bearer_token(_dict(request.get("headers")))
        if "gatewayResponse" in mcp:
            return self._on_response(token, body, mcp.get("gatewayResponse") or {})
        return self._on_request(token, body)

    def _agent(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._verifier.agent_of(token)
        except TokenRejected as exc:
            log.info("interceptor.token_rejected", reason=str(exc))
            return None

    # -- REQUEST -------------------------------------------------------------------------------

    def _on_request(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("method") != "tools/call":
            return _forward(body)
        params = _dict(body.get("params"))
        name = str(params.get("name", ""))
        if not _is_toolrt_name(name):
            return _forward(body)  # not a toolrt tool (the gateway's search tool, for one)
        agent = self._agent(token)
        tool = self._tool(name)
        if agent is None or token is None or tool is None or not may_execute(self._repository, tool, agent):
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
        forwarded = {**body, "params": {**params, "arguments": {**arguments, IDENTITY_ARGUMENT: token}}}
        return _forward(forwarded)

    # -- RESPONSE ------------------------------------------------------------------------------

    def _on_response(self, token: str | None, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        status = response.get("statusCode", 200)
        body = response.get("body")
        method = request.get("method")
        params = _dict(request.get("params"))
        listing = method == "tools/list" or (method == "tools/call" and params.get("name") == SEARCH_TOOL)
        if not listing:
            return _answer(status, body)
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            # An error answer lists nothing; a result of a shape not understood is not shown.
            if isinstance(body, dict) and "error" in body and "result" not in body:
                return _answer(status, body)
            return _answer(status, _no_tools(body))
        agent = self._agent(token)
        if method == "tools/list":
            # The tools the caller may see, and the page cursor; nothing else of the result passes.
            cursor = body["result"].get("nextCursor")
            result: dict[str, Any] = {"tools": self._visible(agent, body["result"].get("tools"))}
            if isinstance(cursor, str):
                result["nextCursor"] = cursor
            return _answer(status, {**body, "result": result})
        return _answer(status, {**body, "result": self._filter_search(agent, body["result"])})

    def _filter_search(self, agent: str | None, result: dict[str, Any]) -> dict[str, Any]:
        """The search result with only the tools ``agent`` may discover. Tools are read from
        ``structuredContent.tools`` and from text blocks holding a JSON object with ``tools``; any
        other block, field or shape is dropped, and a result with nothing understood lists no tools."""
        visible = self._visible_names(agent)
        # Only fields known to hold no tool names pass as they are.
        filtered: dict[str, Any] = {k: v for k, v in result.items() if k == "isError" and isinstance(v, bool)}
        understood = False
        structured = result.get("structuredContent")
        if isinstance(structured, dict) and isinstance(structured.get("tools"), list):
            filtered["structuredContent"] = {"tools": _kept(structured["tools"], visible)}
            understood = True
        content = []
        for block in result.get("content") or []:
            text = block.get("text") if isinstance(block, dict) and block.get("type") == "text" else None
            try:
                doc = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("tools"), list):
                content.append({"type": "text", "text": json.dumps({"tools": _kept(doc["tools"], visible)})})
                understood = True
            else:
                log.info("interceptor.search_block_dropped", kind=type(doc).__name__ if doc is not None else "text")
        if not understood:
            return {**filtered, "content": [{"type": "text", "text": json.dumps({"tools": []})}]}
        filtered["content"] = content
        return filtered

    def _visible(self, agent: str | None, tools: Any) -> list[Any]:
        """The listed tools ``agent`` may discover, without the reserved argument."""
        return _kept(tools, self._visible_names(agent))

    def _visible_names(self, agent: str | None) -> set[tuple[str, str]]:
        if agent is None:
            return set()
        teams = self._repository.teams_of(agent)
        found = self._repository.list(ToolQuery(visible_to=agent, teams=teams, limit=MAX_LISTED))
        return {(tool.tool_id, published_name(tool)) for tool in found}

    def _tool(self, name: str) -> Tool | None:
        try:
            tool_id, published = split_gateway_tool_name(name)
            tool = self._repository.get(tool_id)
        except NotFoundError:
            return None
        if not tool.is_active or published_name(tool) != published:
            return None
        return tool


def _is_toolrt_name(name: str) -> bool:
    target, sep, _ = name.partition(TOOL_NAME_DELIMITER)
    return bool(sep) and is_shard(target)


def _kept(tools: Any, visible: set[tuple[str, str]]) -> list[Any]:
    """The items of a tool listing that are visible: toolrt tools in ``visible``, and tools of other
    targets (named without a toolrt shard); anything unreadable is dropped."""
    if not isinstance(tools, list):
        return []
    kept = []
    for item in tools:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if not _is_toolrt_name(name):
            kept.append(item)
            continue
        try:
            if split_gateway_tool_name(name) in visible:
                kept.append(without_identity(item))
        except NotFoundError:
            continue
    return kept


def _no_tools(body: Any) -> dict[str, Any]:
    request_id = body.get("id") if isinstance(body, dict) else None
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"tools": [], "content": [{"type": "text", "text": json.dumps({"tools": []})}]},
    }


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
    """An interceptor over the DynamoDB table named by ``TOOLRT_DYNAMODB_TABLE``, verifying tokens
    against the provider named by ``TOOLRT_JWT_*`` (see :meth:`JwtAuthorizer.from_environment`)."""
    import os

    from toolrt.adapters.aws.clients import clients_from_env
    from toolrt.adapters.aws.repository import DynamoDbToolRepository

    env = os.environ if environ is None else environ
    clients = clients_from_env(env)
    return GatewayInterceptor(
        DynamoDbToolRepository(clients.dynamodb, env.get("TOOLRT_DYNAMODB_TABLE", "toolrt")),
        JwtVerifier(JwtAuthorizer.from_environment(env)),
    )


def handler(
    event: Any, context: Any, *, factory: Callable[[], GatewayInterceptor] = build_interceptor_from_env
) -> dict[str, Any]:
    """The interceptor Lambda's entry point; a lookup or verification failure denies (fails closed)."""
    global _interceptor
    try:
        if _interceptor is None:
            _interceptor = factory()
        return _interceptor(event, context)
    except ToolRuntimeError as exc:
        log.warning("interceptor.failed", error=str(exc), error_type=type(exc).__name__)
        mcp = _dict(event.get("mcp")) if isinstance(event, Mapping) else {}
        body = _dict(_dict(mcp.get("gatewayRequest")).get("body"))
        if "gatewayResponse" in mcp:
            # A listing that cannot be filtered is not shown at all.
            return _answer(200, _no_tools(body))
        return _answer(
            200,
            {
                "jsonrpc": "2.0",
                "id": body.get("id"),
                "error": {"code": -32603, "message": "toolrt: the caller could not be checked now; retry"},
            },
        )
