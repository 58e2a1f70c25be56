"""Tenancy through the gateway path: agent A can neither list nor call agent B's private tools.

The tool records live in DynamoDB and the targets on AgentCore's control plane (a moto server over
HTTP); tokens come from an identity provider on the loopback interface. The gateway's request path is
played by ``SimulatedGateway`` with toolrt's own interceptor and router, events shaped as AgentCore
sends them, and arguments the published schema does not declare dropped on the way to the Lambda.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.aws.conftest import LAMBDA_ARN, REGION
from tests.integration.aws.gateway_sim import EchoSandbox, LambdaContext, SimulatedGateway
from tests.integration.aws.idp import LoopbackIdentityProvider
from toolrt.adapters.aws import AgentCoreGateway, DynamoDbToolRepository, S3ArtifactStore, make_clients, provision
from toolrt.adapters.aws.gateway import inline_tool_name
from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT
from toolrt.adapters.aws.interceptor import GatewayInterceptor
from toolrt.adapters.aws.lambda_router import LambdaRouter
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, Tool, ValidationReport, Visibility

pytestmark = pytest.mark.aws

ROLE = "arn:aws:iam::123456789012:role/toolrt-gateway"
INTERCEPTOR = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-interceptor"


class Fleet:
    def __init__(self, endpoint: str, idp: LoopbackIdentityProvider) -> None:
        clients = make_clients(REGION, endpoint)
        made = provision(
            dynamodb=clients.dynamodb,
            s3=clients.s3,
            region=REGION,
            agentcore_control=clients.agentcore_control,
            gateway_role_arn=ROLE,
            interceptor_arn=INTERCEPTOR,
            jwt=idp.authorizer(),
        )
        assert made.gateway_id
        self.idp = idp
        self.repo = DynamoDbToolRepository(clients.dynamodb, "toolrt")
        self.store = S3ArtifactStore(clients.s3, "toolrt-artifacts")
        self.publisher = AgentCoreGateway(clients.agentcore_control, made.gateway_id, LAMBDA_ARN, ready_timeout_s=0)
        self.sandbox = EchoSandbox()
        self.router = LambdaRouter(self.repo, self.store, self.sandbox, verifier=idp.verifier())
        self.gateway = SimulatedGateway(
            GatewayInterceptor(self.repo, idp.verifier()), self.router, clients.agentcore_control, made.gateway_id
        )
        self.a_private = self.add("tool-" + "a" * 32, "agent-a", "a_secret", Visibility.PRIVATE)
        self.b_private = self.add("tool-" + "b" * 32, "agent-b", "b_secret", Visibility.PRIVATE)
        self.b_public = self.add("tool-" + "c" * 32, "agent-b", "b_shared", Visibility.PUBLIC)

    def add(self, tool_id: str, owner: str, name: str, visibility: Visibility, team: str | None = None) -> Tool:
        tool = b.tool(tool_id, owner=owner, name=name, visibility=visibility, team=team).with_version(
            b.definition(name, input_schema={"type": "object", "properties": {"x": {"type": "integer"}}}), b.T0
        )
        d = tool.definition
        self.store.put(
            Artifact(tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p"), b.T0)
        )
        self.repo.add(tool)
        ref = self.publisher.register(tool)
        published = tool.with_gateway_ref(ref, b.T0)
        self.repo.save(published)
        return published

    def name(self, tool: Tool) -> str:
        """The name agents see for ``tool`` (its shard is the target the publisher put it on)."""
        return next(n for n in self.gateway.catalog() if n.endswith("___" + inline_tool_name(tool)))

    def listed(self, bearer: str | None) -> set[str]:
        return {t["name"] for t in self.gateway.request(bearer, "tools/list")["result"]["tools"]}

    def call(self, bearer: str | None, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.gateway.request(bearer, "tools/call", {"name": self.name(tool), "arguments": arguments})

    def direct(self, tool: Tool, event: dict[str, Any]) -> Any:
        """Invoke the router as any principal allowed lambda:InvokeFunction could: no gateway, no interceptor."""
        return self.router(event, LambdaContext(self.name(tool)))


@pytest.fixture
def fleet(aws_endpoint: str, idp: LoopbackIdentityProvider) -> Fleet:
    return Fleet(aws_endpoint, idp)


def test_an_agent_lists_its_own_tools_and_public_ones_only(fleet: Fleet) -> None:
    """tools/list through the gateway: A sees its private tool and B's public one, never B's private one;
    no listed schema shows the reserved identity argument."""
    a, b_ = fleet.idp.token("agent-a"), fleet.idp.token("agent-b")
    assert fleet.listed(a) == {fleet.name(fleet.a_private), fleet.name(fleet.b_public)}
    assert fleet.listed(b_) == {fleet.name(fleet.b_private), fleet.name(fleet.b_public)}
    assert fleet.listed(None) == set()
    listed = fleet.gateway.request(a, "tools/list")["result"]["tools"]
    assert all(IDENTITY_ARGUMENT not in json.dumps(t) for t in listed)
    assert {t["inputSchema"]["properties"].keys() == {"x"} for t in listed} == {True}


def test_an_agent_cannot_call_another_agents_private_tool(fleet: Fleet) -> None:
    """A's call of B's private tool is answered like an unknown tool, and B's code never runs."""
    a = fleet.idp.token("agent-a")
    denied = fleet.call(a, fleet.b_private, {"x": 1})
    assert denied["error"]["message"] == f"Unknown tool: {fleet.name(fleet.b_private)}"
    missing = fleet.gateway.request(a, "tools/call", {"name": "s0___u" + "2" * 26 + "_nothing", "arguments": {}})
    assert missing["error"]["code"] == denied["error"]["code"]  # indistinguishable from a missing tool
    assert fleet.sandbox.requests == []


def test_the_caller_reaches_the_router_through_a_declared_argument(fleet: Fleet) -> None:
    """The gateway drops undeclared arguments; the identity argument is declared, so an allowed call runs
    as the token's agent, and what a client put in the reserved argument is replaced by its own token."""
    a, b_token = fleet.idp.token("agent-a"), fleet.idp.token("agent-b")
    ok = fleet.call(a, fleet.b_public, {"x": 1, "stray": True, IDENTITY_ARGUMENT: b_token})
    output = json.loads(ok["result"]["content"][0]["text"])
    assert output == {"echo": {"x": 1}}  # the reserved argument never reaches the tool
    assert fleet.gateway.dropped == ["stray"]
    assert fleet.sandbox.requests[-1].tenant == "agent-a"
    assert fleet.gateway.router_events[-1][IDENTITY_ARGUMENT] == a


def test_calls_without_a_valid_token_are_refused(fleet: Fleet) -> None:
    """Without a token, with a malformed one, or one signed by another key, nothing can be called."""
    from tests.integration.aws.idp import new_key

    forged = fleet.idp.token("agent-b", key=new_key())
    for bearer in (None, "not-a-jwt", forged, fleet.idp.token("agent-b", expires_in=-3600)):
        assert "error" in fleet.call(bearer, fleet.b_public, {"x": 1})
        assert fleet.listed(bearer) == set()
    assert fleet.sandbox.requests == []


def test_the_router_verifies_the_caller_itself(fleet: Fleet) -> None:
    """Invoked directly (no gateway, no interceptor): no token, a made-up caller, or a token of another
    key runs nothing; a valid token of an agent that may not run the tool finds nothing; the owner's runs."""
    from tests.integration.aws.idp import new_key

    tool = fleet.b_private
    assert "no caller identity" in fleet.direct(tool, {"x": 1})["error"]["message"]
    assert fleet.direct(tool, {"x": 1, "__toolrt_caller": "agent-b"})["status"] == "failed"
    forged = fleet.direct(tool, {"x": 1, IDENTITY_ARGUMENT: fleet.idp.token("agent-b", key=new_key())})
    assert forged["status"] == "failed" and "not valid" in forged["error"]["message"]
    other = fleet.direct(tool, {"x": 1, IDENTITY_ARGUMENT: fleet.idp.token("agent-a")})
    assert other["error"]["type"] == "NotFoundError"
    assert fleet.sandbox.requests == []
    owner = fleet.direct(tool, {"x": 1, IDENTITY_ARGUMENT: fleet.idp.token("agent-b")})
    assert owner == {"echo": {"x": 1}}
    assert [r.tenant for r in fleet.sandbox.requests] == ["agent-b"]


def test_a_team_tool_reaches_its_members_only_through_the_gateway(fleet: Fleet) -> None:
    """B's team tool: A lists and runs it while in the team, and meets an unknown tool otherwise;
    the router refuses a caller outside the team even when the interceptor is skipped."""
    a = fleet.idp.token("agent-a")
    team_tool = fleet.add("tool-" + "d" * 32, "agent-b", "b_team", Visibility.TEAM, team="red")
    name = fleet.name(team_tool)
    assert name not in fleet.listed(a)
    denied = fleet.call(a, team_tool, {"x": 1})
    assert denied["error"]["message"] == f"Unknown tool: {name}" and fleet.sandbox.requests == []
    outside = fleet.direct(team_tool, {"x": 1, IDENTITY_ARGUMENT: a})
    assert outside["error"]["type"] == "NotFoundError" and fleet.sandbox.requests == []
    fleet.repo.add_team_member("red", "agent-a")
    assert name in fleet.listed(a)
    assert fleet.call(a, team_tool, {"x": 1})["result"] is not None
    assert [r.tenant for r in fleet.sandbox.requests] == ["agent-a"]
    fleet.repo.remove_team_member("red", "agent-a")
    assert name not in fleet.listed(a)
    assert "error" in fleet.call(a, team_tool, {"x": 1}) and len(fleet.sandbox.requests) == 1


def test_the_router_leaves_the_lambda_time_to_stop_a_slow_tool(fleet: Fleet) -> None:
    """A tool's timeout is cut to the invocation's remaining time less a margin, never past it."""
    name = fleet.name(fleet.b_public)
    caller = {IDENTITY_ARGUMENT: fleet.idp.token("agent-a")}
    fleet.router(caller, LambdaContext(name, remaining_ms=20_000))
    assert fleet.sandbox.requests[-1].timeout_s == pytest.approx(5.0)
    late = fleet.router(caller, LambdaContext(name, remaining_ms=10_000))
    assert late["status"] == "failed" and "too little" in late["error"]["message"]


def _search(interceptor: GatewayInterceptor, bearer: str, result: Any) -> Any:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x_amz_bedrock_agentcore_search"}}
    event = {
        "mcp": {
            "gatewayRequest": {"headers": {"authorization": f"Bearer {bearer}"}, "body": request},
            "gatewayResponse": {"statusCode": 200, "body": {"jsonrpc": "2.0", "id": 1, "result": result}},
        }
    }
    return interceptor(event)["mcp"]["transformedGatewayResponse"]["body"]["result"]


def test_the_search_tools_results_are_filtered_too(fleet: Fleet) -> None:
    """The gateway's built-in search returns tools as well: B's private tool is removed for A."""
    interceptor = GatewayInterceptor(fleet.repo, fleet.idp.verifier())
    found = [{"name": fleet.name(t)} for t in (fleet.a_private, fleet.b_private, fleet.b_public)]
    result = _search(
        interceptor,
        fleet.idp.token("agent-a"),
        {"structuredContent": {"tools": found}, "content": [{"type": "text", "text": json.dumps({"tools": found})}]},
    )
    expected = [{"name": fleet.name(fleet.a_private)}, {"name": fleet.name(fleet.b_public)}]
    assert result["structuredContent"]["tools"] == expected
    assert json.loads(result["content"][0]["text"])["tools"] == expected


@pytest.mark.parametrize(
    "shape",
    [
        "list",  # a JSON list of tools in a text block (once leaked a private name)
        "text",  # prose naming the tools
        "nested",  # tools under another key
        "resource",  # a non-text block
        "structured-list",  # structuredContent that is not an object with tools
    ],
)
def test_search_results_of_shapes_not_understood_show_no_tool(fleet: Fleet, shape: str) -> None:
    """Filtering fails closed: a search result the interceptor cannot read as a tool list shows no tools,
    so B's private tool's name never reaches A whatever shape the service answers in."""
    secret = fleet.name(fleet.b_private)
    tools = [{"name": secret}, {"name": fleet.name(fleet.b_public)}]
    results = {
        "list": {"content": [{"type": "text", "text": json.dumps(tools)}]},
        "text": {"content": [{"type": "text", "text": f"Found: {secret}, and more"}]},
        "nested": {"content": [{"type": "text", "text": json.dumps({"matches": {"tools": tools}})}]},
        "resource": {"content": [{"type": "resource", "resource": {"uri": "x", "text": secret}}]},
        "structured-list": {"structuredContent": tools, "content": []},
    }
    result = _search(GatewayInterceptor(fleet.repo, fleet.idp.verifier()), fleet.idp.token("agent-a"), results[shape])
    assert secret not in json.dumps(result)


def test_a_result_that_is_not_an_object_comes_back_wrapped_as_published(fleet: Fleet) -> None:
    """A tool whose output schema is not an object is published with {"result": ...} (AgentCore wants an
    object at the top); the router answers in that shape, and only for such tools."""
    tool = b.tool("tool-" + "9" * 32, owner="agent-a", name="counted").with_version(
        b.definition("counted", output_schema={"type": "array"}), b.T0
    )
    d = tool.definition
    fleet.store.put(
        Artifact(tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p"), b.T0)
    )
    fleet.repo.add(tool)
    fleet.publisher.register(tool)
    published = fleet.gateway.catalog()[fleet.name(tool)]
    assert published["outputSchema"]["properties"]["result"]["type"] == "array"
    a = fleet.idp.token("agent-a")
    assert fleet.direct(tool, {"a": 1, "b": 2, IDENTITY_ARGUMENT: a}) == {"result": {"echo": {"a": 1, "b": 2}}}
    assert fleet.direct(fleet.a_private, {"x": 1, IDENTITY_ARGUMENT: a}) == {"echo": {"x": 1}}


def test_the_router_checks_parameters_before_any_sandbox_starts(fleet: Fleet) -> None:
    """Parameters that break the tool's input schema are refused by the router as by the runtime,
    naming what was wrong; nothing runs."""
    refused = fleet.direct(fleet.a_private, {"x": "one", IDENTITY_ARGUMENT: fleet.idp.token("agent-a")})
    assert refused["error"]["type"] == "ValidationError" and "x" in refused["error"]["message"]
    assert fleet.sandbox.requests == []
