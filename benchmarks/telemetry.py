"""What events, metrics and tracing add to a warm execution.

Run: ``python -m benchmarks.telemetry [--calls 400]``. One SQLite store, one registered tool, and
the same un-pinned call timed on runtimes that differ only in their observers:

- bare: metrics and events dropped, no tracer (the baseline, same run);
- events + metrics: the profile's in-process metrics and an event subscriber (every runtime also
  keeps the counters no execution record holds for the store, ``StoredCounters``: registrations,
  cache hits, refusals; a call adds none of them, so on the execution path this is one set lookup);
- + tracing (API only): OpenTelemetry's API with no SDK configured (what ``telemetry="auto"`` costs
  an application that installed ``[otel]`` but exports nothing);
- + tracing (SDK): an SDK TracerProvider and MeterProvider with in-memory exporters (every span and
  instrument recorded).

Each variant runs first with the null sandbox (so that toolrt's own work is what is timed) and then
with the real local sandbox (what a caller feels). Printed: p50/p95 per call and the ratio to bare.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import attrs

import toolrt
from benchmarks._stats import measure, quiet_logs, row
from benchmarks.traffic import NullSandbox
from toolrt.application import ToolRuntime
from toolrt.domain import DomainEvent
from toolrt.services import build_runtime

CODE = "def handler(x: int) -> int:\n    return x + 1\n"


class _Dropped:
    """A MetricsSink and EventPublisher that keep nothing: the bare baseline."""

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        pass

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {"counters": {}, "timings": {}}

    def publish(self, event: DomainEvent) -> None:
        pass


def _variants(base: ToolRuntime) -> list[tuple[str, ToolRuntime]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from toolrt.adapters.memory import InMemoryMetrics
    from toolrt.adapters.telemetry import OpenTelemetryMetrics, OpenTelemetryTracer

    ports = base.ports
    dropped = _Dropped()

    def runtime(**changes: Any) -> ToolRuntime:
        return build_runtime(attrs.evolve(ports, **changes), policy=base.policy, profile="local")

    observed = runtime(metrics=InMemoryMetrics(), tracer=None)
    observed.subscribe(DomainEvent, lambda event: None)
    api_only = runtime(metrics=OpenTelemetryMetrics(InMemoryMetrics()), tracer=OpenTelemetryTracer())
    api_only.subscribe(DomainEvent, lambda event: None)
    spans = TracerProvider()
    spans.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sdk = runtime(metrics=OpenTelemetryMetrics(InMemoryMetrics(), meters), tracer=OpenTelemetryTracer(spans))
    sdk.subscribe(DomainEvent, lambda event: None)
    return [
        ("bare (no metrics, events or tracing)", runtime(metrics=dropped, events=dropped, tracer=None)),
        ("events + metrics", observed),
        ("+ tracing, API only (no SDK)", api_only),
        ("+ tracing and instruments, SDK", sdk),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        for sandbox_label, null in (("null sandbox", True), ("local sandbox", False)):
            base = toolrt.connect("local", data_dir=Path(data) / sandbox_label.replace(" ", "-"), telemetry="off")
            if null:
                base = build_runtime(
                    attrs.evolve(base.ports, sandbox=NullSandbox()), policy=base.policy, profile="local"
                )
            tool_id = base.register_tool(
                "bench", {"name": "inc", "description": "Add one.", "language": "python", "code": CODE}
            ).tool_id
            print(f"-- {sandbox_label}, {args.calls} warm calls each, the variants interleaved in 20 rounds")
            variants = _variants(base)
            times: dict[str, list[float]] = {label: [] for label, _ in variants}
            for _ in range(20):  # interleaved, so that a busy moment of the machine hits every variant
                for label, rt in variants:
                    times[label] += measure(
                        lambda i, rt=rt, tool_id=tool_id: rt.execute_tool("bench", tool_id, {"x": i}),
                        max(1, args.calls // 20),
                        warmup=2,
                    )
            baseline = statistics.median(times[variants[0][0]])
            for label, _ in variants:
                print(row(label, times[label], baseline), flush=True)
            base.close()


if __name__ == "__main__":
    main()
