"""The aws profile as a new user meets it: quiet by default, plain about credentials, honest about moto.

Against a moto server over HTTP: the library writes no CloudWatch lines to the application's stderr
unless it runs in Lambda or is asked to; missing credentials say what to set; an aws sandbox against
moto names the cause instead of an HTML error page and "retry later"; ``toolrt aws status`` reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import toolrt
from tests.integration.aws.conftest import INTERCEPTOR_ARN, LAMBDA_ARN, REGION, ROLE_ARN
from tests.integration.aws.idp import LoopbackIdentityProvider
from toolrt.adapters.aws.lambda_package import LambdaPackage
from toolrt.adapters.cli.main import build_app
from toolrt.contracts import builders as b

pytestmark = pytest.mark.aws


def _runtime(endpoint: str, idp: LoopbackIdentityProvider, **settings: Any) -> toolrt.ToolRuntime:
    from toolrt.adapters.aws import make_clients, provision

    clients = make_clients(REGION, endpoint)
    made = provision(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        agentcore_control=clients.agentcore_control,
        gateway_role_arn=ROLE_ARN,
        interceptor_arn=INTERCEPTOR_ARN,
        jwt=idp.authorizer(),
        region=REGION,
    )
    return toolrt.connect(
        "aws",
        sandbox="local",
        aws_region=REGION,
        aws_endpoint_url=endpoint,
        gateway_id=made.gateway_id,
        gateway_lambda_arn=LAMBDA_ARN,
        **settings,
    )


@pytest.mark.parametrize(
    ("lambda_name", "choice", "lines"),
    [(None, "auto", False), ("my-app", "auto", True), (None, "on", True), ("my-app", "off", False)],
)
def test_cloudwatch_lines_are_written_only_where_they_become_metrics(
    aws_endpoint: str,
    idp: LoopbackIdentityProvider,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_name: str | None,
    choice: str,
    lines: bool,
) -> None:
    """Outside Lambda a library call writes nothing to stderr; inside Lambda (or when asked) it writes
    embedded-metric-format lines; the in-process metrics count either way."""
    if lambda_name:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", lambda_name)
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    capfd.readouterr()
    with _runtime(aws_endpoint, idp, metrics_emf=choice) as rt:
        reg = rt.register_tool("agent-a", b.definition())
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).output == 3
        counted = rt.ports.metrics.snapshot()["counters"]
    err = capfd.readouterr().err
    written = [line for line in err.splitlines() if '"CloudWatchMetrics"' in line]
    assert bool(written) == lines, err[:500]
    assert not lines or all(json.loads(line)["_aws"]["CloudWatchMetrics"] for line in written)
    assert any(key.startswith("executions") for key in counted)


def _bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere boto3 looks (variables, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.setenv("TOOLRT_AWS_REGION", REGION)


def test_missing_credentials_say_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no credentials, a command and `toolrt aws status` say so and name the variables and commands
    that provide them (a user error: exit 2), never `StorageError ... NoCredentialsError` alone."""
    _bare_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TOOLRT_PROFILE", "aws")
    listed = CliRunner().invoke(build_app(), ["list"])
    assert listed.exit_code == 2, listed.output
    assert "CredentialsError" in listed.stderr and "AWS_PROFILE" in listed.stderr and "aws configure" in listed.stderr
    status = CliRunner().invoke(build_app(), ["aws", "status"])
    assert status.exit_code == 1
    assert "no AWS credentials were found" in status.stdout and "AWS_ACCESS_KEY_ID" in status.stdout


def test_an_aws_sandbox_against_moto_names_the_cause(aws_endpoint: str) -> None:
    """moto has no Code Interpreter: a call says so and what to do, without an HTML page or "retry later"."""
    from toolrt.adapters.aws import make_clients
    from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox
    from toolrt.domain import ExecutionError, Language
    from toolrt.ports import SandboxRequest

    clients = make_clients(REGION, aws_endpoint)
    sandbox = AgentCoreCodeInterpreterSandbox(clients.agentcore, endpoint_url=aws_endpoint)
    request = SandboxRequest("e1", Language.PYTHON, "def handler():\n    return 1\n", "handler", {}, 5.0, 128, 4096)
    with pytest.raises(ExecutionError) as caught:
        sandbox.run(request)
    message = str(caught.value)
    assert "do not emulate AgentCore Code Interpreter" in message and "sandbox='local'" in message
    assert "<html" not in message.lower() and "retry later" not in message and not caught.value.retryable


def test_aws_status_reports_each_resource(
    aws_endpoint: str, idp: LoopbackIdentityProvider, monkeypatch: pytest.MonkeyPatch, package: LambdaPackage
) -> None:
    """Before provisioning every resource is missing (exit 1); after it, all are ok (exit 0), with the
    identity the credentials belong to and how many tools the gateway's shards hold."""
    from toolrt.adapters.aws import Provisioner, make_clients

    monkeypatch.setenv("TOOLRT_AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("TOOLRT_AWS_REGION", REGION)
    before = CliRunner().invoke(build_app(), ["--json", "aws", "status"])
    assert before.exit_code == 1
    report = json.loads(before.stdout)
    assert report["ok"] is False and report["account"] == "123456789012"
    assert {c["state"] for c in report["checks"] if c["resource"] != "credentials"} == {"missing"}
    Provisioner(make_clients(REGION, aws_endpoint), jwt=idp.authorizer(), package=lambda: package, wait_s=0).up()
    after = CliRunner().invoke(build_app(), ["aws", "status"])
    assert after.exit_code == 0, after.stdout
    assert "0 tools on 0 shard targets" in after.stdout and "verifies tokens of" in after.stdout
