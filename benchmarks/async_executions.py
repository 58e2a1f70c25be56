"""Many concurrent executions through the asyncio runtime, against the same calls made one by one.

Run: ``python -m benchmarks.async_executions [--calls 200]``. On the local profile (real sandbox), the
same number of calls of a trivial Python tool are made sequentially (the baseline, same run) and as
``asyncio.gather`` of ``--calls`` coroutines through ``toolrt.connect_async``, which runs at most
``max_concurrent_executions`` at once; printed: throughput, p50/p95 per call, the ratio, and the
most calls seen in the sandbox at once (which must not exceed the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from typing import Any

import toolrt
from benchmarks._stats import p, quiet_logs

ADD = {
    "name": "add",
    "description": "Add.",
    "language": "python",
    "code": "def handler(a: int, b: int) -> int:\n    return a + b\n",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        rt = toolrt.connect_async("local", data_dir=data)
        reg = rt.sync.register_tool("agent-a", ADD)
        for _ in range(10):
            rt.sync.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2})

        # Count the calls inside the sandbox at once: the limit is what the runtime promises.
        sandbox = rt.sync.ports.sandbox
        real_run = sandbox.run
        lock = threading.Lock()
        inside = [0, 0]  # now, most

        def counted_run(*run_args: Any, **run_kwargs: Any) -> Any:
            with lock:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
            try:
                return real_run(*run_args, **run_kwargs)
            finally:
                with lock:
                    inside[0] -= 1

        sandbox.run = counted_run  # type: ignore[method-assign]

        sequential: list[float] = []
        started = time.perf_counter()
        for i in range(args.calls):
            t = time.perf_counter()
            rt.sync.execute_tool("agent-a", reg.tool_id, {"a": i, "b": 2})
            sequential.append((time.perf_counter() - t) * 1000)
        seq_rate = args.calls / (time.perf_counter() - started)

        async def one(i: int) -> float:
            t = time.perf_counter()
            done = await rt.execute_tool("agent-a", reg.tool_id, {"a": i, "b": 2})
            assert done.output == i + 2, done.error
            return (time.perf_counter() - t) * 1000

        async def burst() -> tuple[list[float], float]:
            t = time.perf_counter()
            latencies = await asyncio.gather(*(one(i) for i in range(args.calls)))
            return list(latencies), args.calls / (time.perf_counter() - t)

        concurrent, rate = asyncio.run(burst())
        asyncio.run(rt.close())
    limit = rt.sync.policy.max_concurrent_executions
    print(
        f"{args.calls} calls of a trivial Python tool, local profile, {os.cpu_count()} CPUs, max_concurrent_executions={limit}"
    )
    print(
        f"{'sequential (baseline)':<40} {seq_rate:8.1f} exec/s   p50 {p(sequential, 50):7.2f} ms   p95 {p(sequential, 95):7.2f} ms"
    )
    print(
        f"{'asyncio.gather via connect_async':<40} {rate:8.1f} exec/s   p50 {p(concurrent, 50):7.2f} ms   p95 {p(concurrent, 95):7.2f} ms"
        f"   {rate / seq_rate:4.2f}x the baseline's throughput"
    )
    verdict = "respected" if inside[1] <= limit else "EXCEEDED"
    print(f"most calls in the sandbox at once: {inside[1]} (limit {limit}: {verdict})")


if __name__ == "__main__":
    main()
