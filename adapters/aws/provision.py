"""Idempotent creation of the AWS resources toolrt uses: the table, the bucket and the gateway."""

from __future__ import annotations

from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, http_status, translate
from toolrt.adapters.aws.repository import table_definition
from toolrt.application.logs import get_logger
from toolrt.domain import StorageError

log = get_logger(__name__)

GATEWAY_AUTHORIZER = "AWS_IAM"


@attrs.frozen
class ProvisionResult:
    """What provisioning created and what it found already there."""

    created: tuple[str, ...] = ()
    found: tuple[str, ...] = ()
    gateway_id: str | None = None
    gateway_url: str | None = None

    def lines(self) -> list[str]:
        """One human-readable line per resource, for the CLI."""
        return [f"created  {r}" for r in self.created] + [f"found    {r}" for r in self.found]

    def merge(self, other: ProvisionResult) -> ProvisionResult:
        """Both results together (the other's gateway wins when set)."""
        return ProvisionResult(
            self.created + other.created,
            self.found + other.found,
            other.gateway_id or self.gateway_id,
            other.gateway_url or self.gateway_url,
        )


def provision(
    *,
    dynamodb: Any = None,
    table_name: str = "toolrt",
    s3: Any = None,
    bucket: str = "toolrt-artifacts",
    region: str = "us-east-1",
    agentcore_control: Any = None,
    gateway_name: str = "toolrt",
    gateway_id: str | None = None,
    gateway_role_arn: str | None = None,
) -> ProvisionResult:
    """Create whichever of the table, bucket and gateway are missing; each client given is one to do.

    Running it again changes nothing and reports every resource as found. A gateway is found by
    ``gateway_id`` when given, else by ``gateway_name``; creating one needs ``gateway_role_arn``
    (the role AgentCore assumes to invoke the router Lambda).
    """
    result = ProvisionResult()
    if dynamodb is not None:
        result = result.merge(_table(dynamodb, table_name))
    if s3 is not None:
        result = result.merge(_bucket(s3, bucket, region))
    if agentcore_control is not None:
        result = result.merge(_gateway(agentcore_control, gateway_name, gateway_id, gateway_role_arn))
    for line in result.lines():
        log.info("aws.provision", resource=line)
    return result


def _table(client: Any, table_name: str) -> ProvisionResult:
    what = f"dynamodb table {table_name}"
    try:
        client.describe_table(TableName=table_name)
        return ProvisionResult(found=(what,))
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise translate(exc, backend="dynamodb", operation="describe_table", resource=what) from exc
    except BotoCoreError as exc:
        raise translate(exc, backend="dynamodb", operation="describe_table", resource=what) from exc
    try:
        client.create_table(**table_definition(table_name))
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except ClientError as exc:
        if error_code(exc) == "ResourceInUseException":
            return ProvisionResult(found=(what,))  # created concurrently by another provisioner
        raise translate(exc, backend="dynamodb", operation="create_table", resource=what) from exc
    except BotoCoreError as exc:
        raise translate(exc, backend="dynamodb", operation="create_table", resource=what) from exc
    return ProvisionResult(created=(what,))


def _bucket(client: Any, bucket: str, region: str) -> ProvisionResult:
    what = f"s3 bucket {bucket}"
    try:
        client.head_bucket(Bucket=bucket)
        return ProvisionResult(found=(what,))
    except ClientError as exc:
        if http_status(exc) != 404 and error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise translate(exc, backend="s3", operation="head_bucket", resource=what) from exc
    except BotoCoreError as exc:
        raise translate(exc, backend="s3", operation="head_bucket", resource=what) from exc
    args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**args)
    except ClientError as exc:
        if error_code(exc) == "BucketAlreadyOwnedByYou":
            return ProvisionResult(found=(what,))
        raise translate(exc, backend="s3", operation="create_bucket", resource=what) from exc
    except BotoCoreError as exc:
        raise translate(exc, backend="s3", operation="create_bucket", resource=what) from exc
    return ProvisionResult(created=(what,))


def _gateway(client: Any, name: str, gateway_id: str | None, role_arn: str | None) -> ProvisionResult:
    try:
        if gateway_id is not None:
            found = client.get_gateway(gatewayIdentifier=gateway_id)
            return ProvisionResult(found=(f"agentcore gateway {gateway_id}",), gateway_id=gateway_id,
                                   gateway_url=found.get("gatewayUrl"))
        for page in client.get_paginator("list_gateways").paginate():
            for item in page.get("items", []):
                if item.get("name") == name:
                    gid = str(item["gatewayId"])
                    url = client.get_gateway(gatewayIdentifier=gid).get("gatewayUrl")
                    return ProvisionResult(found=(f"agentcore gateway {name} ({gid})",), gateway_id=gid, gateway_url=url)
        if role_arn is None:
            raise StorageError(
                f"no gateway named {name!r} exists and none can be created without a role ARN; "
                "pass gateway_role_arn (the IAM role AgentCore assumes to invoke the router Lambda)",
                backend="agentcore-gateway",
            )
        created = client.create_gateway(
            name=name,
            description="toolrt: tools registered by agents",
            roleArn=role_arn,
            protocolType="MCP",
            authorizerType=GATEWAY_AUTHORIZER,
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, backend="agentcore-gateway", operation="provision gateway", resource=name,
                        kind="gateway") from exc
    gid = str(created["gatewayId"])
    return ProvisionResult(created=(f"agentcore gateway {name} ({gid})",), gateway_id=gid,
                           gateway_url=created.get("gatewayUrl"))
