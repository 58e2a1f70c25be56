"""How many AWS API calls each toolrt operation costs on the aws profile (against moto, in process).

Run: ``.venv/bin/python -m benchmarks.aws_calls``. Calls are counted with botocore's ``before-call``
event (one per API call, retries excluded); ratios are against a cache-miss registration.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

from moto import mock_aws

from benchmarks._stats import quiet_logs
from toolrt.adapters.aws import JwtAuthorizer, make_clients, provision
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.settings import Settings

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


def main() -> None:
    quiet_logs()
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        setup = make_clients(REGION)
        result = provision(
            dynamodb=setup.dynamodb,
            s3=setup.s3,
            region=REGION,
            agentcore_control=setup.agentcore_control,
            gateway_role_arn="arn:aws:iam::123456789012:role/toolrt-gateway",
            interceptor_arn="arn:aws:lambda:us-east-1:123456789012:function:toolrt-interceptor",
            jwt=JwtAuthorizer("https://issuer.example/.well-known/openid-configuration", audiences=("toolrt",)),
        )
        settings = Settings.load(
            {
                "profile": "aws",
                "sandbox": "local",
                "aws_region": REGION,
                "gateway_id": result.gateway_id,
                "gateway_lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router",
            }
        )
        container = build_container(settings)
        counter = CallCounter()
        clients = container.adapters.aws.clients()  # the same clients the runtime's adapters use
        for client in (clients.dynamodb, clients.s3, clients.agentcore_control):
            counter.attach(client)
        rows: list[tuple[str, collections.Counter[str]]] = []
        with container.runtime() as rt:
            state: dict[str, Any] = {}
            rows.append(
                (
                    "register (miss)",
                    counter.measure(lambda: state.update(miss=rt.register_tool("a", b.definition("adder"), "public"))),
                )
            )
            rows.append(
                (
                    "register (hit)",
                    counter.measure(lambda: state.update(hit=rt.register_tool("b", b.definition("adder")))),
                )
            )
            assert state["hit"].cache_hit
            new_code = b.definition("adder", code="def handler(a, b):\n    return b + a\n")
            rows.append(
                ("update (new code)", counter.measure(lambda: rt.update_tool("a", state["miss"].tool_id, new_code)))
            )
            rows.append(
                ("execute", counter.measure(lambda: rt.execute_tool("b", state["hit"].tool_id, {"a": 1, "b": 2})))
            )
            rows.append(("get status", counter.measure(lambda: rt.get_tool_status(state["hit"].tool_id))))
            rows.append(("list one agent's tools", counter.measure(lambda: rt.list_tools("a"))))
            rows.append(("deregister", counter.measure(lambda: rt.deregister_tool("a", state["miss"].tool_id))))

    baseline = sum(rows[0][1].values())
    print("AWS API calls per toolrt operation (toolrt.connect('aws', sandbox='local') on moto; retries excluded)")
    print(f"{'operation':<24}{'calls':>6}{'vs miss':>9}  breakdown")
    for label, calls in rows:
        total = sum(calls.values())
        detail = ", ".join(f"{k} x{v}" for k, v in sorted(calls.items()))
        print(f"{label:<24}{total:>6}{total / baseline:>9.2f}  {detail}")


if __name__ == "__main__":
    main()
