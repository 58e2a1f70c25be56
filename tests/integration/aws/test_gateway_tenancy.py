"""Tenancy through the gateway path: agent A can neither list nor call agent B's private tools.

The tool records live in DynamoDB (a moto server over HTTP); the gateway's request path is played by
``SimulatedGateway`` with toolrt's own interceptor and router, events shaped as AgentCore sends them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.aws.conftest import REGION
from tests.integration.aws.gateway_sim import EchoSandbox, LambdaContext, SimulatedGateway, token
from toolrt.adapters.aws import DynamoDbToolRepository, S3ArtifactStore, make_clients, provision
from toolrt.adapters.aws.gateway import gateway_tool_name
from toolrt.adapters.aws.interceptor import GatewayInterceptor, agent_from_headers
from toolrt.adapters.aws.lambda_router import CALLER_ARGUMENT, LambdaRouter
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, Tool, ValidationReport, Visibility

pytestmark = pytest.mark.aws


class Fleet:
    def __init__(self, endpoint: str) -> None:
        clients = make_clients(REGION, endpoint)
        provision(dynamodb=clients.dynamodb, s3=clients.s3, region=REGION)
        self.repo = DynamoDbToolRepository(clients.dynamodb, "toolrt")
        self.store = S3ArtifactStore(clients.s3, "toolrt-artifacts")
        self.a_private = self._add("tool-" + "a" * 32, "agent-a", "a_secret", Visibility.PRIVATE)
        self.b_private = self._add("tool-" + "b" * 32, "agent-b", "b_secret", Visibility.PRIVATE)
        self.b_public = self._add("tool-" + "c" * 32, "agent-b", "b_shared", Visibility.PUBLIC)
        self.sandbox = EchoSandbox()
        self.router = LambdaRouter(self.repo, self.store, self.sandbox)
        self.gateway = SimulatedGateway(
            GatewayInterceptor(self.repo), self.router, [self.a_private, self.b_private, self.b_public]
        )

    def _add(self, tool_id: str, owner: str, name: str, visibility: Visibility, team: str | None = None) -> Tool:
        tool = b.tool(tool_id, owner=owner, name=name, visibility=visibility, team=team)
        d = tool.definition
        self.store.put(
            Artifact(tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p"), b.T0)
        )
        self.repo.add(tool)
        return tool

    def listed(self, bearer: str | None) -> set[str]:
        return {t["name"] for t in self.gateway.request(bearer, "tools/list")["result"]["tools"]}

    def call(self, bearer: str | None, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.gateway.request(bearer, "tools/call", {"name": gateway_tool_name(tool), "arguments": arguments})


@pytest.fixture
def fleet(aws_endpoint: str) -> Fleet:
    return Fleet(aws_endpoint)


A = token({"sub": "agent-a", "iss": "https://issuer.example"})
B = token({"sub": "agent-b", "iss": "https://issuer.example"})


def test_an_agent_lists_its_own_tools_and_public_ones_only(fleet: Fleet) -> None:
    """tools/list through the gateway: A sees its private tool and B's public one, never B's private one."""
    assert fleet.listed(A) == {gateway_tool_name(fleet.a_private), gateway_tool_name(fleet.b_public)}
    assert fleet.listed(B) == {gateway_tool_name(fleet.b_private), gateway_tool_name(fleet.b_public)}
    assert fleet.listed(None) == set()


def test_an_agent_cannot_call_another_agents_private_tool(fleet: Fleet) -> None:
    """A's call of B's private tool is answered like an unknown tool, and B's code never runs."""
    denied = fleet.call(A, fleet.b_private, {"x": 1})
    assert denied["error"]["message"] == f"Unknown tool: {gateway_tool_name(fleet.b_private)}"
    missing = fleet.gateway.request(A, "tools/call", {"name": "u" + "2" * 26 + "___nothing", "arguments": {}})
    assert missing["error"]["code"] == denied["error"]["code"]  # indistinguishable from a missing tool
    assert fleet.sandbox.requests == []


def test_a_forged_caller_argument_is_replaced_by_the_token_identity(fleet: Fleet) -> None:
    """A client that writes __toolrt_caller itself cannot borrow another agent's identity."""
    denied = fleet.call(A, fleet.b_private, {CALLER_ARGUMENT: "agent-b"})
    assert "error" in denied and fleet.sandbox.requests == []
    ok = fleet.call(A, fleet.b_public, {"x": 1, CALLER_ARGUMENT: "agent-b"})
    output = json.loads(ok["result"]["content"][0]["text"])
    assert output == {"echo": {"x": 1}}  # the reserved argument never reaches the tool
    assert fleet.sandbox.requests[-1].tenant == "agent-a"
    assert fleet.gateway.router_events[-1][CALLER_ARGUMENT] == "agent-a"


def test_calls_without_a_token_are_refused(fleet: Fleet) -> None:
    """Without an identity nothing toolrt publishes can be called."""
    assert "error" in fleet.call(None, fleet.b_public, {})
    assert "error" in fleet.call("not-a-jwt", fleet.b_public, {})
    assert fleet.sandbox.requests == []


def test_the_router_checks_again_and_refuses_calls_that_skipped_the_interceptor(fleet: Fleet) -> None:
    """The router alone: no caller is refused; a caller that may not run the tool finds nothing."""
    name = gateway_tool_name(fleet.b_private)
    no_caller = fleet.router({"x": 1}, LambdaContext(name))
    assert no_caller["status"] == "failed" and "interceptor" in no_caller["error"]["message"]
    other = fleet.router({"x": 1, CALLER_ARGUMENT: "agent-a"}, LambdaContext(name))
    assert other["error"]["type"] == "NotFoundError"
    owner = fleet.router({"x": 1, CALLER_ARGUMENT: "agent-b"}, LambdaContext(name))
    assert owner == {"echo": {"x": 1}}
    assert [r.tenant for r in fleet.sandbox.requests] == ["agent-b"]


def test_a_team_tool_reaches_its_members_only_through_the_gateway(fleet: Fleet) -> None:
    """B's team tool: A lists and runs it while in the team, and meets an unknown tool otherwise;
    the router refuses a caller outside the team even when the interceptor is skipped."""
    team_tool = fleet._add("tool-" + "d" * 32, "agent-b", "b_team", Visibility.TEAM, team="red")
    fleet.gateway.tools.append(team_tool)
    name = gateway_tool_name(team_tool)
    assert name not in fleet.listed(A)
    denied = fleet.call(A, team_tool, {"x": 1})
    assert denied["error"]["message"] == f"Unknown tool: {name}" and fleet.sandbox.requests == []
    outside = fleet.router({"x": 1, CALLER_ARGUMENT: "agent-a"}, LambdaContext(name))
    assert outside["error"]["type"] == "NotFoundError" and fleet.sandbox.requests == []
    fleet.repo.add_team_member("red", "agent-a")
    assert name in fleet.listed(A)
    assert fleet.call(A, team_tool, {"x": 1})["result"] is not None
    assert [r.tenant for r in fleet.sandbox.requests] == ["agent-a"]
    fleet.repo.remove_team_member("red", "agent-a")
    assert name not in fleet.listed(A)
    assert "error" in fleet.call(A, team_tool, {"x": 1}) and len(fleet.sandbox.requests) == 1


def test_the_router_leaves_the_lambda_time_to_stop_a_slow_tool(fleet: Fleet) -> None:
    """A tool's timeout is cut to the invocation's remaining time less a margin, never past it."""
    name = gateway_tool_name(fleet.b_public)
    fleet.router({CALLER_ARGUMENT: "agent-a"}, LambdaContext(name, remaining_ms=20_000))
    assert fleet.sandbox.requests[-1].timeout_s == pytest.approx(5.0)
    late = fleet.router({CALLER_ARGUMENT: "agent-a"}, LambdaContext(name, remaining_ms=10_000))
    assert late["status"] == "failed" and "too little" in late["error"]["message"]


def test_the_search_tools_results_are_filtered_too(fleet: Fleet) -> None:
    """The gateway's built-in search returns tools as well: B's private tool is removed for A."""
    interceptor = GatewayInterceptor(fleet.repo)
    found = [{"name": gateway_tool_name(t)} for t in (fleet.a_private, fleet.b_private, fleet.b_public)]
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x_amz_bedrock_agentcore_search"}}
    response = {
        "statusCode": 200,
        "body": {
            "jsonrpc": "2.0",
            "id": 1,
            "result": {
                "structuredContent": {"tools": found},
                "content": [{"type": "text", "text": json.dumps({"tools": found})}],
            },
        },
    }
    event = {
        "mcp": {
            "gatewayRequest": {"headers": {"authorization": f"Bearer {A}"}, "body": request},
            "gatewayResponse": response,
        }
    }
    result = interceptor(event)["mcp"]["transformedGatewayResponse"]["body"]["result"]
    expected = [{"name": gateway_tool_name(fleet.a_private)}, {"name": gateway_tool_name(fleet.b_public)}]
    assert result["structuredContent"]["tools"] == expected
    assert json.loads(result["content"][0]["text"])["tools"] == expected


def test_agent_claim_is_configurable() -> None:
    """The claim naming the agent can be another than sub (a custom claim of the identity provider)."""
    bearer = token({"sub": "client-123", "toolrt_agent": "agent-z"})
    assert agent_from_headers({"Authorization": f"Bearer {bearer}"}) == "client-123"
    assert agent_from_headers({"authorization": f"bearer {bearer}"}, "toolrt_agent") == "agent-z"
    assert agent_from_headers({"Authorization": "Basic abc"}) is None
