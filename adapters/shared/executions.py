"""Execution-log answers computed over records held in process (the memory store's, and DynamoDB's
after a scan), and the split of a query's criteria between a store's translation and the process."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import TypeVar

from toolrt.domain import Execution, ExecutionStatus, ValidationError
from toolrt.domain.criteria import NEWEST_FIRST, Condition, holds_all
from toolrt.domain.figures import FAILURE_STATUSES, check_window, minute_of, nearest_rank
from toolrt.ports import ExecutionOutcome, ExecutionQuery, ExecutionSummary, MinuteCount, ToolActivity, ToolUsage
from toolrt.ports.execution_log import NO_USAGE
from toolrt.ports.fleet import build_summary

T = TypeVar("T")


def translate_criteria(
    criteria: Iterable[Condition], translate: Callable[[Condition], T | None]
) -> tuple[list[T], tuple[Condition, ...]]:
    """What a store's ``translate`` expresses of ``criteria`` (None: it cannot), and the conditions
    left for the process to check on the records the store returns (``holds_all``)."""
    translated: list[T] = []
    left: list[Condition] = []
    for condition in criteria:
        found = translate(condition)
        if found is None:
            left.append(condition)
        else:
            translated.append(found)
    return translated, tuple(left)


def _order(execution: Execution) -> tuple[object, ...]:
    return tuple(field.of(execution) for field in NEWEST_FIRST)


def listing(executions: Iterable[Execution], limit: int) -> list[Execution]:
    """``executions`` in the order listings follow (newest first), at most ``limit``."""
    return sorted(executions, key=_order, reverse=True)[:limit]


def newest_first(executions: Iterable[Execution], query: ExecutionQuery) -> list[Execution]:
    """The executions ``query`` matches, newest first, at most ``query.limit``."""
    criteria = query.criteria()
    return listing((e for e in executions if holds_all(criteria, e)), query.limit)


def outcomes_of(executions: Iterable[Execution], tool_id: str, since: datetime | None) -> list[ExecutionOutcome]:
    """:meth:`~toolrt.ports.ExecutionLog.execution_outcomes` over records held in process."""
    return [
        ExecutionOutcome(e.version, e.status, e.metrics.wall_ms, e.error.type if e.error else None)
        for e in executions
        if e.tool_id == tool_id and e.status.is_final and (since is None or e.created_at >= since)
    ]


def count_usage(executions: Iterable[Execution], tool_ids: Collection[str]) -> dict[str, ToolUsage]:
    """:meth:`~toolrt.ports.ExecutionLog.tool_usage` over records held in process."""
    wanted = frozenset(tool_ids)
    counts: dict[str, tuple[int, set[str], int]] = {}
    for e in executions:
        if e.tool_id in wanted and e.status.is_final and e.status is not ExecutionStatus.CANCELLED:
            total, callers, succeeded = counts.setdefault(e.tool_id, (0, set(), 0))
            callers.add(e.caller)
            counts[e.tool_id] = (total + 1, callers, succeeded + (e.status is ExecutionStatus.SUCCEEDED))
    found = {tool_id: ToolUsage(n, len(callers), ok) for tool_id, (n, callers, ok) in counts.items()}
    return {tool_id: found.get(tool_id, NO_USAGE) for tool_id in wanted}


def check_keep_newest(keep_newest: int | None) -> None:
    """``keep_newest`` of ``purge_executions`` is None or a non-negative integer (ValidationError)."""
    if keep_newest is not None and (
        isinstance(keep_newest, bool) or not isinstance(keep_newest, int) or keep_newest < 0
    ):
        raise ValidationError(f"keep_newest must be a non-negative integer, got {keep_newest!r}")


def purgeable(executions: Iterable[Execution], before: datetime, keep_newest: int | None) -> list[str]:
    """Ids of the records :meth:`~toolrt.ports.ExecutionLog.purge_executions` removes, over records
    held in process: finished ones created before ``before``, and finished ones beyond the newest
    ``keep_newest`` (by ``created_at``, then ``execution_id``)."""
    check_keep_newest(keep_newest)
    finished = sorted((e for e in executions if e.status.is_final), key=_order, reverse=True)
    return [
        e.execution_id
        for rank, e in enumerate(finished)
        if e.created_at < before or (keep_newest is not None and rank >= keep_newest)
    ]


def summarize_executions(
    executions: Iterable[Execution], since: datetime, until: datetime, tool_id: str | None = None
) -> ExecutionSummary:
    """:meth:`~toolrt.ports.ExecutionLog.execution_summary` over records held in process."""
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
