"""Registrations per second and AgentCore Gateway calls per registration, at 1,000 tools (moto over HTTP).

Run: ``.venv/bin/python -m benchmarks.aws_gateway`` (``--tools N`` to change the size). A moto server
on 127.0.0.1 plays AgentCore's control plane (it keeps targets and their inline schemas, though not
AgentCore's quotas: toolrt's own pacing, five target requests a second, is what bounds the rates).
Calls are counted with botocore's ``before-call`` event (retries excluded). Scenarios:

- baseline: one target per tool, as toolrt published before shards (stops at the 100-target quota,
  so it is measured on 100 tools);
- batch: ``register_many`` in batches of 100 (what ``rt.register_tools`` does), up to ``--tools``;
- concurrent: single registrations from 16 threads at once (changes to a shard go out together);
- one by one: single registrations in one thread, the last 100 of a gateway holding ``--tools``.
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from moto.server import ThreadedMotoServer

from benchmarks._stats import quiet_logs
from toolrt.adapters.aws import AgentCoreGateway, JwtAuthorizer, make_clients, provision
from toolrt.adapters.aws.gateway import TargetQuota
from toolrt.contracts import builders as b
from toolrt.domain import Tool

REGION = "us-east-1"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router"


class Counter:
    """AgentCore control-plane calls by operation (botocore's ``before-call``: one per API call)."""

    def __init__(self, client: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-call.bedrock-agentcore-control", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1


def _tools(count: int, start: int) -> list[Tool]:
    return [
        b.tool(f"tool-{n:032x}", owner=f"agent-{n % 7}", name=f"tool_number_{n}") for n in range(start, start + count)
    ]


def _gateway_on(endpoint: str) -> tuple[Any, str]:
    clients = make_clients(REGION, endpoint)
    made = provision(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        region=REGION,
        agentcore_control=clients.agentcore_control,
        gateway_role_arn="arn:aws:iam::123456789012:role/toolrt-gateway",
        interceptor_arn="arn:aws:lambda:us-east-1:123456789012:function:toolrt-interceptor",
        jwt=JwtAuthorizer("https://idp.example/.well-known/openid-configuration", audiences=("toolrt",)),
    )
    assert made.gateway_id is not None
    return clients, made.gateway_id


def _measure(
    endpoint: str, setup: Callable[[AgentCoreGateway], None], run: Callable[[AgentCoreGateway], int], **options: Any
) -> tuple[int, float, collections.Counter[str], int]:
    """(registrations, seconds, calls by operation, most target operations in flight) of ``run``."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    clients, gateway_id = _gateway_on(endpoint)
    quota = TargetQuota()
    gateway = AgentCoreGateway(
        clients.agentcore_control, gateway_id, LAMBDA_ARN, ready_timeout_s=0, quota=quota, **options
    )
    setup(gateway)
    counter = Counter(clients.agentcore_control)
    started = time.perf_counter()
    done = run(gateway)
    return done, time.perf_counter() - started, counter.calls, quota.max_in_flight


def _one_by_one(tools: Sequence[Tool]) -> Callable[[AgentCoreGateway], int]:
    def run(gateway: AgentCoreGateway) -> int:
        for tool in tools:
            gateway.register(tool)
        return len(tools)

    return run


def _batches(tools: Sequence[Tool], size: int = 100) -> Callable[[AgentCoreGateway], int]:
    def run(gateway: AgentCoreGateway) -> int:
        outcomes = [
            o for start in range(0, len(tools), size) for o in gateway.register_many(tools[start : start + size])
        ]
        assert all(isinstance(o, str) for o in outcomes), next(o for o in outcomes if not isinstance(o, str))
        return len(outcomes)

    return run


def _concurrent(tools: Sequence[Tool], threads: int = 16) -> Callable[[AgentCoreGateway], int]:
    def run(gateway: AgentCoreGateway) -> int:
        pending = list(tools)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    tool = pending.pop()
                gateway.register(tool)

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return len(tools)

    return run


def _filled(count: int) -> Callable[[AgentCoreGateway], None]:
    def setup(gateway: AgentCoreGateway) -> None:
        _batches(_tools(count, 0))(gateway)

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=1000, help="tools on the gateway (default 1000)")
    args = parser.parse_args()
    quiet_logs()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    n = args.tools
    tail = min(100, n)
    rows: list[tuple[str, int, tuple[int, float, collections.Counter[str], int]]] = []
    try:
        rows.append(
            (
                "baseline: a target per tool",
                100,
                _measure(endpoint, lambda g: None, _one_by_one(_tools(100, 0)), tools_per_target=1, max_targets=1000),
            )
        )
        rows.append(("batches of 100 (register_many)", n, _measure(endpoint, lambda g: None, _batches(_tools(n, 0)))))
        rows.append(
            ("16 threads, one tool each call", n, _measure(endpoint, lambda g: None, _concurrent(_tools(n, 0))))
        )
        rows.append(
            (
                f"one by one, the last {tail}",
                n,
                _measure(endpoint, _filled(n - tail), _one_by_one(_tools(tail, n - tail))),
            )
        )
    finally:
        server.stop()
    base_rate = rows[0][2][0] / rows[0][2][1]
    base_calls = sum(rows[0][2][2].values()) / rows[0][2][0]
    print("AgentCore Gateway: registrations per second and gateway calls per registration (moto over HTTP)")
    print(
        f"{'scenario':<34}{'tools':>6}{'reg/s':>9}{'x base':>8}{'calls/reg':>11}{'x base':>8}{'in flight':>11}  calls"
    )
    for label, tools, (done, seconds, calls, in_flight) in rows:
        rate = done / seconds
        per = sum(calls.values()) / done
        detail = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        print(
            f"{label:<34}{tools:>6}{rate:>9.1f}{rate / base_rate:>8.2f}{per:>11.3f}{per / base_calls:>8.3f}"
            f"{in_flight:>11}  {detail}"
        )


if __name__ == "__main__":
    main()
