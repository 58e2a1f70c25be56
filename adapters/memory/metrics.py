"""In-memory metrics: counters and timings kept in process."""

from __future__ import annotations

from toolrt.adapters.metric_totals import MetricTotals


class InMemoryMetrics(MetricTotals):
    """Counters and timing summaries in process; ``rt.metrics()`` returns its snapshot.

    ``snapshot()`` gives ``{"counters": {key: int}, "timings": {key: {count, sum, min, max, mean}}}``
    where ``key`` is ``name`` or ``name|dim=value,...`` (dimensions sorted).
    """
