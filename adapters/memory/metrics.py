"""In-memory metrics and a recording event publisher."""

from __future__ import annotations

import collections

from toolrt.adapters.metric_totals import MetricTotals
from toolrt.domain import DomainEvent


class InMemoryMetrics(MetricTotals):
    """Counters and timing summaries in process; ``rt.metrics()`` returns its snapshot.

    ``snapshot()`` gives ``{"counters": {key: int}, "timings": {key: {count, sum, min, max, mean}}}``
    where ``key`` is ``name`` or ``name|dim=value,...`` (dimensions sorted).
    """


class RecordingEventPublisher:
    """Keeps the most recent ``keep`` events (for tests, the demo and subscribers that poll).

    It does not log them: each use case already logs what it did, with its context bound.
    """

    def __init__(self, keep: int = 1000) -> None:
        self.events: collections.deque[DomainEvent] = collections.deque(maxlen=keep)

    def publish(self, event: DomainEvent) -> None:
        self.events.append(event)
