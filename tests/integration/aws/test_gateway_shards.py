"""Tools share gateway targets: ten thousand fit on one gateway, within AgentCore's quotas.

Against a moto server over HTTP, with AgentCore's quotas and rules enforced in front of it
(``AgentCoreQuotas``: 100 targets, unique names, CreateGatewayTarget at 5 a second, no empty or
over-long tool lists), which moto itself does not keep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.aws.agentcore_quotas import AgentCoreQuotas
from tests.integration.aws.conftest import INTERCEPTOR_ARN, JWT, LAMBDA_ARN, REGION, ROLE_ARN
from toolrt.adapters.aws import AgentCoreGateway, make_clients, provision
from toolrt.adapters.aws.gateway import TargetQuota, tool_code
from toolrt.adapters.aws.leases import DynamoDbLeases
from toolrt.contracts import builders as b
from toolrt.domain import NotFoundError, RegistrationError, Tool

pytestmark = pytest.mark.aws


class Setup:
    def __init__(self, endpoint: str, **quotas: Any) -> None:
        self.endpoint = endpoint
        self.clients = make_clients(REGION, endpoint)
        made = provision(
            dynamodb=self.clients.dynamodb,
            s3=self.clients.s3,
            region=REGION,
            agentcore_control=self.clients.agentcore_control,
            gateway_role_arn=ROLE_ARN,
            interceptor_arn=INTERCEPTOR_ARN,
            jwt=JWT,
        )
        assert made.gateway_id
        self.gateway_id = made.gateway_id
        self.observer = make_clients(REGION, endpoint).agentcore_control
        self.quotas = AgentCoreQuotas(self.clients.agentcore_control, self.observer, **quotas)

    def gateway(self, **kwargs: Any) -> AgentCoreGateway:
        kwargs.setdefault("quota", TargetQuota())
        return AgentCoreGateway(
            self.clients.agentcore_control, self.gateway_id, LAMBDA_ARN, ready_timeout_s=0, **kwargs
        )

    def targets(self) -> list[dict[str, Any]]:
        pages = self.observer.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=self.gateway_id)
        return [t for page in pages for t in page["items"]]

    def published(self) -> dict[str, str]:
        """Tool id by reference, as a fresh adapter (another process) reads them from the targets."""
        return self.gateway().published_tools()


def _tools(count: int, start: int = 0, owner: str = "agent-a") -> list[Tool]:
    return [b.tool(f"tool-{n:032x}", owner=owner, name=f"tool_number_{n}") for n in range(start, start + count)]


def test_ten_thousand_tools_fit_on_one_gateway(aws_endpoint: str) -> None:
    """10,000 tools registered in batches land on fewer than 100 shard targets (128 tools each at most),
    every one readable back by another process, with no call over a quota. (Pacing is another test's:
    here target requests may go out as fast as the service takes them.)"""
    setup = Setup(aws_endpoint, creates_per_s=1000)
    gateway = setup.gateway(quota=TargetQuota(per_second=1000))
    tools = _tools(10_000)
    refs: list[Any] = []
    for start in range(0, len(tools), 1000):
        refs += gateway.register_many(tools[start : start + 1000])
    assert all(isinstance(r, str) for r in refs), next(r for r in refs if not isinstance(r, str))
    targets = setup.targets()
    assert len(targets) == 79 and all(t["name"].startswith("s") for t in targets), gateway.shard_sizes()
    assert set(setup.published().values()) == {t.tool_id for t in tools}
    assert max(gateway.shard_sizes().values()) == 128
    # Nothing refused but, at most, a throttled request near the rate's edge (botocore retried it).
    assert set(setup.quotas.refused) <= {"ThrottlingException"}
    assert gateway.quota.max_in_flight <= 5
    # Batches fill shards in order: about one write per 128 tools, not one per tool.
    writes = setup.quotas.calls["CreateGatewayTarget"] + setup.quotas.calls["UpdateGatewayTarget"]
    assert writes <= 90, setup.quotas.calls


def test_a_full_gateway_says_which_quota_it_reached(aws_endpoint: str) -> None:
    """Past its targets quota a gateway refuses a new tool with a RegistrationError naming the limit;
    the service's own refusal (its quota lower than toolrt was told) is one too; nothing half-made stays."""
    setup = Setup(aws_endpoint, max_targets=3)
    small = setup.gateway(tools_per_target=2, max_targets=2)
    refs = small.register_many(_tools(5))
    assert all(isinstance(r, str) for r in refs[:4]), refs
    assert isinstance(refs[4], RegistrationError) and "max_targets=2" in str(refs[4])
    beyond = setup.gateway(tools_per_target=2, max_targets=10)
    refs = beyond.register_many(_tools(4, start=10))
    assert isinstance(refs[-1], RegistrationError) and "ServiceQuotaExceededException" in str(refs[-1])
    assert len(setup.targets()) == 3


def test_concurrent_registrations_share_target_writes(aws_endpoint: str) -> None:
    """Thirty tools registered at once from thirty threads all publish, in fewer writes than tools
    (changes to one shard waiting together go out in one write), and at most five operations at once."""
    setup = Setup(aws_endpoint)
    gateway = setup.gateway()
    gateway.register(_tools(1, start=999)[0])
    before = setup.quotas.calls["UpdateGatewayTarget"]
    tools = _tools(30)
    refs: dict[str, str] = {}

    def register(tool: Tool) -> None:
        refs[tool.tool_id] = gateway.register(tool)

    threads = [threading.Thread(target=register, args=(t,)) for t in tools]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == 30 and set(setup.published()) >= set(refs.values())
    assert setup.quotas.calls["UpdateGatewayTarget"] - before < 30
    assert gateway.quota.max_in_flight <= 5


_OTHER_PROCESS = """
import json, sys
from toolrt.adapters.aws import AgentCoreGateway, make_clients
from toolrt.adapters.aws.leases import DynamoDbLeases
from toolrt.contracts import builders as b
endpoint, gateway_id, lambda_arn, first, count = sys.argv[1:6]
clients = make_clients("us-east-1", endpoint)
gateway = AgentCoreGateway(clients.agentcore_control, gateway_id, lambda_arn, ready_timeout_s=0,
                           leases=DynamoDbLeases(clients.dynamodb, "toolrt", poll_s=0.02))
refs = [gateway.register(b.tool(f"tool-{n:032x}", name=f"other_{n}")) for n in range(int(first), int(first) + int(count))]
print(json.dumps(refs))
"""


def test_two_processes_registering_on_one_shard_lose_no_tool(aws_endpoint: str) -> None:
    """Another process registers tools on the same shard at the same time as this one: the shard's
    lease (an item in the table) lets one rewrite it at a time, so every tool of both ends up listed."""
    setup = Setup(aws_endpoint)
    leases = DynamoDbLeases(setup.clients.dynamodb, "toolrt", poll_s=0.02)
    gateway = setup.gateway(leases=leases)
    gateway.register(_tools(1, start=5000)[0])  # the shard both will write to
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS, aws_endpoint, setup.gateway_id, LAMBDA_ARN, "100", "15"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    mine = [gateway.register(t) for t in _tools(15, start=200)]
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    theirs = json.loads(out)
    published = setup.published()
    assert set(mine) | set(theirs) <= set(published), "a concurrent write replaced another's tools"
    assert len(published) == 31, sorted(published.values())
    assert (
        setup.clients.dynamodb.scan(
            TableName="toolrt", FilterExpression="sk = :l", ExpressionAttributeValues={":l": {"S": "LEASE"}}
        )["Count"]
        == 0
    )


def test_throttled_target_creation_is_retried_by_botocore(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that goes faster than CreateGatewayTarget's rate (another process sharing the account,
    say) is throttled by the service and retried by botocore until every shard is made."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0.05)
    setup = Setup(aws_endpoint, creates_per_s=2)
    gateway = setup.gateway(tools_per_target=1, quota=TargetQuota(concurrent=5, per_second=50))
    refs = gateway.register_many(_tools(6))
    assert all(isinstance(r, str) for r in refs), refs
    assert setup.quotas.refused["ThrottlingException"] > 0
    assert len(setup.targets()) == 6


def test_updates_move_and_remove_tools_in_their_shard(aws_endpoint: str) -> None:
    """An update rewrites the tool in its shard (same reference); one that outgrows the shard moves it;
    the last tool's deregistration removes the shard target; an unpublished tool's update is NotFoundError."""
    setup = Setup(aws_endpoint)
    gateway = setup.gateway(max_payload_bytes=4096)
    first, second = _tools(2)
    ref = gateway.register(first)
    gateway.register(second)
    described = first.with_gateway_ref(ref, b.T0).with_version(b.definition(description="Adds."), b.T0 + timedelta(1))
    gateway.update(described)
    target_id = ref.split("/")[0]
    shard = setup.observer.get_gateway_target(gatewayIdentifier=setup.gateway_id, targetId=target_id)
    (definition,) = [
        d
        for d in shard["targetConfiguration"]["mcp"]["lambda"]["toolSchema"]["inlinePayload"]
        if d["name"].startswith(tool_code(first.tool_id))
    ]
    assert definition["description"] == "Adds."
    bulky = described.with_version(b.definition(description="x" * 3700), b.T0 + timedelta(2))
    gateway.update(bulky)  # no longer fits beside the other tool: it moves to a shard of its own
    assert len(setup.targets()) == 2
    assert first.tool_id in setup.published().values()
    gateway.deregister(bulky)
    gateway.deregister(second.with_gateway_ref(ref, b.T0))
    assert setup.targets() == []
    with pytest.raises(NotFoundError):
        gateway.update(second)


def test_a_tool_returning_a_number_is_published_with_an_object_output_schema(aws_endpoint: str) -> None:
    """AgentCore refuses a non-object output schema at the top: such a tool is published wrapped
    ({"result": ...}), and the target is accepted."""
    setup = Setup(aws_endpoint)
    counts = b.tool("tool-" + "f" * 32, name="count").with_version(
        b.definition("count", output_schema={"type": "integer", "minimum": 0}), b.T0
    )
    ref = setup.gateway().register(counts)
    assert ref in setup.published() and setup.quotas.refused == {}
