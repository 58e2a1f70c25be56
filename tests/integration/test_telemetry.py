"""OpenTelemetry: what toolrt emits through opentelemetry-api, read back with the SDK's in-memory
exporter and metric reader (the way an application that embeds toolrt would see it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import toolrt
from toolrt.adapters import telemetry
from toolrt.adapters.telemetry import OpenTelemetryTracer

SECRET = "s3cr3t-param-value-7781"
ECHO = {
    "name": "echo",
    "description": "Print and return a word.",
    "language": "python",
    "code": "def handler(word: str) -> dict:\n    print(word)\n    return {'said': word}\n",
}
BOOM = {
    "name": "boom",
    "description": "Always fails.",
    "language": "python",
    "code": "def handler(word: str) -> str:\n    raise KeyError(word)\n",
}

# The global providers can be set once per process: this module sets them, as an application would.
EXPORTER = InMemorySpanExporter()
READER = InMemoryMetricReader()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[toolrt.ToolRuntime]:
    EXPORTER.clear()
    runtime = toolrt.connect("local", data_dir=tmp_path / "data")
    yield runtime
    runtime.close()


def _spans(prefix: str) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.name.startswith(prefix)]


def _all_attribute_text() -> str:
    return " ".join(
        f"{k}=" + str(v) for s in EXPORTER.get_finished_spans() for k, v in (s.attributes or {}).items()
    ) + " ".join(s.status.description or "" for s in EXPORTER.get_finished_spans())


def test_register_and_execute_are_spans_with_genai_attributes_inside_the_callers_trace(
    rt: toolrt.ToolRuntime,
) -> None:
    """Registration and execution are spans under the application's own span, with tool, version,
    agent, cache hit, status and sandbox time, and never the call's params, output or stdout."""
    app_tracer = trace.get_tracer("the-agent")
    with app_tracer.start_as_current_span("agent step") as outer:
        reg = rt.register_tool("alice", ECHO, visibility="public")
        rt.register_tool("bob", ECHO)  # the same code: a cache hit for bob
        done = rt.execute_tool("bob", reg.tool_id, {"word": SECRET})
    assert done.ok and done.output == {"said": SECRET}

    registered = _spans("toolrt.register_tool")
    assert [s.attributes["toolrt.agent.id"] for s in registered] == ["alice", "bob"]  # type: ignore[index]
    assert [s.attributes["toolrt.cache_hit"] for s in registered] == [False, True]  # type: ignore[index]
    assert registered[0].attributes["toolrt.tool.id"] == reg.tool_id  # type: ignore[index]
    assert registered[0].attributes["gen_ai.tool.name"] == "echo"  # type: ignore[index]

    (executed,) = _spans("execute_tool")
    attrs: Any = executed.attributes
    assert executed.name == "execute_tool echo"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.call.id"] == done.execution_id
    assert attrs["toolrt.tool.id"] == reg.tool_id and attrs["toolrt.tool.version"] == 1
    assert attrs["toolrt.agent.id"] == "bob" and attrs["toolrt.execution.status"] == "succeeded"
    assert attrs["toolrt.sandbox.wall_ms"] > 0 and attrs["toolrt.isolation"] == done.metrics.isolation.value
    assert executed.status.status_code is not StatusCode.ERROR

    context = outer.get_span_context()
    for span in [*registered, executed]:
        assert span.parent is not None and span.parent.span_id == context.span_id
        assert span.context is not None and span.context.trace_id == context.trace_id
    assert SECRET not in _all_attribute_text()


def test_a_failed_call_and_a_refused_call_are_error_spans(rt: toolrt.ToolRuntime) -> None:
    """A tool that raises gives a span with error.type; a call refused before it runs (another
    agent's private tool, as a hostile agent would try) gives an error span naming no tool detail."""
    boom = rt.register_tool("alice", BOOM)
    failed = rt.execute_tool("alice", boom.tool_id, {"word": SECRET})
    assert not failed.ok
    with pytest.raises(toolrt.ToolRuntimeError):
        rt.execute_tool("mallory", boom.tool_id, {"word": "x"})
    with pytest.raises(toolrt.ValidationError):
        rt.execute_tool("alice", boom.tool_id, {"word": 5})

    failing, refused, bad_params = _spans("execute_tool")
    assert failing.status.status_code is StatusCode.ERROR
    assert failing.attributes["error.type"] == "KeyError"  # type: ignore[index]
    assert failing.attributes["toolrt.execution.status"] == "failed"  # type: ignore[index]
    assert refused.name == "execute_tool" and refused.status.status_code is StatusCode.ERROR
    assert refused.attributes["toolrt.agent.id"] == "mallory"  # type: ignore[index]
    assert "gen_ai.tool.name" not in (refused.attributes or {})  # mallory learns nothing of boom here
    assert bad_params.attributes["error.type"] == "ValidationError"  # type: ignore[index]
    assert SECRET not in _all_attribute_text()


def test_counters_and_timings_become_metric_instruments(rt: toolrt.ToolRuntime) -> None:
    """The runtime's counters and timings reach OpenTelemetry instruments named toolrt.*, with
    their dimensions as attributes, and rt.metrics() keeps its snapshot."""
    reg = rt.register_tool("alice", ECHO)
    rt.execute_tool("alice", reg.tool_id, {"word": "hi"})
    data = READER.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            if scope.scope.name != "toolrt":
                continue
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    assert any(p.attributes.get("status") == "succeeded" and p.value >= 1 for p in points["toolrt.executions"])
    assert any(p.count >= 1 and p.sum > 0 for p in points["toolrt.execution_ms"])
    assert any(p.attributes.get("outcome") == "success" for p in points["toolrt.registrations"])
    assert rt.metrics()["counters"]["executions|language=python,status=succeeded"] >= 1


def test_telemetry_off_emits_nothing(tmp_path: Path) -> None:
    """telemetry="off" never touches OpenTelemetry, even with it installed and configured."""
    EXPORTER.clear()
    with toolrt.connect("memory", telemetry="off") as rt:
        reg = rt.register_tool("alice", ECHO)
        assert rt.execute_tool("alice", reg.tool_id, {"word": "hi"}).ok
    assert EXPORTER.get_finished_spans() == ()


def test_a_tracer_given_to_connect_is_used(tmp_path: Path) -> None:
    """connect(tracer=OpenTelemetryTracer(provider)) sends spans to that provider, not the global one."""
    own = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(own))
    EXPORTER.clear()
    with toolrt.connect("memory", tracer=OpenTelemetryTracer(provider)) as rt:
        rt.register_tool("alice", ECHO)
    assert [s.name for s in own.get_finished_spans()] == ["toolrt.register_tool"]
    assert EXPORTER.get_finished_spans() == ()
    with pytest.raises(toolrt.ValidationError, match="tracer must have"):
        toolrt.connect("memory", tracer=object())  # type: ignore[arg-type]


def test_required_telemetry_without_the_api_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """telemetry="opentelemetry" without opentelemetry-api is a MissingDependencyError naming [otel]."""
    monkeypatch.setattr(telemetry, "opentelemetry_available", lambda: False)
    with pytest.raises(toolrt.MissingDependencyError, match="otel"):
        toolrt.connect("memory", telemetry="opentelemetry")
    with toolrt.connect("memory") as rt:  # "auto" without the API: no tracing, and no error
        assert rt.register_tool("alice", ECHO).tool_id


def test_a_batch_is_one_span_with_its_counts(rt: toolrt.ToolRuntime) -> None:
    """register_tools is one span saying how many items there were, how many stored, how many hit the cache."""
    items = rt.register_tools("alice", [ECHO, BOOM, {"name": "bad"}])
    assert [item.ok for item in items] == [True, True, False]
    (batch,) = _spans("toolrt.register_tools")
    assert batch.attributes is not None
    assert (batch.attributes["toolrt.batch.items"], batch.attributes["toolrt.batch.ok"]) == (3, 2)
    assert batch.attributes["toolrt.batch.cache_hits"] == 0
