"""What a store tells about the whole fleet: execution summaries over a window and a census of the
tools (the counters no record holds are :mod:`toolrt.ports.counters`).

These are the runtime owner's figures (``rt.fleet_metrics``): they span every agent. Stores
aggregate them (SQLite with SQL; the memory and DynamoDB stores over records read in process, with
``toolrt.adapters.shared``), and the contract suites hold them all to the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from toolrt.domain import ExecutionStatus
from toolrt.domain.figures import FINAL_STATUSES


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

    ``statuses``: count per final status (every one listed, in ``FINAL_STATUSES`` order).
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
    """An :class:`ExecutionSummary` in its canonical order (stores build theirs with this)."""
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


@attrs.frozen
class ToolCensus:
    """How many tools a store holds: active and inactive, the distinct owners of active tools, and
    the active tools per visibility (``private``, ``shared``, ``team``, ``public``)."""

    active: int
    inactive: int
    owners: int
    by_visibility: tuple[tuple[str, int], ...]
