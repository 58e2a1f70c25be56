"""The cost of routing a call through a traffic split, next to the sandbox it is meant to be small against.

Run: ``python -m benchmarks.traffic [--calls 300]``. On one SQLite store: un-pinned calls of a tool
without a split (the baseline, same run), with a 50/50 split, with a split and a sticky key, and with a
split whose guard is kept (it reads the candidate's outcomes since the split began after every call of
the candidate), all through the memory sandbox stand-in so that the routing itself is what is timed;
then one real local-sandbox call for scale. Printed: p50/p95 per call and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import toolrt
from benchmarks._stats import measure, quiet_logs, row
from toolrt.adapters.events import RecordingEventPublisher
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryMetrics
from toolrt.adapters.memory.gateway import InProcessGateway
from toolrt.adapters.system import SystemClock, UuidIdGenerator
from toolrt.adapters.validation import build_validator
from toolrt.adapters.wire_formats import ModelApiFormats
from toolrt.application import RuntimePorts
from toolrt.domain import ExecutionMetrics, ExecutionStatus, IsolationLevel, Language
from toolrt.ports import SandboxRequest, SandboxResult
from toolrt.services import build_runtime

BASE = {"name": "price", "description": "Price.", "language": "python"}


class NullSandbox:
    """Answers at once: what remains of a call is toolrt's own work (checks, routing, the record)."""

    isolation = IsolationLevel.PROCESS

    def supports(self, language: Language) -> bool:
        return True

    def run(self, request: SandboxRequest, cancel: object = None) -> SandboxResult:
        return SandboxResult(ExecutionStatus.SUCCEEDED, output=1, metrics=ExecutionMetrics(wall_ms=0.1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        ports = RuntimePorts(
            repository=SqliteToolRepository(Path(data) / "tools.sqlite"),
            artifacts=InMemoryArtifactStore(),
            validator=build_validator(),
            sandbox=NullSandbox(),
            gateway=InProcessGateway(),
            clock=SystemClock(),
            ids=UuidIdGenerator(),
            metrics=InMemoryMetrics(),
            events=RecordingEventPublisher(),
            formats=ModelApiFormats(),
        )
        rt = build_runtime(ports, profile="bench")
        tool_id = rt.register_tool("a", {**BASE, "code": "def handler():\n    return 1\n"}, "public").tool_id
        rt.update_tool("a", tool_id, {**BASE, "code": "def handler():\n    return 2\n"})

        def call(i: int, sticky: bool = False) -> None:
            rt.execute_tool("b", tool_id, {}, sticky_key=str(i) if sticky else None)

        base = measure(call, args.calls)
        rt.set_traffic("a", tool_id, {1: 50, 2: 50})
        split = measure(call, args.calls)
        sticky = measure(lambda i: call(i, True), args.calls)
        rt.set_traffic("a", tool_id, {1: 50, 2: 50}, guard={"margin": 0.5, "min_calls": 10**6})
        guarded = measure(call, args.calls)
        rt.close()
    b50 = statistics.median(base)
    print(row("no split (baseline)", base))
    print(row("50/50 split", split, b50))
    print(row("50/50 split, sticky key", sticky, b50))
    print(row("50/50 split with a guard kept", guarded, b50))
    print(
        f"routing overhead at p50: {statistics.median(split) - b50:+.3f} ms (split), "
        f"{statistics.median(guarded) - b50:+.3f} ms (guarded)"
    )
    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        local = toolrt.connect("local", data_dir=data)
        reg = local.register_tool("a", {**BASE, "code": "def handler():\n    return 1\n"})
        real = measure(lambda i: local.execute_tool("a", reg.tool_id, {}), 50)
        local.close()
    print(row("one real local-sandbox call, for scale", real, b50))


if __name__ == "__main__":
    main()
