"""Fleet metrics: what every agent's tools did over a window, for the runtime's owner.

Two sources, both in the profile's store so that every process on one store agrees and a restart
loses nothing: the execution records (counts, failures, error types, isolation, latency
percentiles: aggregated by the store over the window), and counters no record holds
(registrations, artifact cache hits and misses, refusals), which :class:`StoredCounters` adds to
per-minute totals in the store.

Fleet metrics span every agent, so they are the runtime owner's view (like garbage collection):
nothing an agent reaches (the MCP server's tools) offers them, and the dashboard and ``/metrics``
answer only operator tokens. Agents read :meth:`ToolRuntime.tool_metrics` of the tools they may
see, and their own history with :meth:`ToolRuntime.list_executions`.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from toolrt.application.collect_garbage import parse_duration
from toolrt.domain import ExecutionStatus, ValidationError
from toolrt.domain.figures import FAILURE_STATUSES, minute_of
from toolrt.logs import get_logger
from toolrt.ports import (
    Clock,
    Counters,
    ExecutionLog,
    ExecutionSummary,
    MetricsSink,
    StoredCount,
    ToolActivity,
    ToolRecords,
)
from toolrt.ports.counters import check_dimension

log = get_logger(__name__)

#: Counters kept in the store (besides the process's own snapshot): none of them can be derived
#: from execution records. ``errors`` of executions are left out: the records hold those.
STORED_COUNTERS = frozenset(
    {
        "registrations",
        "batch_registrations",
        "updates",
        "deregistrations",
        "rollbacks",
        "promotions",
        "traffic_changes",
        "traffic_guard_trips",
        "artifact_cache",
        "duplicates_found",
        "duplicates_avoided",
        "executions_refused",
        "errors",
    }
)
#: The longest window fleet metrics cover, and how many points its series has at most.
MAX_WINDOW = timedelta(days=7)
MAX_POINTS = 180


def _from_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


class StoredCounters:
    """A MetricsSink that hands everything to ``inner`` and also adds the :data:`STORED_COUNTERS`
    to per-minute totals in the store (``Counters.add_counts``).

    Increments are gathered in process and written together, at most ``flush_after_s`` after the
    first of them (a timer thread), when fleet metrics are read, and at close: one short write for
    many counted events, never one per event. Dimensions reach the store with ``,``, ``=`` and
    ``|`` replaced by ``_``. A failing write is logged and its counts kept for the next one.
    """

    def __init__(self, *, inner: MetricsSink, counters: Counters, clock: Clock, flush_after_s: float = 1.0) -> None:
        self._inner = inner
        self._counters = counters
        self._clock = clock
        self._flush_after_s = flush_after_s
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: dict[tuple[int, str, tuple[tuple[str, str], ...]], int] = {}
        self._timer: threading.Timer | None = None
        self._closed = False

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        """Count in ``inner``, and for the store when ``name`` is one of :data:`STORED_COUNTERS`."""
        self._inner.increment(name, value, **dimensions)
        if name not in STORED_COUNTERS or not value or (name == "errors" and dimensions.get("operation") == "execute"):
            return
        key = (
            minute_of(self._clock.now()),
            name,
            tuple(sorted((check_dimension(k), check_dimension(str(v))) for k, v in dimensions.items())),
        )
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + int(value)
            if self._timer is None and not self._closed:
                self._timer = threading.Timer(self._flush_after_s, self._timed_flush)
                self._timer.name = "toolrt-counters"
                self._timer.daemon = True
                self._timer.start()

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        """Timings stay in ``inner`` (latency comes from the execution records)."""
        self._inner.observe(name, value, **dimensions)

    def snapshot(self) -> dict[str, Any]:
        """``inner``'s snapshot: this process's own counts (``rt.metrics()``)."""
        return self._inner.snapshot()

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write the gathered counts to the store now (no-op when there are none)."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            counts = [StoredCount(m, n, d, v) for (m, n, d), v in sorted(pending.items())]
            try:
                self._counters.add_counts(counts)
            except Exception as exc:  # counted again with the next write
                log.warning("storing counters failed; kept for the next write", error=str(exc), counts=len(counts))
                with self._lock:
                    for count in counts:
                        self._pending[count.key] = self._pending.get(count.key, 0) + count.value

    def close(self) -> None:
        """Stop the timer and write what is gathered. Safe to call twice."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()


@attrs.frozen
class MinuteRate:
    """One point of the executions series: ``minutes`` whole minutes from ``start``."""

    start: datetime
    minutes: int
    executions: int
    failures: int

    @property
    def per_minute(self) -> float:
        """Finished calls per minute over the point's minutes."""
        return self.executions / self.minutes


@attrs.frozen
class CounterTotal:
    """A stored counter's total over the window, per dimensions (sorted ``(key, value)`` pairs)."""

    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: int

    def dimension(self, key: str) -> str | None:
        """The value of dimension ``key`` (None when absent)."""
        return dict(self.dimensions).get(key)


@attrs.frozen
class Refusal:
    """Requests refused with a toolrt error, by operation and error type, over the window."""

    operation: str
    error_type: str
    count: int


@attrs.frozen
class FleetMetrics:
    """What the fleet did from ``since`` to ``until`` (whole minutes), and what it holds now.

    Tools: ``tools`` active (``tools_by_visibility``), ``inactive_tools``; ``agents``: distinct
    owners of active tools; ``callers``: distinct agents that called a tool in the window.
    Executions (finished calls created in the window): ``executions`` and the count per outcome,
    ``failure_rate`` (failed, timed out and killed over calls not cancelled; None before any),
    ``series`` (a point per ``bucket_minutes``, oldest first), ``error_types``, ``isolation``,
    ``p50_ms``/``p95_ms`` (nearest-rank wall time of calls not cancelled) and ``busiest`` tools.
    Stored counters: ``registrations``/``registrations_failed``, ``cache_hits``/``cache_misses``
    (artifact reuse: stored code reused without validation, against code validated), ``refusals``
    and every stored counter's total in ``counters``.
    """

    since: datetime
    until: datetime
    bucket_minutes: int
    tools: int
    inactive_tools: int
    tools_by_visibility: tuple[tuple[str, int], ...]
    agents: int
    callers: int
    executions: int
    succeeded: int
    failed: int
    timed_out: int
    killed: int
    cancelled: int
    series: tuple[MinuteRate, ...]
    error_types: tuple[tuple[str, int], ...]
    isolation: tuple[tuple[str, int], ...]
    p50_ms: float | None
    p95_ms: float | None
    busiest: tuple[ToolActivity, ...]
    registrations: int
    registrations_failed: int
    cache_hits: int
    cache_misses: int
    refusals: tuple[Refusal, ...]
    counters: tuple[CounterTotal, ...]

    @property
    def minutes(self) -> int:
        """The window's length in minutes."""
        return round((self.until - self.since).total_seconds() / 60)

    @property
    def failures(self) -> int:
        """Failed, timed out and killed calls."""
        return self.failed + self.timed_out + self.killed

    @property
    def failure_rate(self) -> float | None:
        """Failures over finished calls that were not cancelled; None before any."""
        counted = self.executions - self.cancelled
        return self.failures / counted if counted else None

    @property
    def executions_per_minute(self) -> float:
        """Finished calls per minute over the whole window."""
        return self.executions / self.minutes if self.minutes else 0.0

    @property
    def cache_hit_ratio(self) -> float | None:
        """Registrations that reused stored code over those that looked it up; None before any."""
        looked = self.cache_hits + self.cache_misses
        return self.cache_hits / looked if looked else None

    def counter(self, name: str, **dimensions: str) -> int:
        """The total of stored counter ``name`` over the window, of the entries carrying every
        dimension given (all entries without any)."""
        wanted = set(dimensions.items())
        return sum(c.value for c in self.counters if c.name == name and wanted <= set(c.dimensions))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the dashboard's ``/api/fleet`` and ``--json``)."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "minutes": self.minutes,
            "bucket_minutes": self.bucket_minutes,
            "tools": self.tools,
            "inactive_tools": self.inactive_tools,
            "tools_by_visibility": dict(self.tools_by_visibility),
            "agents": self.agents,
            "callers": self.callers,
            "executions": self.executions,
            "outcomes": {
                "succeeded": self.succeeded,
                "failed": self.failed,
                "timed_out": self.timed_out,
                "killed": self.killed,
                "cancelled": self.cancelled,
            },
            "failure_rate": self.failure_rate,
            "executions_per_minute": self.executions_per_minute,
            "series": [
                {
                    "start": p.start.isoformat(),
                    "minutes": p.minutes,
                    "executions": p.executions,
                    "failures": p.failures,
                    "per_minute": p.per_minute,
                }
                for p in self.series
            ],
            "error_types": dict(self.error_types),
            "isolation": dict(self.isolation),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "busiest": [attrs.asdict(t) for t in self.busiest],
            "registrations": self.registrations,
            "registrations_failed": self.registrations_failed,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": self.cache_hit_ratio,
            "refusals": [attrs.asdict(r) for r in self.refusals],
            "counters": [{"name": c.name, "dimensions": dict(c.dimensions), "value": c.value} for c in self.counters],
        }


def parse_window(window: timedelta | str | float) -> int:
    """A window (``"1h"``, ``"30m"``-style durations as garbage collection reads them, a
    ``timedelta`` or seconds) as whole minutes, 1 to 7 days' worth; ValidationError otherwise."""
    duration = parse_duration(window, "window")
    minutes = math.ceil(duration.total_seconds() / 60)
    if duration > MAX_WINDOW:
        raise ValidationError(f"window must be at most 7 days, got {window!r}")
    return max(1, minutes)


def series_of(summary: ExecutionSummary, first_minute: int, minutes: int, bucket: int) -> tuple[MinuteRate, ...]:
    """The summary's per-minute counts as points of ``bucket`` minutes from ``first_minute``, zeros
    included (a chart needs them)."""
    points = math.ceil(minutes / bucket)
    counts = [[0, 0] for _ in range(points)]
    for entry in summary.per_minute:
        index = (entry.minute - first_minute) // bucket
        if 0 <= index < points:
            counts[index][0] += entry.count
            counts[index][1] += entry.count if entry.status in FAILURE_STATUSES else 0
    return tuple(
        MinuteRate(_from_minute(first_minute + i * bucket), min(bucket, minutes - i * bucket), executions, failures)
        for i, (executions, failures) in enumerate(counts)
    )


class ReadFleetMetrics:
    """Compute :class:`FleetMetrics` from the store.

    Business rules:
    - the runtime owner's view: it spans every agent and takes no agent (see the module docstring);
    - the window is whole minutes ending with the current one, 1 minute to 7 days; its series has
      at most 180 points (a point spans several minutes past 3 hours);
    - this process's gathered counters are written first, so its own counts are in the figures;
    - nothing in it is a parameter, output, printed text or error message of any call.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        executions: ExecutionLog,
        counters: Counters,
        clock: Clock,
        gathered: StoredCounters | None = None,
    ) -> None:
        self._tools = tools
        self._executions = executions
        self._counters = counters
        self._clock = clock
        self._gathered = gathered

    def execute(
        self, window: timedelta | str | float = "1h", until: datetime | None = None, busiest: int = 10
    ) -> FleetMetrics:
        minutes = parse_window(window)
        if isinstance(busiest, bool) or not isinstance(busiest, int) or not 0 <= busiest <= 1000:
            raise ValidationError(f"busiest must be an integer from 0 to 1000, got {busiest!r}")
        if until is not None and (not isinstance(until, datetime) or until.tzinfo is None):
            raise ValidationError(f"until must be a timezone-aware datetime, got {until!r}")
        if self._gathered is not None:
            self._gathered.flush()
        last = minute_of(until or self._clock.now()) + 1
        first = last - minutes
        since, end = _from_minute(first), _from_minute(last)
        summary = self._executions.execution_summary(since, end)
        census = self._tools.tool_census()
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        for count in self._counters.read_counts(first, last):
            key = (count.name, count.dimensions)
            totals[key] = totals.get(key, 0) + count.value
        counters = tuple(CounterTotal(n, d, v) for (n, d), v in sorted(totals.items()))
        bucket = max(1, math.ceil(minutes / MAX_POINTS))

        def total(name: str, **dimensions: str) -> int:
            wanted = set(dimensions.items())
            return sum(c.value for c in counters if c.name == name and wanted <= set(c.dimensions))

        refusals = [
            Refusal(c.dimension("operation") or "", c.dimension("type") or "", c.value)
            for c in counters
            if c.name == "errors"
        ]
        refusals += [
            Refusal("execute", c.dimension("type") or "", c.value) for c in counters if c.name == "executions_refused"
        ]
        return FleetMetrics(
            since=since,
            until=end,
            bucket_minutes=bucket,
            tools=census.active,
            inactive_tools=census.inactive,
            tools_by_visibility=census.by_visibility,
            agents=census.owners,
            callers=summary.callers,
            executions=sum(n for _, n in summary.statuses),
            succeeded=summary.count(ExecutionStatus.SUCCEEDED),
            failed=summary.count(ExecutionStatus.FAILED),
            timed_out=summary.count(ExecutionStatus.TIMED_OUT),
            killed=summary.count(ExecutionStatus.KILLED),
            cancelled=summary.count(ExecutionStatus.CANCELLED),
            series=series_of(summary, first, minutes, bucket),
            error_types=summary.error_types,
            isolation=summary.isolation,
            p50_ms=summary.p50_ms,
            p95_ms=summary.p95_ms,
            busiest=summary.tools[:busiest],
            registrations=total("registrations", outcome="success"),
            registrations_failed=total("registrations", outcome="failure"),
            cache_hits=total("artifact_cache", result="hit"),
            cache_misses=total("artifact_cache") - total("artifact_cache", result="hit"),
            refusals=tuple(sorted(refusals, key=lambda r: (-r.count, r.operation, r.error_type))),
            counters=counters,
        )


@attrs.frozen
class ToolActivitySeries:
    """One tool's finished calls from ``since`` to ``until``: ``series`` per version (points of
    ``bucket_minutes``, oldest first), outcomes, error types and wall-time percentiles."""

    tool_id: str
    since: datetime
    until: datetime
    bucket_minutes: int
    series: tuple[tuple[int, tuple[MinuteRate, ...]], ...]
    summary: ExecutionSummary

    def version(self, number: int) -> tuple[MinuteRate, ...]:
        """The points of version ``number`` (empty when it did not run in the window)."""
        return dict(self.series).get(number, ())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the dashboard's ``/api/tools/{id}``)."""
        s = self.summary
        return {
            "tool_id": self.tool_id,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "bucket_minutes": self.bucket_minutes,
            "series": {
                str(version): [
                    {
                        "start": p.start.isoformat(),
                        "executions": p.executions,
                        "failures": p.failures,
                        "per_minute": p.per_minute,
                    }
                    for p in points
                ]
                for version, points in self.series
            },
            "outcomes": {status.value: n for status, n in s.statuses},
            "error_types": dict(s.error_types),
            "p50_ms": s.p50_ms,
            "p95_ms": s.p95_ms,
        }


def tool_activity(
    executions: ExecutionLog, clock: Clock, tool_id: str, window: timedelta | str | float
) -> ToolActivitySeries:
    """:class:`ToolActivitySeries` of ``tool_id`` over the window ending with the current minute."""
    minutes = parse_window(window)
    last = minute_of(clock.now()) + 1
    first = last - minutes
    summary = executions.execution_summary(_from_minute(first), _from_minute(last), tool_id)
    bucket = max(1, math.ceil(minutes / MAX_POINTS))
    versions = sorted({m.version for m in summary.per_minute if m.version is not None})
    series = []
    for version in versions:
        only = attrs.evolve(summary, per_minute=tuple(m for m in summary.per_minute if m.version == version))
        series.append((version, series_of(only, first, minutes, bucket)))
    return ToolActivitySeries(tool_id, _from_minute(first), _from_minute(last), bucket, tuple(series), summary)
