"""Every permission the functions use is granted, by provisioning and by the template alike, and no more.

The router and interceptor are built from the environment provisioning gave them (over a moto server)
and driven through what they do: an owner's, a public and a team tool's call, listings and search,
with the system and a custom Code Interpreter. Each AWS call they make is recorded and turned into
the IAM action and resource it needs; the roles ``toolrt aws provision`` made and the roles of
``deploy/cloudformation.yaml`` (resolved for the same parameters) must allow each one, and grant
nothing the functions never use (CloudWatch Logs aside). Code Interpreter ARNs must match
botocore's model.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest

import toolrt
from tests.integration.aws.conftest import REGION
from tests.integration.aws.gateway_sim import LambdaContext
from tests.integration.aws.idp import LoopbackIdentityProvider
from tests.unit.aws.cfn import Resolver, load_template
from tests.unit.aws.fake_agentcore import FakeCodeInterpreter
from toolrt.adapters.aws import Provisioner, make_clients
from toolrt.adapters.aws.gateway import gateway_tool_name
from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT
from toolrt.adapters.aws.interceptor import build_interceptor_from_env
from toolrt.adapters.aws.lambda_package import LambdaPackage
from toolrt.adapters.aws.lambda_router import build_router_from_env
from toolrt.adapters.aws.provision import code_interpreter_arn

pytestmark = pytest.mark.aws

ACCOUNT = "123456789012"
CUSTOM_INTERPRETER = "mine_x-0123456789"


class Recorder:
    """Every API call of every boto3 client made meanwhile, by the function running it."""

    def __init__(self) -> None:
        self.function = "none"
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name

        def record(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
            self.calls.append((self.function, service, model.name, dict(params)))

        client.meta.events.register("provide-client-params.*.*", record)
        return client

    def of(self, function: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [(s, op, p) for f, s, op, p in self.calls if f == function]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    original = boto3.Session.client

    def client(self: boto3.Session, *args: Any, **kwargs: Any) -> Any:
        return found.attach(original(self, *args, **kwargs))

    monkeypatch.setattr(boto3.Session, "client", client)
    return found


def needed(service: str, operation: str, params: dict[str, Any]) -> tuple[str, str]:
    """The IAM action and resource ARN an API call needs."""
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
        index = params.get("IndexName")
        return f"dynamodb:{operation}", f"{table}/index/{index}" if index else table
    if service == "s3":
        key = params.get("Key")
        return f"s3:{operation}", f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
    if service == "bedrock-agentcore":
        return f"bedrock-agentcore:{operation}", code_interpreter_arn(
            REGION, ACCOUNT, params["codeInterpreterIdentifier"]
        )
    raise AssertionError(f"a function called {service}.{operation}, which this test does not map to IAM")


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions):
            if any(fnmatch.fnmatchcase(resource, r) for r in resources):
                return True
    return False


class World:
    """Provisioned resources, three tools (private, public, team), and the functions' environments."""

    def __init__(self, endpoint: str, idp: LoopbackIdentityProvider, package: LambdaPackage, interpreter: str) -> None:
        self.endpoint = endpoint
        self.idp = idp
        self.interpreter = interpreter
        self.clients = make_clients(REGION, endpoint)
        Provisioner(
            self.clients, jwt=idp.authorizer(), code_interpreter_id=interpreter, package=lambda: package, wait_s=0
        ).up()
        self.rt = toolrt.connect("aws", aws_endpoint_url=endpoint, aws_region=REGION, sandbox="local")
        code = "def handler(a: int = 1) -> int:\n    return a\n"
        base = {"description": "A tool.", "language": "python", "code": code}
        self.private = self.rt.register_tool("alice", {**base, "name": "mine"}).tool
        self.public = self.rt.register_tool("bob", {**base, "name": "shared"}, visibility="public").tool
        self.rt.add_team_member("red", "bob")
        self.rt.add_team_member("red", "alice")
        self.team = self.rt.register_tool("bob", {**base, "name": "ours"}, visibility="team:red").tool

    def environment(self, function: str) -> dict[str, str]:
        found = self.clients.client("lambda").get_function(FunctionName=function)["Configuration"]
        return {**found["Environment"]["Variables"], "TOOLRT_AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": REGION}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        doc = self.clients.client("iam").get_role_policy(RoleName=role, PolicyName="toolrt")["PolicyDocument"]
        return list((json.loads(doc) if isinstance(doc, str) else doc)["Statement"])

    def template_statements(self, role: str) -> list[dict[str, Any]]:
        resolver = Resolver(
            load_template(),
            {
                "RouterCodeBucket": "code",
                "JwtDiscoveryUrl": self.idp.discovery_url,
                "JwtAudience": "toolrt",
                "CodeInterpreterId": self.interpreter,
            },
            {
                "ToolTable": "toolrt",
                "ToolTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/toolrt",
                "ArtifactBucket": "toolrt-artifacts",
                "ArtifactBucket.Arn": "arn:aws:s3:::toolrt-artifacts",
                "RouterFunction.Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:toolrt-router",
                "InterceptorFunction.Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:toolrt-interceptor",
                "RouterRole.Arn": "r",
                "InterceptorRole.Arn": "i",
                "GatewayRole.Arn": "g",
            },
        )
        resources = resolver.resolve(load_template()["Resources"])
        return list(resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"])


@pytest.fixture
def world(
    request: pytest.FixtureRequest, aws_endpoint: str, idp: LoopbackIdentityProvider, package: LambdaPackage
) -> Iterator[World]:
    """Provisioned with the Code Interpreter the test is parametrized with (the system one by default)."""
    made = World(aws_endpoint, idp, package, getattr(request, "param", "aws.codeinterpreter.v1"))
    try:
        yield made
    finally:
        made.rt.close()


def _drive(world: World, recorder: Recorder) -> None:
    """Run the functions through every path that reaches AWS."""
    recorder.function = "router"
    router = build_router_from_env(world.environment("toolrt-router"))
    FakeCodeInterpreter(router._sandbox._client)  # type: ignore[attr-defined]  # moto has no Code Interpreter
    for agent, tool in (("alice", world.private), ("alice", world.public), ("alice", world.team)):
        answer = router(
            {"a": 2, IDENTITY_ARGUMENT: world.idp.token(agent)}, LambdaContext(gateway_tool_name("s0", tool))
        )
        assert answer == 2, answer
    router._sandbox.close()  # type: ignore[attr-defined]
    recorder.function = "interceptor"
    interceptor = build_interceptor_from_env(world.environment("toolrt-interceptor"))
    headers = {"Authorization": f"Bearer {world.idp.token('alice')}"}
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": gateway_tool_name("s0", world.team)}}
    interceptor({"mcp": {"gatewayRequest": {"headers": headers, "body": call}}})
    listed = {"statusCode": 200, "body": {"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}}
    interceptor({"mcp": {"gatewayRequest": {"headers": headers, "body": listing}, "gatewayResponse": listed}})
    recorder.function = "none"


@pytest.mark.parametrize("world", ["aws.codeinterpreter.v1", CUSTOM_INTERPRETER], indirect=True)
def test_each_function_is_granted_exactly_what_it_uses(world: World, recorder: Recorder) -> None:
    """Every call the router and the interceptor make is allowed by their provisioned role and by the
    template's, every action those roles grant (logs aside) is one they use, and the interpreter's ARN
    matches botocore's CodeInterpreterArn in its system (aws, code-interpreter/) or custom (the
    account, code-interpreter-custom/) form."""
    _drive(world, recorder)
    for function, role, template_role in (
        ("router", "toolrt-router", "RouterRole"),
        ("interceptor", "toolrt-interceptor", "InterceptorRole"),
    ):
        used = {needed(service, operation, params) for service, operation, params in recorder.of(function)}
        assert used, function
        provisioned, declared = world.role_statements(role), world.template_statements(template_role)
        for action, resource in sorted(used):
            assert allows(provisioned, action, resource), (role, action, resource)
            assert allows(declared, action, resource), (template_role, action, resource)
        for statements in (provisioned, declared):
            granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
            assert {a for a in granted if not a.startswith("logs:")} == {a for a, _ in used}, (role, granted)
    teams = [p for s, op, p in recorder.of("router") if op == "Query"]
    assert teams and all(p["IndexName"] == "gsi1" for p in teams)  # team membership, on the owner index
    model = (
        botocore.session.get_session()
        .get_component("data_loader")
        .load_service_model("bedrock-agentcore-control", "service-2")
    )
    pattern = re.compile(model["shapes"]["CodeInterpreterArn"]["pattern"])
    (interpreter,) = {p["codeInterpreterIdentifier"] for s, _, p in recorder.of("router") if s == "bedrock-agentcore"}
    arn = code_interpreter_arn(REGION, ACCOUNT, interpreter)
    assert interpreter == world.interpreter and pattern.fullmatch(arn), arn
    if interpreter == CUSTOM_INTERPRETER:
        assert f":{ACCOUNT}:code-interpreter-custom/{interpreter}" in arn
    else:
        assert f":aws:code-interpreter/{interpreter}" in arn


def test_the_gateway_role_may_invoke_every_function_the_gateway_calls(world: World) -> None:
    """The gateway invokes the interceptor and each shard's Lambda: its role allows exactly those."""
    control = world.clients.agentcore_control
    gateway_id = world.rt.ports.gateway.gateway_id  # type: ignore[attr-defined]
    gateway = control.get_gateway(gatewayIdentifier=gateway_id)
    invoked = {c["interceptor"]["lambda"]["arn"] for c in gateway["interceptorConfigurations"]}
    for target in control.list_gateway_targets(gatewayIdentifier=gateway_id)["items"]:
        found = control.get_gateway_target(gatewayIdentifier=gateway_id, targetId=target["targetId"])
        invoked.add(found["targetConfiguration"]["mcp"]["lambda"]["lambdaArn"])
    statements = world.role_statements("toolrt-gateway")
    assert len(invoked) == 2 and all(allows(statements, "lambda:InvokeFunction", arn) for arn in invoked)
    assert {a for s in statements for a in s["Action"]} == {"lambda:InvokeFunction"}
