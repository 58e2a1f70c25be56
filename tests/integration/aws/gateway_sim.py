"""AgentCore Gateway's request path, played with toolrt's own interceptor and router.

The gateway's side follows the AgentCore documentation, and where it is silent takes the stricter
reading: the REQUEST interceptor gets the JSON-RPC body and the headers and either answers or passes a
(possibly rewritten) body on; ``tools/list`` merges the inline tools of every target the control plane
holds (read from it: what ``AgentCoreGateway`` really published), named ``{target}___{tool}``; for
``tools/call`` the target's Lambda gets, as its event, only the arguments the tool's published input
schema declares (AWS documents the event as "a map of properties from the inputSchema to their
values": anything else is dropped), and ``{target}___{tool}`` in its client context; the RESPONSE
interceptor sees the request and the response and returns what the client gets. No authorizer runs
before the interceptor (AWS does not document the order), so the interceptor must verify tokens itself.
"""

from __future__ import annotations

import json
from typing import Any

from toolrt.adapters.aws.interceptor import GatewayInterceptor
from toolrt.adapters.aws.lambda_router import LambdaRouter
from toolrt.domain import ExecutionFailure, ExecutionStatus, IsolationLevel
from toolrt.ports import SandboxRequest, SandboxResult


class EchoSandbox:
    """A sandbox double that records each request and answers with its parameters."""

    isolation = IsolationLevel.REMOTE

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
    """One gateway (``gateway_id`` on the control plane ``control``) with the toolrt interceptor at
    both points and the router behind every toolrt target."""

    def __init__(self, interceptor: GatewayInterceptor, router: LambdaRouter, control: Any, gateway_id: str) -> None:
        self.interceptor = interceptor
        self.router = router
        self.control = control
        self.gateway_id = gateway_id
        self.router_events: list[dict[str, Any]] = []
        self.dropped: list[str] = []

    def catalog(self) -> dict[str, dict[str, Any]]:
        """Every tool the gateway lists, by its full name, as the targets define it now."""
        tools: dict[str, dict[str, Any]] = {}
        pages = self.control.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=self.gateway_id)
        for summary in (item for page in pages for item in page["items"]):
            target = self.control.get_gateway_target(gatewayIdentifier=self.gateway_id, targetId=summary["targetId"])
            lam = target["targetConfiguration"]["mcp"]["lambda"]
            for definition in lam["toolSchema"]["inlinePayload"]:
                full = f"{target['name']}___{definition['name']}"
                assert len(full) <= 64, full  # what the gateway (and Bedrock, OpenAI) accept
                tools[full] = definition
        return tools

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
        catalog = self.catalog()
        if body["method"] == "tools/list":
            listed = [{**definition, "name": name} for name, definition in catalog.items()]
            return {"jsonrpc": "2.0", "id": body["id"], "result": {"tools": listed}}
        name, arguments = body["params"]["name"], body["params"].get("arguments", {})
        definition = catalog.get(name)
        if definition is None:
            return {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32602, "message": f"Unknown tool: {name}"}}
        declared = definition["inputSchema"].get("properties") or {}
        self.dropped += [k for k in arguments if k not in declared]
        event = {k: v for k, v in arguments.items() if k in declared}
        self.router_events.append(dict(event))
        output = self.router(event, LambdaContext(name))
        return {
            "jsonrpc": "2.0",
            "id": body["id"],
            "result": {"content": [{"type": "text", "text": json.dumps(output)}]},
        }


__all__ = ["EchoSandbox", "LambdaContext", "SimulatedGateway"]
