"""Releasing versions safely: traffic splits between a tool's versions, promotion, per-version
metrics, and the guard that ends a split whose candidate fails more often than the version in force.

Per-version metrics are computed from the execution records themselves (``execution_outcomes``):
they are persisted with the records, survive restarts, and every process on a store agrees on
them; retention (garbage collection of old records) bounds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from toolrt.application._tools import active_owned_tool, refusals_counted, save_and_sync
from toolrt.application.access import may_see
from toolrt.domain import (
    ConflictError,
    Execution,
    ExecutionStatus,
    NotFoundError,
    Tool,
    ToolRolledBack,
    TrafficChanged,
    TrafficGuard,
    TrafficSplit,
)
from toolrt.domain.figures import nearest_rank
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    Clock,
    EventPublisher,
    ExecutionLog,
    ExecutionOutcome,
    MetricsSink,
    Teams,
    ToolGateway,
    ToolRecords,
)

log = get_logger(__name__)

#: Statuses a guard counts as failures (a cancelled call says nothing about the version).
FAILURES = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.KILLED})


@attrs.frozen
class VersionMetrics:
    """One version's finished calls: counts by outcome and error type, and wall-time percentiles."""

    version: int
    executions: int
    succeeded: int
    failed: int
    timed_out: int
    killed: int
    cancelled: int
    errors: tuple[tuple[str, int], ...]
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        """Failed, timed out and killed calls over calls that were not cancelled; None before any."""
        counted = self.executions - self.cancelled
        return (self.failed + self.timed_out + self.killed) / counted if counted else None


@attrs.frozen
class ToolMetrics:
    """Per-version metrics of a tool, with its version in force and its split."""

    tool_id: str
    current_version: int
    traffic: tuple[tuple[int, int], ...]
    traffic_note: str | None
    versions: tuple[VersionMetrics, ...]

    def version(self, number: int) -> VersionMetrics | None:
        """The metrics of version ``number`` (None when it never ran)."""
        return next((v for v in self.versions if v.version == number), None)


def _percentile(ordered: Sequence[float], share: float) -> float | None:
    if not ordered:
        return None
    return ordered[nearest_rank(len(ordered), share)]


def version_metrics(outcomes: Sequence[ExecutionOutcome]) -> tuple[VersionMetrics, ...]:
    """Aggregate outcomes by version (nearest-rank percentiles of wall time)."""
    by_version: dict[int, list[ExecutionOutcome]] = {}
    for outcome in outcomes:
        by_version.setdefault(outcome.version, []).append(outcome)
    found = []
    for version, items in sorted(by_version.items()):
        statuses = [o.status for o in items]
        errors: dict[str, int] = {}
        for o in items:
            if o.error_type is not None and o.status is not ExecutionStatus.SUCCEEDED:
                errors[o.error_type] = errors.get(o.error_type, 0) + 1
        times = sorted(o.wall_ms for o in items if o.status is not ExecutionStatus.CANCELLED)
        found.append(
            VersionMetrics(
                version=version,
                executions=len(items),
                succeeded=statuses.count(ExecutionStatus.SUCCEEDED),
                failed=statuses.count(ExecutionStatus.FAILED),
                timed_out=statuses.count(ExecutionStatus.TIMED_OUT),
                killed=statuses.count(ExecutionStatus.KILLED),
                cancelled=statuses.count(ExecutionStatus.CANCELLED),
                errors=tuple(sorted(errors.items())),
                p50_ms=_percentile(times, 0.5),
                p95_ms=_percentile(times, 0.95),
            )
        )
    return tuple(found)


def _counts(outcomes: Sequence[ExecutionOutcome], version: int) -> tuple[int, int]:
    counted = [o for o in outcomes if o.version == version and o.status is not ExecutionStatus.CANCELLED]
    return len(counted), sum(1 for o in counted if o.status in FAILURES)


class TrafficControl:
    """Set and end splits, promote versions, read per-version metrics, and keep splits' guards.

    Business rules:
    - only the owner of an active tool sets a split or promotes; weights are whole percentages
      summing to 100 over existing versions, one of them the version in force (ValidationError,
      nothing changed otherwise); an empty split ends it;
    - explicit ``version=`` calls bypass the split; every execution records the version it ran;
    - promoting puts a version in force and ends any split (the gateway is told, as for rollback);
    - a guard ends the split when a candidate version's error rate over at least ``min_calls``
      calls since the split began exceeds the version in force's by more than ``margin``; the tool
      records why (``traffic_note``) and a TrafficChanged event says so. It is checked after each
      failed call of a candidate, the only kind of call that can raise a candidate's error rate: a
      healthy rollout reads no outcomes at all, and a failing one reads them once per failure;
    - metrics are readable by anyone who may see the tool (aggregates only: no caller, no output).
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        executions: ExecutionLog,
        teams: Teams,
        artifacts: ArtifactStore,
        gateway: ToolGateway,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
    ) -> None:
        self._tools = tools
        self._executions = executions
        self._teams = teams
        self._artifacts = artifacts
        self._gateway = gateway
        self._clock = clock
        self._metrics = metrics
        self._events = events

    def set_traffic(
        self,
        agent_id: str,
        tool_id: str,
        weights: Mapping[int, int] | Sequence[tuple[int, int]] | None,
        guard: TrafficGuard | None = None,
    ) -> Tool:
        """Route un-pinned calls of ``tool_id`` by ``weights`` (None or empty: all to the version in force)."""
        bound = log.bind(agent_id=agent_id, tool_id=tool_id)
        with refusals_counted(self._metrics, bound, "traffic_changes", "set_traffic"):
            before = active_owned_tool(self._tools, self._teams, agent_id, tool_id, "route traffic of")
            now = self._clock.now()
            split = TrafficSplit(weights, now, guard) if weights else None
            if split is not None:
                for version in split.versions:
                    before.version(version)  # NotFoundError names a version the tool does not have
            after = before.with_traffic(split, now)
            self._tools.save(after)
        self._metrics.increment("traffic_changes", outcome="success")
        self._events.publish(TrafficChanged(now, tool_id, agent_id, split.weights if split else ()))
        bound.info("traffic set", weights=dict(split.weights) if split else {})
        return after

    def promote(self, agent_id: str, tool_id: str, version: int) -> Tool:
        """Put ``version`` in force and end any split."""
        bound = log.bind(agent_id=agent_id, tool_id=tool_id)
        with refusals_counted(self._metrics, bound, "promotions", "promote"):
            before = active_owned_tool(self._tools, self._teams, agent_id, tool_id, "promote a version of")
            target = before.version(version)
            if self._artifacts.get(target.code_hash) is None:
                raise NotFoundError("artifact", f"{target.code_hash} (version {target.number} of {tool_id})")
            now = self._clock.now()
            after = before.promoted(target.number, now)
            stored = save_and_sync(self._tools, self._gateway, self._clock, before, after)
        self._metrics.increment("promotions", outcome="success")
        if before.current_version != target.number:
            self._events.publish(ToolRolledBack(now, tool_id, agent_id, target.number))
        if before.traffic is not None:
            self._events.publish(TrafficChanged(now, tool_id, agent_id, (), f"version {target.number} promoted"))
        bound.info("version promoted", version=target.number)
        return stored

    def tool_metrics(self, tool_id: str, agent_id: str | None = None) -> ToolMetrics:
        """Per-version metrics of ``tool_id`` (NotFoundError when ``agent_id`` may not see it)."""
        tool = self._tools.get(tool_id)
        if agent_id is not None and not may_see(self._teams, tool, agent_id):
            raise NotFoundError("tool", tool_id)
        return ToolMetrics(
            tool_id=tool.tool_id,
            current_version=tool.current_version,
            traffic=tool.traffic.weights if tool.traffic else (),
            traffic_note=tool.traffic_note,
            versions=version_metrics(self._executions.execution_outcomes(tool_id)),
        )

    def after_execution(self, tool: Tool, execution: Execution) -> None:
        """Keep the split's guard: called after a call of a candidate version was recorded."""
        split = tool.traffic
        if split is None or split.guard is None or execution.version == tool.current_version:
            return
        if execution.status not in FAILURES:
            return  # a success or a cancellation never raises the candidate's error rate
        outcomes = self._executions.execution_outcomes(tool.tool_id, split.since)
        candidate = _counts(outcomes, execution.version)
        current = _counts(outcomes, tool.current_version)
        if not split.guard.breached(candidate, current):
            return
        reason = (
            f"guard: version {execution.version} failed {candidate[1]} of {candidate[0]} calls, version "
            f"{tool.current_version} {current[1]} of {current[0]} (margin {split.guard.margin:g})"
        )
        try:
            fresh = self._tools.get(tool.tool_id)
            if fresh.traffic != split:
                return  # the owner (or another process's guard) changed it meanwhile
            now = self._clock.now()
            self._tools.save(fresh.with_traffic(None, now, note=reason))
        except (ConflictError, NotFoundError):
            return  # changed concurrently: the next candidate call looks again
        self._metrics.increment("traffic_guard_trips")
        self._events.publish(TrafficChanged(now, tool.tool_id, tool.owner, (), reason))
        log.warning("traffic split ended by its guard", tool_id=tool.tool_id, reason=reason)
