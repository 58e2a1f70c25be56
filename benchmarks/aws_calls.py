"""How many AWS API calls each toolrt operation costs on the AWS adapters (against moto, in process).

Run: ``.venv/bin/python -m benchmarks.aws_calls``. Calls are counted with botocore's ``before-call``
event (one per API call, retries excluded); ratios are against a cache-miss registration.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from moto import mock_aws

from toolrt.adapters.aws import AgentCoreGateway, DynamoDbToolRepository, S3ArtifactStore, make_clients, provision
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, Tool, ValidationReport

REGION = "us-east-1"


class CallCounter:
    """Counts API calls per operation name on the clients it is attached to."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def measure(self, action: Callable[[], Any]) -> collections.Counter[str]:
        self.calls.clear()
        action()
        return collections.Counter(self.calls)


def _artifact(tool: Tool) -> Artifact:
    d = tool.definition
    return Artifact(tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p"), b.T0)


def main() -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        clients = make_clients(REGION)
        result = provision(
            dynamodb=clients.dynamodb, s3=clients.s3, region=REGION, agentcore_control=clients.agentcore_control,
            gateway_role_arn="arn:aws:iam::123456789012:role/toolrt-gateway",
        )
        assert result.gateway_id is not None
        repo = DynamoDbToolRepository(clients.dynamodb, "toolrt")
        store = S3ArtifactStore(clients.s3, "toolrt-artifacts")
        gateway = AgentCoreGateway(clients.agentcore_control, result.gateway_id,
                                   "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router")
        counter = CallCounter()
        for client in (clients.dynamodb, clients.s3, clients.agentcore_control):
            counter.attach(client)

        def register(tool: Tool) -> Tool:
            if store.get(tool.code_hash) is None:
                store.put(_artifact(tool))
            repo.add(tool)
            published = tool.with_gateway_ref(gateway.register(tool), b.T0)
            repo.save(published)
            return published

        miss_tool = b.tool("tool-miss", owner="a", name="adder")
        hit_tool = b.tool("tool-hit", owner="b", name="adder")  # same code as miss_tool: a cache hit
        state: dict[str, Tool] = {}
        rows: list[tuple[str, collections.Counter[str]]] = []
        rows.append(("register (miss)", counter.measure(lambda: state.update(miss=register(miss_tool)))))
        rows.append(("register (hit)", counter.measure(lambda: state.update(hit=register(hit_tool)))))

        def update() -> None:
            current = repo.get("tool-miss")
            new = current.with_version(b.definition("adder", code="def handler(a, b):\n    return b + a\n"),
                                       b.T0 + timedelta(seconds=1))
            if store.get(new.code_hash) is None:
                store.put(_artifact(new))
            repo.save(new)
            gateway.update(new)

        rows.append(("update (new code)", counter.measure(update)))

        def execute_lookup() -> None:
            tool = repo.get("tool-hit")
            store.get(tool.code_hash)
            repo.record_execution(b.execution("exec-1", "tool-hit"))

        rows.append(("execute lookup", counter.measure(execute_lookup)))

        def deregister() -> None:
            tool = repo.get("tool-miss")
            gateway.deregister(tool)
            repo.save(tool.deactivated(b.T0 + timedelta(seconds=2)))
            for h in tool.code_hashes:
                if not repo.references(h):
                    store.delete(h)

        rows.append(("deregister", counter.measure(deregister)))

    baseline = sum(rows[0][1].values())
    print(f"{'operation':<20}{'calls':>6}{'vs miss':>9}  breakdown")
    for label, calls in rows:
        total = sum(calls.values())
        detail = ", ".join(f"{k} x{v}" for k, v in sorted(calls.items()))
        print(f"{label:<20}{total:>6}{total / baseline:>9.2f}  {detail}")


if __name__ == "__main__":
    main()
