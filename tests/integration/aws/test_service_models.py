"""Every request the AWS adapters build validates against botocore's service model, for every operation they use.

One run drives the whole profile (provision, register, update, execute, the gateway path, destroy) over
a moto server, plus the Code Interpreter sandbox over the fake interpreter, with a hook that validates
each request's parameters with ``botocore.validate.ParamValidator`` and records the operation. The
operations named anywhere in ``adapters/aws`` must all have been seen: a new call is covered or this fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.validate import ParamValidator

from tests.integration.aws.conftest import REGION
from tests.unit.aws.fake_agentcore import FakeCodeInterpreter
from toolrt.adapters.aws import JwtAuthorizer, Provisioner, make_clients
from toolrt.adapters.aws.lambda_package import LambdaPackage, build_lambda_package
from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox
from toolrt.adapters.node import find_node
from toolrt.domain import Language
from toolrt.ports import SandboxRequest

pytestmark = pytest.mark.aws

SERVICES = ("dynamodb", "s3", "iam", "lambda", "sts", "bedrock-agentcore-control", "bedrock-agentcore")
ADAPTERS = Path(__file__).parents[3] / "adapters" / "aws"


def _operations_named_in_adapters() -> set[tuple[str, str]]:
    session = botocore.session.get_session()
    by_name: dict[str, set[str]] = {}
    for service in SERVICES:
        for operation in session.get_service_model(service).operation_names:
            by_name.setdefault(xform_name(operation), set()).add(service)
    # lambda_package.py builds a zip and calls no service (its Marker.evaluate is not Bedrock's).
    source = "\n".join(p.read_text() for p in ADAPTERS.glob("*.py") if p.name != "lambda_package.py")
    # Operations appear as method calls (client.put_object(...)) or as names in strings (paginators,
    # getattr(client, "create_gateway_target")).
    words = set(re.findall(r"\.([a-z][a-z0-9_]+)\(", source)) | set(re.findall(r"\"([a-z][a-z0-9_]+)\"", source))
    # A name several services share (get_paginator's targets aside) counts for each that the code uses.
    return {(service, word) for word in words & set(by_name) for service in by_name[word]}


class Validating:
    """Registers on every new boto3 client: validate each request, remember (service, operation)."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.errors: list[str] = []

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name
        validator = ParamValidator()

        def check(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
            report = validator.validate(params, model.input_shape)
            if report.has_errors():
                self.errors.append(f"{service}.{model.name}: {report.generate_report()}")
            self.seen.add((service, xform_name(model.name)))

        client.meta.events.register("provide-client-params.*.*", check)
        return client


@pytest.fixture
def validating(monkeypatch: pytest.MonkeyPatch) -> Validating:
    recorder = Validating()
    original = boto3.Session.client

    def client(self: boto3.Session, *args: Any, **kwargs: Any) -> Any:
        return recorder.attach(original(self, *args, **kwargs))

    monkeypatch.setattr(boto3.Session, "client", client)
    return recorder


def test_every_operation_the_adapters_use_validates_against_its_model(
    aws_endpoint: str, validating: Validating, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import toolrt

    package = build_lambda_package()
    jwt = JwtAuthorizer("https://issuer.example/.well-known/openid-configuration", clients=("client-1",))
    Provisioner(make_clients(REGION, aws_endpoint), jwt=jwt, package=lambda: package, wait_s=0, dry_run=True).up()
    Provisioner(make_clients(REGION, aws_endpoint), jwt=jwt, package=lambda: package, wait_s=0).up()
    # A second run with other code, settings and identity provider: the update paths.
    changed = LambdaPackage(package.data + b" ", package.runtime, package.architecture)
    other_jwt = JwtAuthorizer(jwt.discovery_url, clients=("client-2",))
    steps = (
        Provisioner(
            make_clients(REGION, aws_endpoint), jwt=other_jwt, package=lambda: changed, wait_s=0, max_timeout_s=120
        )
        .up()
        .steps
    )
    assert [a for a, _ in steps].count("updated") == 3, steps  # two functions and the gateway
    for name in ("TOOLRT_GATEWAY_ID", "TOOLRT_GATEWAY_LAMBDA_ARN"):
        monkeypatch.delenv(name, raising=False)
    rt = toolrt.connect("aws", aws_endpoint_url=aws_endpoint, aws_region=REGION, data_dir=str(tmp_path))
    try:
        definition = {
            "name": "add",
            "description": "Add.",
            "language": "python",
            "code": "def handler(a: int) -> int:\n    return a + 1\n",
        }
        reg = rt.register_tool("agent-a", definition)
        rt.register_tool("agent-b", {**definition, "name": "plus"})  # a second tool on the same shard
        rt.update_tool(
            "agent-a", reg.tool_id, {**definition, "code": "def handler(a: int) -> int:\n    return a + 2\n"}
        )
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1}).output == 3
        rt.list_tools(agent_id="agent-a")
        rt.list_tools()
        assert rt.add_team_member("red", "agent-b") and rt.list_teams() == {"red": {"agent-b"}}
        assert rt.remove_team_member("red", "agent-b") and rt.teams_of("agent-b") == frozenset()
        assert rt.tool_usage("agent-a", reg.tool_id).executions == 1
        assert list(rt.ports.artifacts.hashes())
        rt.deregister_tool("agent-a", reg.tool_id, purge=True)
        rt.collect_garbage(older_than=0.001, grace_s=0, dry_run=False)  # conditional deletes
    finally:
        rt.close()
    Provisioner(make_clients(REGION, aws_endpoint), jwt=jwt, package=lambda: package, wait_s=0).down(include_data=True)

    # The data plane of Code Interpreter, over the fake interpreter (moto has none).
    client = make_clients(REGION).agentcore
    FakeCodeInterpreter(client)
    sandbox = AgentCoreCodeInterpreterSandbox(client)
    languages = [Language.PYTHON] + ([Language.JAVASCRIPT] if find_node() is not None else [])
    for language in languages:
        code = "def handler():\n    return 1\n" if language is Language.PYTHON else "function handler() { return 1 }"
        sandbox.run(SandboxRequest("e", language, code, "handler", {}, 10.0, 128, 4096, tenant="a", tool="t"))
    sandbox.close()

    assert validating.errors == []
    missing = _operations_named_in_adapters() - validating.seen
    assert not missing, f"operations the adapters name but this run never validated: {sorted(missing)}"
