"""OpenTelemetry for toolrt: spans (the ``Tracer`` port) and metric instruments (a ``MetricsSink``).

Both go through ``opentelemetry-api`` only (``pip install 'toolrt[otel]'``), as a library should:
the application that embeds toolrt installs the SDK and its exporters and configures the global
tracer and meter providers; until it does, the API's own no-op providers drop everything. toolrt
never configures a provider, never exports anything itself, and never puts a call's params, output
or printed text on a span.

Span names and attributes follow OpenTelemetry's GenAI conventions where they exist
(``execute_tool {gen_ai.tool.name}``, ``gen_ai.operation.name``, ``gen_ai.tool.call.id``,
``error.type``) and use ``toolrt.*`` otherwise (tool id, version, agent, cache hit, status, sandbox
time). Counters and timings of the runtime's MetricsSink become instruments named ``toolrt.<name>``
(timings ending in ``_ms`` are histograms in milliseconds), with their dimensions as attributes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from toolrt.domain import MissingDependencyError
from toolrt.ports import AttributeValue, MetricsSink, Span

TELEMETRY_CHOICES = ("auto", "off", "opentelemetry")
INSTRUMENTATION_NAME = "toolrt"


def opentelemetry_available() -> bool:
    """Whether ``opentelemetry-api`` can be imported."""
    return importlib.util.find_spec("opentelemetry") is not None and (
        importlib.util.find_spec("opentelemetry.trace") is not None
    )


def _require() -> None:
    if not opentelemetry_available():
        raise MissingDependencyError("OpenTelemetry tracing (telemetry='opentelemetry')", "opentelemetry-api", "otel")


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toolrt")
    except PackageNotFoundError:
        return "0"


class _OtelSpan:
    """A toolrt Span over an OpenTelemetry span."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def record_error(self, error_type: str, message: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"[:500]))


class OpenTelemetryTracer:
    """The ``Tracer`` port over ``opentelemetry.trace``: spans are children of the caller's current
    span, so a tool call shows inside the agent's own trace.

    ``tracer_provider`` defaults to the global one, looked up at each span (an application may set
    it after connecting); tests pass the SDK's provider with an in-memory exporter.
    """

    def __init__(self, tracer_provider: Any | None = None) -> None:
        _require()
        self._provider = tracer_provider
        self._tracer: Any = None

    def _get(self) -> Any:
        if self._tracer is None:
            from opentelemetry import trace

            # From the global provider, a proxy tracer: it follows a provider the application sets later.
            provider = self._provider if self._provider is not None else trace.get_tracer_provider()
            self._tracer = provider.get_tracer(INSTRUMENTATION_NAME, _version())
        return self._tracer

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[Span]:
        from opentelemetry.trace import SpanKind

        with self._get().start_as_current_span(
            name, kind=SpanKind.INTERNAL, attributes=dict(attributes), record_exception=True
        ) as span:
            wrapped = _OtelSpan(span)
            try:
                yield wrapped
            except Exception as exc:
                wrapped.record_error(type(exc).__name__, str(exc))
                raise


class OpenTelemetryMetrics:
    """A ``MetricsSink`` that keeps ``inner``'s snapshot and also feeds OpenTelemetry instruments:
    each counter a monotonic ``Counter``, each timing a ``Histogram`` (see the module)."""

    def __init__(self, inner: MetricsSink, meter_provider: Any | None = None) -> None:
        _require()
        from opentelemetry import metrics

        self._inner = inner
        self._provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._meter: Any = None  # at the first instrument: naming the version reads package metadata
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _instrument(self, name: str, histogram: bool) -> Any:
        with self._lock:
            instrument = self._instruments.get(name)
            if instrument is None:
                if self._meter is None:
                    self._meter = self._provider.get_meter(INSTRUMENTATION_NAME, _version())
                full = f"{INSTRUMENTATION_NAME}.{name}"
                if histogram:
                    unit = "ms" if name.endswith("_ms") else "1"
                    instrument = self._meter.create_histogram(full, unit=unit, description=f"toolrt {name}")
                else:
                    instrument = self._meter.create_counter(full, unit="1", description=f"toolrt {name}")
                self._instruments[name] = instrument
            return instrument

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        self._inner.increment(name, value, **dimensions)
        self._instrument(name, histogram=False).add(value, attributes=dimensions)

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        self._inner.observe(name, value, **dimensions)
        self._instrument(name, histogram=True).record(value, attributes=dimensions)

    def snapshot(self) -> dict[str, Any]:
        return self._inner.snapshot()

    def __getattr__(self, name: str) -> Any:
        # What else the wrapped sink offers (CloudWatch's flush, say) stays reachable.
        return getattr(self._inner, name)
