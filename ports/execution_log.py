"""The execution log port: every call's record, listed, counted and aggregated by the store."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import Execution, ExecutionStatus, ValidationError
from toolrt.domain.criteria import (
    NEWEST_FIRST,
    AnyOf,
    AtLeast,
    Below,
    Condition,
    Equals,
    ExecutionField,
    OneOf,
    holds_all,
)
from toolrt.ports.fleet import ExecutionSummary

#: The fields of :class:`ExecutionQuery` that narrow to records whose field equals the value given.
_EQUALS: tuple[tuple[str, ExecutionField], ...] = (
    ("tool_id", ExecutionField.TOOL_ID),
    ("version", ExecutionField.VERSION),
    ("status", ExecutionField.STATUS),
)


@attrs.frozen
class ExecutionQuery:
    """Which execution records to list, newest first (``created_at``, then ``execution_id``).

    ``caller`` and ``tool_ids`` given together match either (an agent's own calls and every call of
    its tools); each alone narrows. ``tool_id``, ``version``, ``status`` and ``since`` narrow further.
    ``before`` continues a listing: the ``(created_at, execution_id)`` of the last record seen.

    Stores answer it from :meth:`criteria` (see ``toolrt.domain.criteria``), never field by field.
    """

    caller: str | None = None
    tool_ids: frozenset[str] | None = None
    tool_id: str | None = None
    version: int | None = None
    status: ExecutionStatus | None = None
    since: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = attrs.field(default=100)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1000:
            raise ValidationError(f"limit must be an integer from 1 to 1000, got {value!r}")

    def criteria(self) -> tuple[Condition, ...]:
        """What the query asks, as conditions that must all hold (the limit and order aside)."""
        # An agent's own calls and the calls of its tools: either one, when both are given.
        either: list[Condition] = []
        if self.caller is not None:
            either.append(Equals(ExecutionField.CALLER, self.caller))
        if self.tool_ids is not None:
            either.append(OneOf(ExecutionField.TOOL_ID, self.tool_ids))
        found: list[Condition] = [AnyOf(tuple(either))] if len(either) > 1 else either
        found += [Equals(field, getattr(self, name)) for name, field in _EQUALS if getattr(self, name) is not None]
        if self.since is not None:
            found.append(AtLeast(ExecutionField.CREATED_AT, self.since))
        if self.before is not None:
            found.append(Below(NEWEST_FIRST, tuple(self.before)))
        return tuple(found)

    def matches(self, execution: Execution) -> bool:
        """True when ``execution`` satisfies every field but the limit (the in-process reference)."""
        return holds_all(self.criteria(), execution)


@attrs.frozen
class ToolUsage:
    """How a tool has fared in its finished calls (cancelled ones aside), by anyone.

    Aggregates only: no caller, parameter or result of another agent is ever shown.
    """

    executions: int
    distinct_callers: int
    succeeded: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded calls over finished calls; None before the first call."""
        return self.succeeded / self.executions if self.executions else None


#: The usage of a tool never called.
NO_USAGE = ToolUsage(0, 0, 0)


@attrs.frozen
class ExecutionOutcome:
    """What per-version metrics need of one finished call: no caller, parameter or output."""

    version: int
    status: ExecutionStatus
    wall_ms: float
    error_type: str | None = None


@runtime_checkable
class ExecutionLog(Protocol):
    """Keeps execution records (``toolrt.contracts.ExecutionLogContract`` checks every rule)."""

    def record_execution(self, execution: Execution) -> None:
        """Insert or replace an execution record (keyed by ``execution_id``)."""

    def get_execution(self, execution_id: str) -> Execution:
        """The stored execution, or ``NotFoundError``."""

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Execution records ``query`` matches, newest first, at most ``query.limit``."""

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        """Counts of the finished, not cancelled, execution records of each of ``tool_ids`` (every
        id given is a key; a tool never called has zeros), counted by the store, not read out."""

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        """Version, status, wall time and error type of every finished call of ``tool_id`` created at
        or after ``since`` (all for None), in no particular order: per-version metrics and traffic
        guards are computed from the records themselves, so every process on a store agrees."""

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        """The finished execution records created in ``[since, until)`` (of ``tool_id`` only, when
        given: then per-minute counts are also split by version), aggregated by the store: counts by
        status and minute, error types, isolation levels, per-tool activity, distinct callers and
        wall-time percentiles. Never the records themselves."""

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        """Remove the finished execution records created before ``before`` and, with ``keep_newest``,
        every finished record beyond the newest ``keep_newest`` finished ones; how many (would be)
        removed.

        Pending and running records are kept whatever their age. ``dry_run`` only counts.
        """
