"""What a store tells about the whole fleet: execution summaries over a window, a census of the
tools, and counters that are not derivable from execution records (stored per minute).

These are the runtime owner's figures (``rt.fleet_metrics``): they span every agent. The helpers
below compute them over records held in process, for adapters that have no query language for them
(memory, DynamoDB); SQLite computes the same with SQL, and the contract suite holds both to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from toolrt.domain import Execution, ExecutionStatus, Tool, ToolStatus, ValidationError

#: Statuses counted as failures (a cancelled call says nothing about the tool).
FAILURE_STATUSES = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.KILLED})
#: Finished statuses, in the order summaries list them.
FINAL_STATUSES = (
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMED_OUT,
    ExecutionStatus.KILLED,
    ExecutionStatus.CANCELLED,
)


def minute_of(moment: datetime) -> int:
    """Whole minutes since the Unix epoch (UTC) of a timezone-aware ``moment``."""
    return math.floor(moment.timestamp() / 60)


def nearest_rank(count: int, share: float) -> int:
    """The 0-based index of the nearest-rank ``share`` percentile among ``count`` sorted values."""
    return min(count - 1, max(0, math.ceil(share * count) - 1))


@attrs.frozen
class StoredCount:
    """A counter's total over one minute, as a store keeps it.

    ``minute``: minutes since the epoch (UTC); ``dimensions``: sorted ``(key, value)`` pairs.
    """

    minute: int
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: int

    @property
    def key(self) -> tuple[int, str, tuple[tuple[str, str], ...]]:
        """What identifies the counter and its minute (values with one key add up)."""
        return (self.minute, self.name, self.dimensions)


def dimensions_text(dimensions: Sequence[tuple[str, str]]) -> str:
    """``dimensions`` as one string (``k=v,k2=v2``), the form stores keep them in."""
    return ",".join(f"{k}={v}" for k, v in dimensions)


def parse_dimensions(text: str) -> tuple[tuple[str, str], ...]:
    """The inverse of :func:`dimensions_text`."""
    if not text:
        return ()
    pairs = []
    for item in text.split(","):
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return tuple(pairs)


def check_dimension(value: str) -> str:
    """A dimension key or value stores can keep unambiguously (no ``,``, ``=`` or ``|``)."""
    if any(c in value for c in ",=|"):
        return value.replace(",", "_").replace("=", "_").replace("|", "_")
    return value


def summed(counts: Iterable[StoredCount]) -> list[StoredCount]:
    """``counts`` with equal keys added up, sorted by minute, name and dimensions."""
    totals: dict[tuple[int, str, tuple[tuple[str, str], ...]], int] = {}
    for count in counts:
        totals[count.key] = totals.get(count.key, 0) + count.value
    return [StoredCount(m, n, d, v) for (m, n, d), v in sorted(totals.items())]


class CountBook:
    """Per-minute counters held in process (the memory store's, and a test double's)."""

    def __init__(self) -> None:
        self._totals: dict[tuple[int, str, tuple[tuple[str, str], ...]], int] = {}

    def add(self, counts: Iterable[StoredCount]) -> None:
        """See :meth:`ToolRepository.add_counts`."""
        for count in counts:
            self._totals[count.key] = self._totals.get(count.key, 0) + count.value

    def read(self, since_minute: int, until_minute: int) -> list[StoredCount]:
        """See :meth:`ToolRepository.read_counts`."""
        return [
            StoredCount(m, n, d, v) for (m, n, d), v in sorted(self._totals.items()) if since_minute <= m < until_minute
        ]

    def purge(self, before_minute: int, *, dry_run: bool = False) -> int:
        """See :meth:`ToolRepository.purge_counts`."""
        old = [key for key in self._totals if key[0] < before_minute]
        if not dry_run:
            for key in old:
                del self._totals[key]
        return len(old)


@attrs.frozen
class MinuteCount:
    """Finished calls that started in one minute with one status (and, for one tool, one version)."""

    minute: int
    status: ExecutionStatus
    count: int
    version: int | None = None


@attrs.frozen
class ToolActivity:
    """One tool's finished, not cancelled, calls in a window and how many of them failed."""

    tool_id: str
    executions: int
    failures: int


@attrs.frozen
class ExecutionSummary:
    """The finished calls created in a window (``since <= created_at < until``), aggregated.

    ``statuses``: count per final status (every one listed, in :data:`FINAL_STATUSES` order).
    ``per_minute``: counts by start minute and status (and version, for one tool), sorted.
    ``error_types``: the error types of calls that did not succeed, most frequent first.
    ``isolation``: how isolated the not cancelled calls ran, most frequent first. ``tools``: per tool,
    busiest first. ``callers``: distinct callers. ``p50_ms``/``p95_ms``: nearest-rank percentiles of
    the wall time of not cancelled calls (None without any).
    """

    statuses: tuple[tuple[ExecutionStatus, int], ...]
    per_minute: tuple[MinuteCount, ...]
    error_types: tuple[tuple[str, int], ...]
    isolation: tuple[tuple[str, int], ...]
    tools: tuple[ToolActivity, ...]
    callers: int
    p50_ms: float | None
    p95_ms: float | None

    def count(self, status: ExecutionStatus) -> int:
        """Calls that ended with ``status``."""
        return dict(self.statuses).get(status, 0)


def _ranked(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def build_summary(
    statuses: Mapping[ExecutionStatus, int],
    per_minute: Iterable[MinuteCount],
    error_types: Mapping[str, int],
    isolation: Mapping[str, int],
    tools: Iterable[ToolActivity],
    callers: int,
    p50_ms: float | None,
    p95_ms: float | None,
) -> ExecutionSummary:
    """An :class:`ExecutionSummary` in its canonical order (adapters build theirs with this)."""
    return ExecutionSummary(
        statuses=tuple((s, int(statuses.get(s, 0))) for s in FINAL_STATUSES),
        per_minute=tuple(sorted(per_minute, key=lambda m: (m.minute, m.status.value, m.version or 0))),
        error_types=_ranked(error_types),
        isolation=_ranked(isolation),
        tools=tuple(sorted(tools, key=lambda t: (-t.executions, t.tool_id))),
        callers=callers,
        p50_ms=p50_ms,
        p95_ms=p95_ms,
    )


def check_window(since: datetime, until: datetime) -> None:
    """A window must be timezone-aware and not end before it starts (ValidationError)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationError("a metrics window needs timezone-aware datetimes (e.g. datetime.now(UTC))")
    if until < since:
        raise ValidationError(f"a metrics window ends ({until.isoformat()}) before it starts ({since.isoformat()})")


def summarize_executions(
    executions: Iterable[Execution], since: datetime, until: datetime, tool_id: str | None = None
) -> ExecutionSummary:
    """:meth:`ToolRepository.execution_summary` computed over records held in process (for adapters)."""
    check_window(since, until)
    statuses: dict[ExecutionStatus, int] = {}
    minutes: dict[tuple[int, ExecutionStatus, int | None], int] = {}
    errors: dict[str, int] = {}
    isolation: dict[str, int] = {}
    tools: dict[str, list[int]] = {}
    callers: set[str] = set()
    times: list[float] = []
    for e in executions:
        if not e.status.is_final or not since <= e.created_at < until:
            continue
        if tool_id is not None and e.tool_id != tool_id:
            continue
        statuses[e.status] = statuses.get(e.status, 0) + 1
        key = (minute_of(e.created_at), e.status, e.version if tool_id is not None else None)
        minutes[key] = minutes.get(key, 0) + 1
        callers.add(e.caller)
        if e.error is not None and e.status is not ExecutionStatus.SUCCEEDED:
            errors[e.error.type] = errors.get(e.error.type, 0) + 1
        if e.status is ExecutionStatus.CANCELLED:
            continue
        isolation[e.metrics.isolation.value] = isolation.get(e.metrics.isolation.value, 0) + 1
        counts = tools.setdefault(e.tool_id, [0, 0])
        counts[0] += 1
        counts[1] += e.status in FAILURE_STATUSES
        times.append(e.metrics.wall_ms)
    times.sort()
    return build_summary(
        statuses,
        (MinuteCount(m, s, n, v) for (m, s, v), n in minutes.items()),
        errors,
        isolation,
        (ToolActivity(t, n, f) for t, (n, f) in tools.items()),
        len(callers),
        times[nearest_rank(len(times), 0.5)] if times else None,
        times[nearest_rank(len(times), 0.95)] if times else None,
    )


@attrs.frozen
class ToolCensus:
    """How many tools a store holds: active and inactive, the distinct owners of active tools, and
    the active tools per visibility (``private``, ``shared``, ``team``, ``public``)."""

    active: int
    inactive: int
    owners: int
    by_visibility: tuple[tuple[str, int], ...]


def census_of(tools: Iterable[Tool]) -> ToolCensus:
    """:meth:`ToolRepository.tool_census` computed over records held in process (for adapters)."""
    active = inactive = 0
    owners: set[str] = set()
    visibility: dict[str, int] = {}
    for tool in tools:
        if tool.status is ToolStatus.ACTIVE:
            active += 1
            owners.add(tool.owner)
            visibility[tool.visibility.value] = visibility.get(tool.visibility.value, 0) + 1
        else:
            inactive += 1
    return ToolCensus(active, inactive, len(owners), tuple(sorted(visibility.items())))
