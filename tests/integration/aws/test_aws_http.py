"""The AWS adapters end to end over HTTP against a moto server, plus fault injection."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.integration.aws.conftest import INTERCEPTOR_ARN, JWT, LAMBDA_ARN, REGION, ROLE_ARN
from tests.integration.aws.gateway_sim import EchoSandbox
from tests.integration.aws.idp import LoopbackIdentityProvider
from toolrt.adapters.aws import (
    AgentCoreGateway,
    DynamoDbToolRepository,
    S3ArtifactStore,
    make_clients,
    provision,
)
from toolrt.adapters.aws.gateway import gateway_tool_name
from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT
from toolrt.adapters.aws.lambda_router import LambdaRouter, handler
from toolrt.adapters.aws.serialization import converter
from toolrt.contracts import builders as b
from toolrt.domain import (
    Artifact,
    ConflictError,
    RegistrationError,
    StorageError,
    TransientError,
    ValidationReport,
    Visibility,
)
from toolrt.ports import ToolQuery

pytestmark = pytest.mark.aws


def _artifact(tool: Any) -> Artifact:
    d = tool.definition
    return Artifact(tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p1"), b.T0)


def _stack(endpoint: str, **client_args: Any) -> tuple[Any, DynamoDbToolRepository, S3ArtifactStore, AgentCoreGateway]:
    clients = make_clients(REGION, endpoint, **client_args)
    result = provision(
        dynamodb=clients.dynamodb,
        table_name="toolrt",
        s3=clients.s3,
        bucket="toolrt-artifacts",
        region=REGION,
        agentcore_control=clients.agentcore_control,
        gateway_name="toolrt",
        gateway_role_arn=ROLE_ARN,
        interceptor_arn=INTERCEPTOR_ARN,
        jwt=JWT,
    )
    assert result.gateway_id is not None
    return (
        clients,
        DynamoDbToolRepository(clients.dynamodb, "toolrt"),
        S3ArtifactStore(clients.s3, "toolrt-artifacts"),
        # moto leaves updated targets UPDATING for ever: do not wait for READY there.
        AgentCoreGateway(clients.agentcore_control, result.gateway_id, LAMBDA_ARN, ready_timeout_s=0),
    )


def test_provision_is_idempotent(aws_endpoint: str) -> None:
    """Provisioning twice creates the table, bucket and gateway once and then finds them."""
    clients = make_clients(REGION, aws_endpoint)
    args = dict(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        region=REGION,
        agentcore_control=clients.agentcore_control,
        gateway_role_arn=ROLE_ARN,
        interceptor_arn=INTERCEPTOR_ARN,
        jwt=JWT,
    )
    first = provision(**args)
    second = provision(**args)
    assert len(first.created) == 3 and not first.found
    assert len(second.found) == 3 and not second.created
    assert first.gateway_id == second.gateway_id


def test_register_list_update_deregister_over_http(aws_endpoint: str) -> None:
    """The register, list, update and deregister steps work against real HTTP endpoints."""
    _, repo, store, gateway = _stack(aws_endpoint)
    tool = b.tool("tool-e2e", owner="agent-a", name="add")
    # register: artifact, record and references, then publication
    assert store.put(_artifact(tool)) is True
    assert store.put(_artifact(tool)) is False
    repo.add(tool)
    published = tool.with_gateway_ref(gateway.register(tool), b.T0)
    repo.save(published)
    assert gateway.health().ok
    # list
    assert [t.tool_id for t in repo.list(ToolQuery(owner="agent-a"))] == ["tool-e2e"]
    assert published.gateway_ref in gateway.published()
    assert repo.references(tool.code_hash) == {"tool-e2e"}
    # update: a new version with new code
    new_def = b.definition("add", code="def handler(a, b):\n    return b + a\n", description="adds, reversed")
    updated = published.with_version(new_def, b.T0 + timedelta(seconds=1))
    store.put(_artifact(updated))
    repo.save(updated)
    gateway.update(updated)
    assert repo.get("tool-e2e").current_version == 2
    assert repo.references(updated.code_hash) == {"tool-e2e"}
    # deregister: unpublish, deactivate, drop unreferenced artifacts
    gateway.deregister(updated)
    gateway.deregister(updated)
    repo.save(updated.deactivated(b.T0 + timedelta(seconds=2)))
    for h in updated.code_hashes:
        assert repo.references(h) == frozenset()
        store.delete(h)
    assert gateway.published() == []
    assert list(store.hashes()) == []
    assert repo.list(ToolQuery(owner="agent-a")) == []


def test_rollback_steps_undo_a_registration(aws_endpoint: str) -> None:
    """After a failed publication, deleting the record and deregistering leave nothing behind."""
    _, repo, store, gateway = _stack(aws_endpoint)
    tool = b.tool("tool-rb")
    store.put(_artifact(tool))
    repo.add(tool)
    gateway.register(tool)
    gateway.deregister(tool)  # no gateway_ref yet: found by its code on the shards
    repo.delete(tool.tool_id)
    assert gateway.published() == []
    assert repo.references(tool.code_hash) == frozenset()


def test_throttling_and_5xx_are_retried_by_botocore(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A throttled or failing DynamoDB/S3 call is retried and the operation succeeds."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    clients, repo, store, _ = _stack(aws_endpoint)
    faults = {
        "TransactWriteItems": [(400, "ThrottlingException"), (500, "InternalServerError")],
        "PutObject": [(503, "SlowDown")],
    }
    seen: list[str] = []

    def inject(request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        op = kwargs["event_name"].rsplit(".", 1)[-1]
        seen.append(op)
        if faults.get(op):
            status, code = faults[op].pop(0)
            body = (
                b'{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}' % code.encode()
                if op == "TransactWriteItems"
                else b"<Error><Code>%s</Code><Message>injected</Message></Error>" % code.encode()
            )
            return AWSResponse(request.url, status, {"x-amzn-RequestId": "r"}, _Raw(body))  # type: ignore[arg-type]  # a dict, as botocore takes it
        return None

    clients.dynamodb.meta.events.register("before-send.dynamodb", inject)
    clients.s3.meta.events.register("before-send.s3", inject)
    tool = b.tool("tool-retry")
    repo.add(tool)
    assert store.put(_artifact(tool)) is True
    assert seen.count("TransactWriteItems") == 3 and seen.count("PutObject") == 2
    assert repo.get("tool-retry") == tool


def test_exhausted_retries_are_transient_errors(aws_endpoint: str) -> None:
    """When throttling outlasts the retries, the caller gets a TransientError naming the operation."""
    clients = make_clients(REGION, aws_endpoint, max_attempts=1)
    repo = DynamoDbToolRepository(clients.dynamodb, "toolrt")
    with Stubber(clients.dynamodb) as stub:
        stub.add_client_error("transact_write_items", "ProvisionedThroughputExceededException", http_status_code=400)
        with pytest.raises(TransientError, match="TransactWriteItems"):
            repo.add(b.tool("tool-x"))


def test_conditional_check_failures_are_conflicts(aws_endpoint: str) -> None:
    """A lost conditional write (concurrent save, duplicate id) surfaces as ConflictError."""
    _, repo, _, _ = _stack(aws_endpoint)
    tool = b.tool("tool-c")
    repo.add(tool)
    with pytest.raises(ConflictError, match="already exists"):
        repo.add(tool)
    repo.save(tool.with_visibility(Visibility.PUBLIC, b.T0))
    with pytest.raises(ConflictError, match="concurrently"):
        repo.save(tool.deactivated(b.T0))


def test_gateway_failures_are_registration_errors(aws_endpoint: str) -> None:
    """A gateway refusal during publication is a RegistrationError; a missing gateway is unhealthy."""
    clients = make_clients(REGION, aws_endpoint)
    gateway = AgentCoreGateway(clients.agentcore_control, "nosuchgateway", LAMBDA_ARN)
    with Stubber(clients.agentcore_control) as stub:
        for _ in range(2):  # the shards there are (none), then again just before a new one is made
            stub.add_response("list_gateway_targets", {"items": []}, {"gatewayIdentifier": "nosuchgateway"})
        stub.add_client_error("create_gateway_target", "ValidationException", "bad schema", http_status_code=400)
        with pytest.raises(RegistrationError, match="bad schema"):
            gateway.register(b.tool("tool-g"))
    assert not gateway.health().ok


def test_corrupted_artifact_is_a_storage_error(aws_endpoint: str) -> None:
    """An S3 object whose content does not match its hash is refused on read."""
    clients, _, store, _ = _stack(aws_endpoint)
    tool = b.tool("tool-s")
    art = _artifact(tool)
    store.put(art)
    forged = converter.unstructure(art)
    forged["code"] = "def handler(a, b):\n    return 0\n"
    clients.s3.put_object(Bucket="toolrt-artifacts", Key=f"artifacts/{art.code_hash}.json", Body=json.dumps(forged))
    with pytest.raises(StorageError, match="does not match its hash"):
        store.get(art.code_hash)


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self._data


class _ClientContext:
    def __init__(self, custom: dict[str, str]) -> None:
        self.custom = custom
        self.env: dict[str, str] = {}
        self.client = None


class _Context:
    """The shape of the Lambda context AgentCore Gateway invokes a target with."""

    function_name = "toolrt-router"
    aws_request_id = "req-1"

    def __init__(self, tool_name: str) -> None:
        self.client_context = _ClientContext(
            {
                "bedrockAgentCoreGatewayId": "gw-1",
                "bedrockAgentCoreTargetId": "target-1",
                "bedrockAgentCoreMessageVersion": "1.0",
                "bedrockAgentCoreAwsRequestId": "aws-req-1",
                "bedrockAgentCoreMcpMessageId": "mcp-1",
                "bedrockAgentCoreToolName": tool_name,
            }
        )


def test_lambda_router_routes_gateway_calls(aws_endpoint: str, idp: LoopbackIdentityProvider) -> None:
    """A gateway call reaches the named tool's current code with the event as its parameters."""
    _, repo, store, _ = _stack(aws_endpoint)
    tool = b.tool("tool-route", name="add")
    store.put(_artifact(tool))
    repo.add(tool)
    sandbox = EchoSandbox()
    router = LambdaRouter(repo, store, sandbox, verifier=idp.verifier())
    caller = {IDENTITY_ARGUMENT: idp.token(tool.owner)}
    name = gateway_tool_name("s0", tool)
    assert router({"a": 1, "b": 2, **caller}, _Context(name)) == {"echo": {"a": 1, "b": 2}}
    assert sandbox.requests[0].code == tool.definition.code
    failed = router({"a": 1, "b": 2, "fail": True, **caller}, _Context(name))
    assert failed["error"] == {"type": "ValueError", "message": "bad value"}
    missing = router(caller, _Context("s0___r-nosuch_add"))
    assert missing["error"]["type"] == "NotFoundError"
    # The module-level handler builds its router once, lazily.
    import toolrt.adapters.aws.lambda_router as module

    module._router = None
    built: list[int] = []

    def factory() -> LambdaRouter:
        built.append(1)
        return router

    for _ in range(2):
        assert handler({"a": 1, "b": 2, **caller}, _Context(name), factory=factory) == {"echo": {"a": 1, "b": 2}}
    assert built == [1]
    module._router = None
