"""toolrt.connect("aws") end to end over HTTP against a moto server on 127.0.0.1."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

import toolrt
from tests.integration.aws.conftest import INTERCEPTOR_ARN, JWT, LAMBDA_ARN, REGION, ROLE_ARN
from toolrt.contracts import builders as b

if TYPE_CHECKING:
    from toolrt.adapters.aws import AgentCoreGateway, AwsClients


def _gateway_id(rt: toolrt.ToolRuntime) -> str:
    return cast("AgentCoreGateway", rt.ports.gateway).gateway_id


pytestmark = pytest.mark.aws


def _provisioned(endpoint: str) -> tuple[toolrt.ToolRuntime, AwsClients]:
    from toolrt.adapters.aws import make_clients, provision

    clients = make_clients(REGION, endpoint)
    result = provision(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        agentcore_control=clients.agentcore_control,
        gateway_role_arn=ROLE_ARN,
        interceptor_arn=INTERCEPTOR_ARN,
        jwt=JWT,
        region=REGION,
    )
    rt = toolrt.connect(
        "aws",
        sandbox="local",
        aws_region=REGION,
        aws_endpoint_url=endpoint,
        gateway_id=result.gateway_id,
        gateway_lambda_arn=LAMBDA_ARN,
        security_checks=True,
    )
    return rt, clients


def test_register_list_execute_update_deregister(aws_endpoint: str) -> None:
    """The whole lifecycle runs on DynamoDB, S3 and AgentCore Gateway, executing in the local sandbox."""
    rt, clients = _provisioned(aws_endpoint)
    with rt:
        reg = rt.register_tool("agent-a", b.definition())
        twin = rt.register_tool("agent-b", b.definition("plus"))
        assert not reg.cache_hit and rt.get_tool_status(reg.tool_id).published
        assert [t.tool_id for t in rt.list_tools("agent-a")] == [reg.tool_id]
        result = rt.execute_tool("agent-a", reg.tool_id, {"a": 2, "b": 3})
        assert result.ok and result.output == 5
        assert rt.execution_status(result.execution_id).output == 5
        upd = rt.update_tool("agent-a", reg.tool_id, b.definition(code="def handler(a, b):\n    return a * b\n"))
        assert upd.version == 2
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 2, "b": 3}).output == 6
        (shard,) = clients.agentcore_control.list_gateway_targets(gatewayIdentifier=_gateway_id(rt))[
            "items"
        ]  # both agents' tools share one target
        assert shard["name"] == "s0" and shard["description"] == "toolrt tools (2 tools)"
        gone = rt.deregister_tool("agent-a", reg.tool_id, purge=True)
        assert gone.clean and set(gone.deleted_artifacts) == {reg.code_hash, upd.tool.code_hash}
        assert rt.list_tools("agent-a") == []
        keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket="toolrt-artifacts").get("Contents", [])]
        assert keys == [f"artifacts/{twin.code_hash}.json"]


def test_gateway_failure_rolls_back_dynamodb_and_s3(aws_endpoint: str) -> None:
    """A gateway that refuses the target leaves no DynamoDB record, reference or S3 artifact."""
    rt, clients = _provisioned(aws_endpoint)
    with rt:
        clients.agentcore_control.delete_gateway(gatewayIdentifier=_gateway_id(rt))
        with pytest.raises(toolrt.RegistrationError, match="rolled back"):
            rt.register_tool("agent-a", b.definition())
        assert rt.list_tools(status=None) == []
        assert rt.ports.repository.references(b.definition().code_hash) == frozenset()
        assert clients.s3.list_objects_v2(Bucket="toolrt-artifacts").get("KeyCount", 0) == 0


def test_missing_gateway_settings_are_a_clear_error(aws_endpoint: str) -> None:
    """Connecting to AWS before provisioning says what is missing and how to make it."""
    with pytest.raises(toolrt.SettingsError, match="toolrt aws provision"):
        toolrt.connect("aws", aws_endpoint_url=aws_endpoint, sandbox="memory")


def test_cli_provision_plans_creates_finds_and_destroys(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`toolrt aws provision --dry-run`, then for real (progress on stderr), again (all found), then destroy."""
    import json

    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    monkeypatch.setenv("TOOLRT_AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("TOOLRT_AWS_REGION", REGION)
    app = build_app()
    jwt = ["--jwt-discovery-url", JWT.discovery_url, "--jwt-audience", "toolrt"]
    plan = CliRunner().invoke(app, ["--json", "aws", "provision", "--dry-run", *jwt])
    assert plan.exit_code == 0, plan.output
    assert {s["action"] for s in json.loads(plan.stdout)["steps"]} == {"would create"}
    first = CliRunner().invoke(app, ["aws", "provision", *jwt])
    assert first.exit_code == 0, first.output
    assert first.stderr.count("created") == 8 and "agentcore gateway toolrt" in first.stderr
    second = CliRunner().invoke(app, ["--json", "aws", "provision"])
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["created"] == [] and len(again["found"]) == 8 and again["gateway_id"]
    gone = CliRunner().invoke(app, ["--json", "aws", "destroy", "--yes"])
    assert gone.exit_code == 0, gone.output
    assert [s["action"] for s in json.loads(gone.stdout)["steps"]].count("deleted") == 6


def test_cli_provision_without_an_identity_provider_says_what_to_pass(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first provision without --jwt-discovery-url fails in one line naming the flag."""
    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    monkeypatch.setenv("TOOLRT_AWS_ENDPOINT_URL", aws_endpoint)
    done = CliRunner().invoke(build_app(), ["aws", "provision"])
    assert done.exit_code != 0
    assert "--jwt-discovery-url" in done.stderr and "Traceback" not in done.output
