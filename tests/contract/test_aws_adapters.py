"""The AWS adapters pass the shipped contract suites against moto."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest
from moto import mock_aws

from tests.integration.aws.conftest import INTERCEPTOR_ARN, JWT, ROLE_ARN
from toolrt.adapters.aws import AgentCoreGateway, DynamoDbToolRepository, S3ArtifactStore
from toolrt.adapters.aws.provision import provision
from toolrt.contracts import (
    ArtifactStoreContract,
    CodeReferencesContract,
    CountersContract,
    ExecutionLogContract,
    OneStoreContract,
    SearchIndexContract,
    TeamsContract,
    ToolGatewayContract,
    ToolRecordsContract,
)
from toolrt.ports import (
    ArtifactStore,
    CodeReferences,
    Counters,
    ExecutionLog,
    SearchIndex,
    Teams,
    ToolGateway,
    ToolRecords,
    ToolRepository,
)

pytestmark = pytest.mark.aws

REGION = "us-east-1"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router"


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # DynamoDB applies each UpdateItem atomically (what the counters' ADD relies on); moto's
    # in-process backend reads and writes the item in Python, so two threads can interleave and lose
    # an add. Its writes are serialized here, as the service's are.
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.update_item
    serial = threading.Lock()

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with serial:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", update_item)
    with mock_aws():
        yield


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


_tables = itertools.count()


def _fresh_repository() -> DynamoDbToolRepository:
    # A table of its own per store: a property test makes a fresh store per example.
    client = _client("dynamodb")
    table = f"toolrt-test-{next(_tables)}"
    provision(dynamodb=client, table_name=table)
    return DynamoDbToolRepository(client, table)


class TestDynamoDbToolRecords(ToolRecordsContract):
    def make_tool_records(self) -> ToolRecords:
        return _fresh_repository()


class TestDynamoDbCodeReferences(CodeReferencesContract):
    def make_code_references(self) -> tuple[ToolRecords, CodeReferences]:
        repo = _fresh_repository()
        return repo, repo


class TestDynamoDbSearchIndex(SearchIndexContract):
    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        repo = _fresh_repository()
        return repo, repo


class TestDynamoDbExecutionLog(ExecutionLogContract):
    def make_execution_log(self) -> ExecutionLog:
        return _fresh_repository()


class TestDynamoDbTeams(TeamsContract):
    def make_teams(self) -> Teams:
        return _fresh_repository()


class TestDynamoDbCounters(CountersContract):
    def make_counters(self) -> Counters:
        return _fresh_repository()


class TestDynamoDbToolRepository(OneStoreContract):
    def make_repository(self) -> ToolRepository:
        return _fresh_repository()


class TestS3ArtifactStore(ArtifactStoreContract):
    def make_store(self) -> ArtifactStore:
        client = _client("s3")
        provision(s3=client, bucket="toolrt-test-artifacts", region=REGION)
        return S3ArtifactStore(client, "toolrt-test-artifacts")


class TestAgentCoreGateway(ToolGatewayContract):
    def make_gateway(self) -> ToolGateway:
        client = _client("bedrock-agentcore-control")
        result = provision(
            agentcore_control=client,
            gateway_name="toolrt-test",
            gateway_role_arn=ROLE_ARN,
            interceptor_arn=INTERCEPTOR_ARN,
            jwt=JWT,
        )
        assert result.gateway_id is not None
        return AgentCoreGateway(client, result.gateway_id, LAMBDA_ARN, ready_timeout_s=0)  # moto: UPDATING for ever


def _repository() -> DynamoDbToolRepository:
    client = _client("dynamodb")
    provision(dynamodb=client, table_name="toolrt-extra")
    return DynamoDbToolRepository(client, "toolrt-extra")


def test_numbers_keep_their_json_type() -> None:
    """Floats stay floats and big integers stay exact: the body is stored as JSON, which DynamoDB
    does not normalise (it would return 2.0 as 2)."""
    from toolrt.contracts import builders as b

    repo = _repository()
    schema = {"type": "object", "properties": {"x": {"type": "number", "minimum": 2.0, "maximum": 1e16}}}
    tool = b.tool()
    tool = tool.with_version(b.definition(input_schema=schema), b.T0)
    repo.add(tool)
    stored = repo.get(tool.tool_id).definition.input_schema["properties"]["x"]
    assert stored == {"type": "number", "minimum": 2.0, "maximum": 1e16}
    assert isinstance(stored["minimum"], float) and isinstance(stored["maximum"], float)
    execution = attrs.evolve(b.execution(), output={"half": 2.0, "big": 12345678901234567890123, "tiny": 1e-200})
    repo.record_execution(execution)
    out = repo.get_execution(execution.execution_id).output
    assert out == {"half": 2.0, "big": 12345678901234567890123, "tiny": 1e-200}
    assert isinstance(out["half"], float)
    raw = _client("dynamodb").get_item(
        TableName="toolrt-extra", Key={"pk": {"S": f"TOOL#{tool.tool_id}"}, "sk": {"S": "TOOL"}}
    )["Item"]
    assert "body_json" in raw and "body" not in raw


def test_a_record_too_large_for_an_item_is_a_limit_error() -> None:
    """A tool whose history no longer fits a DynamoDB item is LimitExceededError, and nothing changes."""
    from toolrt.contracts import builders as b
    from toolrt.domain import LimitExceededError

    repo = _repository()
    big = "def handler(a, b):\n    return a + b\n" + "# padding\n" * 25_000
    tool = b.tool(code=big)
    repo.add(tool)
    with pytest.raises(LimitExceededError, match="400 KB"):
        repo.save(tool.with_version(b.definition(code=big + "# v2\n"), b.T0))
    assert repo.get(tool.tool_id) == tool


def test_a_missing_table_or_bucket_is_a_storage_error_that_says_what_to_do() -> None:
    """An unprovisioned table or bucket is a StorageError pointing at `toolrt aws provision`, not 'not found'."""
    from toolrt.contracts import builders as b
    from toolrt.domain import StorageError

    repo = DynamoDbToolRepository(_client("dynamodb"), "never-created")
    with pytest.raises(StorageError, match="toolrt aws provision"):
        repo.get("tool-1")
    store = S3ArtifactStore(_client("s3"), "never-created-bucket")
    with pytest.raises(StorageError, match="toolrt aws provision"):
        store.get(b.artifact().code_hash)
