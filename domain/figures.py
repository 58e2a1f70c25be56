"""How fleet figures count: minutes since the epoch, nearest-rank percentiles, windows, and which
final statuses are failures. Every store and the application count with these."""

from __future__ import annotations

import math
from datetime import datetime

from toolrt.domain.errors import ValidationError
from toolrt.domain.execution import ExecutionStatus

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


def check_window(since: datetime, until: datetime) -> None:
    """A window must be timezone-aware and not end before it starts (ValidationError)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationError("a metrics window needs timezone-aware datetimes (e.g. datetime.now(UTC))")
    if until < since:
        raise ValidationError(f"a metrics window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
