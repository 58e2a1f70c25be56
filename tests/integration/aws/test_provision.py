"""`toolrt aws provision` against a moto server: everything the profile needs, idempotently, and back down."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.aws.conftest import REGION
from toolrt.adapters.aws import JwtAuthorizer, Provisioner, make_clients
from toolrt.adapters.aws.lambda_package import LambdaPackage, build_lambda_package
from toolrt.domain import StorageError

pytestmark = pytest.mark.aws

JWT = JwtAuthorizer("https://issuer.example/.well-known/openid-configuration", audiences=("toolrt",))


def _provisioner(endpoint: str, package: LambdaPackage, **kwargs: Any) -> Provisioner:
    return Provisioner(make_clients(REGION, endpoint), jwt=JWT, package=lambda: package, wait_s=0, **kwargs)


def _service_defaults(parsed: dict[str, Any], **kwargs: Any) -> None:
    parsed["exceptionLevel"] = "DEBUG"
    parsed["protocolConfiguration"]["mcp"]["supportedVersions"] = ["2025-03-26"]
    parsed["authorizerConfiguration"]["customJWTAuthorizer"]["allowedAudience"].reverse()
    for interceptor in parsed["interceptorConfigurations"]:
        interceptor["interceptionPoints"].reverse()
        interceptor["responseInterceptionMode"] = "BUFFERED"


def test_dry_run_plans_everything_and_creates_nothing(aws_endpoint: str, package: LambdaPackage) -> None:
    """--dry-run on an empty account lists every resource as 'would create' and leaves the account empty."""
    result = _provisioner(aws_endpoint, package, dry_run=True).up()
    assert {action for action, _ in result.steps} == {"would create"}
    assert len(result.steps) == 8
    clients = make_clients(REGION, aws_endpoint)
    assert clients.dynamodb.list_tables()["TableNames"] == []
    assert clients.agentcore_control.list_gateways()["items"] == []


def test_up_creates_everything_once_and_then_finds_it(aws_endpoint: str, package: LambdaPackage) -> None:
    """Table, bucket, three roles, two functions and the gateway; a second run changes nothing, even
    against a service that adds defaults and reorders lists (only what toolrt sets is compared)."""
    steps: list[tuple[str, str]] = []
    first = _provisioner(aws_endpoint, package, on_step=lambda a, r: steps.append((a, r))).up()
    assert [a for a, _ in first.steps] == ["created"] * 8
    assert [s for s in steps if s[0] != "warning"] == list(first.steps)  # reported as it went (the CLI's display)
    assert first.gateway_id and first.router_arn
    # GetGateway answers with fields toolrt never set and lists in another order, as the service does.
    again = make_clients(REGION, aws_endpoint)
    again.agentcore_control.meta.events.register("after-call.bedrock-agentcore-control.GetGateway", _service_defaults)
    second = Provisioner(again, jwt=JWT, package=lambda: package, wait_s=0).up()
    assert [a for a, _ in second.steps] == ["found"] * 8
    assert second.gateway_id == first.gateway_id

    clients = make_clients(REGION, aws_endpoint)
    gateway = clients.agentcore_control.get_gateway(gatewayIdentifier=first.gateway_id)
    assert gateway["authorizerType"] == "CUSTOM_JWT"
    assert gateway["authorizerConfiguration"]["customJWTAuthorizer"]["allowedAudience"] == ["toolrt"]
    (interceptor,) = gateway["interceptorConfigurations"]
    assert interceptor["interceptionPoints"] == ["REQUEST", "RESPONSE"]
    assert interceptor["inputConfiguration"] == {"passRequestHeaders": True}
    router = clients.client("lambda").get_function(FunctionName="toolrt-router")["Configuration"]
    assert router["Handler"] == "toolrt.adapters.aws.lambda_router.handler"
    assert router["Timeout"] == 360  # the longest tool (300 s) and room to stop its session
    assert router["Environment"]["Variables"]["TOOLRT_DYNAMODB_TABLE"] == "toolrt"
    from toolrt.adapters.aws.provision import ARTIFACT_LIFECYCLE_RULE

    (rule,) = clients.s3.get_bucket_lifecycle_configuration(Bucket="toolrt-artifacts")["Rules"]
    assert rule["ID"] == ARTIFACT_LIFECYCLE_RULE["ID"]
    assert rule["NoncurrentVersionExpiration"] == ARTIFACT_LIFECYCLE_RULE["NoncurrentVersionExpiration"]


def test_roles_grant_only_what_each_function_uses(aws_endpoint: str, package: LambdaPackage) -> None:
    """No wildcard resources; the router reads one item and one artifact; the gateway invokes two functions."""
    _provisioner(aws_endpoint, package).up()
    iam = make_clients(REGION, aws_endpoint).client("iam")

    def statements(role: str) -> list[dict[str, Any]]:
        doc = iam.get_role_policy(RoleName=role, PolicyName="toolrt")["PolicyDocument"]
        return list((json.loads(doc) if isinstance(doc, str) else doc)["Statement"])

    for role in ("toolrt-router", "toolrt-interceptor", "toolrt-gateway"):
        for statement in statements(role):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "*" not in resources, (role, statement)
    router_actions = {a for s in statements("toolrt-router") for a in s["Action"]}
    assert {a for a in router_actions if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:Query"}
    (query,) = [s for s in statements("toolrt-router") if s["Action"] == ["dynamodb:Query"]]
    assert query["Resource"].endswith(":table/toolrt/index/gsi1")  # team membership, nothing else
    code_interpreter = next(
        s for s in statements("toolrt-router") if "bedrock-agentcore:InvokeCodeInterpreter" in s["Action"]
    )
    assert code_interpreter["Resource"].endswith(":aws:code-interpreter/aws.codeinterpreter.v1")
    gateway = statements("toolrt-gateway")
    assert gateway[0]["Action"] == ["lambda:InvokeFunction"] and len(gateway[0]["Resource"]) == 2


def test_connect_finds_what_provisioning_made_without_copied_ids(
    aws_endpoint: str, package: LambdaPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connect("aws") looks the gateway and router up by name; against moto the sandbox is local."""
    import toolrt

    made = _provisioner(aws_endpoint, package).up()
    for name in ("TOOLRT_GATEWAY_ID", "TOOLRT_GATEWAY_LAMBDA_ARN", "TOOLRT_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    rt = toolrt.connect("aws", aws_endpoint_url=aws_endpoint, aws_region=REGION)
    try:
        reg = rt.register_tool(
            "agent-a",
            {
                "name": "add",
                "description": "Add two integers.",
                "language": "python",
                "code": "def handler(a: int, b: int) -> int:\n    return a + b\n",
            },
        )
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 2, "b": 3}).output == 5
        targets = make_clients(REGION, aws_endpoint).agentcore_control.list_gateway_targets(
            gatewayIdentifier=made.gateway_id
        )
        assert len(targets["items"]) == 1
    finally:
        rt.close()


def test_a_gateway_needs_an_identity_provider(aws_endpoint: str, package: LambdaPackage) -> None:
    """Without a JWT issuer the gateway is not created, and the error says which flags to pass."""
    provisioner = Provisioner(make_clients(REGION, aws_endpoint), package=lambda: package, wait_s=0)
    with pytest.raises(StorageError, match="--jwt-discovery-url"):
        provisioner.up()


def test_down_removes_all_but_the_data_unless_asked(aws_endpoint: str, package: LambdaPackage) -> None:
    """destroy removes gateway, functions and roles; table and bucket go only with include_data."""
    _provisioner(aws_endpoint, package).up()
    down = _provisioner(aws_endpoint, package).down()
    assert [a for a, _ in down.steps].count("deleted") == 6  # gateway, 2 functions, 3 roles (no targets yet)
    clients = make_clients(REGION, aws_endpoint)
    assert clients.agentcore_control.list_gateways()["items"] == []
    assert clients.dynamodb.list_tables()["TableNames"] == ["toolrt"]
    everything = _provisioner(aws_endpoint, package).down(include_data=True)
    assert ("deleted", "dynamodb table toolrt") in everything.steps
    assert clients.dynamodb.list_tables()["TableNames"] == []


def test_the_package_runs_without_the_environment_it_was_built_in(package: LambdaPackage, tmp_path: Path) -> None:
    """The zip alone (no site-packages) imports both handlers, as Lambda will."""
    zipfile.ZipFile(io.BytesIO(package.data)).extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import toolrt.adapters.aws.lambda_router as r, toolrt.adapters.aws.interceptor as i;"
        "import toolrt.adapters.aws.environments, toolrt.adapters.aws.sandbox;"  # what the router builds
        "print(r.handler.__module__, i.handler.__module__)"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "lambda_router" in done.stdout and "interceptor" in done.stdout
    from toolrt.adapters.aws import lambda_package

    lambda_package._built.clear()  # built again from the files, not the kept zip
    assert package.sha256 == build_lambda_package().sha256  # reproducible: same install, same code hash


def test_the_router_runs_with_the_owners_egress_settings(aws_endpoint: str, package: LambdaPackage) -> None:
    """The egress policy and Code Interpreter egress mode reach the router's environment (empty ones
    are left out, and nothing but TOOLRT_* settings is passed), so gateway calls are granted alike."""
    extra = {
        "TOOLRT_NETWORK_ALLOW": "api.example.com:443",
        "TOOLRT_NETWORK_PRIVATE": "",
        "TOOLRT_CODE_INTERPRETER_EGRESS": "interpreter",
        "AWS_SECRET_ACCESS_KEY": "never",
    }
    _provisioner(aws_endpoint, package, router_environment=extra).up()
    clients = make_clients(REGION, aws_endpoint)
    variables = clients.client("lambda").get_function(FunctionName="toolrt-router")["Configuration"]["Environment"][
        "Variables"
    ]
    assert variables["TOOLRT_NETWORK_ALLOW"] == "api.example.com:443"
    assert variables["TOOLRT_CODE_INTERPRETER_EGRESS"] == "interpreter"
    assert "TOOLRT_NETWORK_PRIVATE" not in variables and "AWS_SECRET_ACCESS_KEY" not in variables


def test_an_update_sends_the_whole_configuration_it_keeps(aws_endpoint: str, package: LambdaPackage) -> None:
    """UpdateGateway replaces every field: the update toolrt sends carries the description, what it
    sets, and what it does not set (a KMS key someone added) as the gateway had it."""
    from toolrt.adapters.aws.provision import GATEWAY_DESCRIPTION

    first = _provisioner(aws_endpoint, package).up()
    clients = make_clients(REGION, aws_endpoint)
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    found = clients.agentcore_control.get_gateway(gatewayIdentifier=first.gateway_id)
    clients.agentcore_control.update_gateway(
        gatewayIdentifier=first.gateway_id,
        name=found["name"],
        roleArn=found["roleArn"],
        protocolType=found["protocolType"],
        authorizerType=found["authorizerType"],
        kmsKeyArn=key,
    )
    sent: list[dict[str, Any]] = []
    clients.agentcore_control.meta.events.register(
        "provide-client-params.bedrock-agentcore-control.UpdateGateway", lambda params, **kw: sent.append(dict(params))
    )
    other = JwtAuthorizer(JWT.discovery_url, audiences=("toolrt", "second"))
    steps = Provisioner(clients, jwt=other, package=lambda: package, wait_s=0).up().steps
    assert [a for a, r in steps if r.startswith("agentcore gateway")] == ["updated"]
    (update,) = sent
    assert update["description"] == GATEWAY_DESCRIPTION and update["kmsKeyArn"] == key
    assert update["authorizerConfiguration"] == other.configuration()
    assert update["interceptorConfigurations"][0]["inputConfiguration"] == {"passRequestHeaders": True}
    assert update["protocolConfiguration"] == {"mcp": {"searchType": "SEMANTIC"}}


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--jwt-discovery-url", "https://idp.example/.well-known/openid-configuration"], "at least one audience"),
        (["--jwt-discovery-url", "https://idp.example/jwks.json", "--jwt-audience", "a"], "/.well-known/"),
        (["--jwt-audience", "toolrt"], "need --jwt-discovery-url"),
    ],
)
def test_the_cli_refuses_an_identity_provider_agentcore_would_refuse(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, flags: list[str], reason: str
) -> None:
    """No audience, client or scope (or a discovery URL CreateGateway rejects) is refused with the reason
    before anything is made (exit 2, a user error)."""
    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    monkeypatch.setenv("TOOLRT_AWS_ENDPOINT_URL", aws_endpoint)
    done = CliRunner().invoke(build_app(), ["aws", "provision", *flags])
    assert done.exit_code == 2, done.output
    assert reason in done.stderr and "Traceback" not in done.output
    assert make_clients(REGION, aws_endpoint).dynamodb.list_tables()["TableNames"] == []
