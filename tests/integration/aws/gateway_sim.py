"""AgentCore Gateway's request path, played with toolrt's own interceptor and router.

The gateway's side follows the AgentCore documentation: the CUSTOM_JWT authorizer has verified the
token; the REQUEST interceptor gets the JSON-RPC body and the headers and either answers or passes a
(possibly rewritten) body on; for ``tools/call`` the target's Lambda gets the arguments as its event
and ``{target}___{tool}`` in its client context; ``tools/list`` merges every target's inline tools;
the RESPONSE interceptor sees the request and the response and returns what the client gets.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from toolrt.adapters.aws.gateway import gateway_tool_name, tool_schema
from toolrt.adapters.aws.interceptor import GatewayInterceptor
from toolrt.adapters.aws.lambda_router import LambdaRouter
from toolrt.domain import ExecutionFailure, ExecutionStatus, Tool
from toolrt.ports import SandboxRequest, SandboxResult


def token(claims: dict[str, Any]) -> str:
    """A JWT-shaped bearer token (the gateway's authorizer, not the interceptor, checks signatures)."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class EchoSandbox:
    """A sandbox double that records each request and answers with its parameters."""

    isolation = "remote"

    def __init__(self) -> None:
        self.requests: list[SandboxRequest] = []

    def supports(self, language: Any) -> bool:
        return True

    def run(self, request: SandboxRequest, cancel: Any = None) -> SandboxResult:
        self.requests.append(request)
        if request.params.get("fail"):
            return SandboxResult(ExecutionStatus.FAILED, error=ExecutionFailure("ValueError", "bad value"))
        return SandboxResult(ExecutionStatus.SUCCEEDED, output={"echo": request.params})

    def close(self) -> None:
        pass


class LambdaContext:
    """The Lambda context AgentCore Gateway invokes a target with."""

    function_name = "toolrt-router"
    aws_request_id = "req-1"

    def __init__(self, tool_name: str, remaining_ms: int = 900_000) -> None:
        self.client_context = type("ClientContext", (), {})()
        self.client_context.custom = {
            "bedrockAgentCoreGatewayId": "gw-1",
            "bedrockAgentCoreTargetId": "target-1",
            "bedrockAgentCoreMessageVersion": "1.0",
            "bedrockAgentCoreToolName": tool_name,
        }
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


class SimulatedGateway:
    """One gateway with the toolrt interceptor at both points and the router behind every target."""

    def __init__(self, interceptor: GatewayInterceptor, router: LambdaRouter, tools: list[Tool]) -> None:
        self.interceptor = interceptor
        self.router = router
        self.tools = tools  # every published tool, whoever owns it
        self.router_events: list[dict[str, Any]] = []

    def request(self, bearer: str | None, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method, **({"params": params} if params else {})}
        gateway_request = {"path": "/mcp", "httpMethod": "POST", "headers": headers, "body": body}
        out = self.interceptor({"interceptorInputVersion": "1.0", "mcp": {"gatewayRequest": gateway_request}})["mcp"]
        if "transformedGatewayResponse" in out:
            response = out["transformedGatewayResponse"]
        else:
            forwarded = out["transformedGatewayRequest"]["body"]
            response = {"statusCode": 200, "body": self._serve(forwarded)}
        final = self.interceptor(
            {
                "interceptorInputVersion": "1.0",
                "mcp": {"gatewayRequest": gateway_request, "gatewayResponse": response},
            }
        )["mcp"]["transformedGatewayResponse"]
        return dict(final["body"])

    def _serve(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["method"] == "tools/list":
            listed = [{**tool_schema(t), "name": gateway_tool_name(t)} for t in self.tools]
            return {"jsonrpc": "2.0", "id": body["id"], "result": {"tools": listed}}
        name, arguments = body["params"]["name"], body["params"].get("arguments", {})
        self.router_events.append(dict(arguments))
        output = self.router(arguments, LambdaContext(name))
        return {
            "jsonrpc": "2.0",
            "id": body["id"],
            "result": {"content": [{"type": "text", "text": json.dumps(output)}]},
        }


__all__ = ["EchoSandbox", "LambdaContext", "SimulatedGateway", "token"]
