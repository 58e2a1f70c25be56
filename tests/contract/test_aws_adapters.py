"""The AWS adapters pass the shipped contract suites against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from toolrt.adapters.aws import AgentCoreGateway, DynamoDbToolRepository, S3ArtifactStore
from toolrt.adapters.aws.provision import provision
from toolrt.contracts import ArtifactStoreContract, ToolGatewayContract, ToolRepositoryContract
from toolrt.ports import ArtifactStore, ToolGateway, ToolRepository

pytestmark = pytest.mark.aws

REGION = "us-east-1"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router"
ROLE_ARN = "arn:aws:iam::123456789012:role/toolrt-gateway"


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
    with mock_aws():
        yield


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


class TestDynamoDbToolRepository(ToolRepositoryContract):
    def make_repository(self) -> ToolRepository:
        client = _client("dynamodb")
        provision(dynamodb=client, table_name="toolrt-test")
        return DynamoDbToolRepository(client, "toolrt-test")


class TestS3ArtifactStore(ArtifactStoreContract):
    def make_store(self) -> ArtifactStore:
        client = _client("s3")
        provision(s3=client, bucket="toolrt-test-artifacts", region=REGION)
        return S3ArtifactStore(client, "toolrt-test-artifacts")


class TestAgentCoreGateway(ToolGatewayContract):
    def make_gateway(self) -> ToolGateway:
        client = _client("bedrock-agentcore-control")
        result = provision(
            agentcore_control=client, gateway_name="toolrt-test", gateway_role_arn=ROLE_ARN
        )
        assert result.gateway_id is not None
        return AgentCoreGateway(client, result.gateway_id, LAMBDA_ARN)
