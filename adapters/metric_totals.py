"""Running totals of counters and timings: the in-process snapshot every MetricsSink adapter keeps."""

from __future__ import annotations

import collections
import threading
from typing import Any


def metric_key(name: str, dimensions: dict[str, str]) -> str:
    """``name``, or ``name|dim=value,...`` with dimensions sorted: the snapshot's key."""
    if not dimensions:
        return name
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))


class MetricTotals:
    """Counters and timing summaries in process, thread-safe.

    ``snapshot()`` gives ``{"counters": {key: int}, "timings": {key: {count, sum, min, max, mean}}}``
    with keys from :func:`metric_key`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, int] = collections.defaultdict(int)
        self._timings: dict[str, list[float]] = {}

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        with self._lock:
            self._counters[metric_key(name, dimensions)] += value

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        key = metric_key(name, dimensions)
        with self._lock:
            stats = self._timings.setdefault(key, [0, 0.0, float("inf"), float("-inf")])
            stats[0] += 1
            stats[1] += value
            stats[2] = min(stats[2], value)
            stats[3] = max(stats[3], value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(self._counters),
                "timings": {
                    key: {
                        "count": int(s[0]),
                        "sum": s[1],
                        "min": s[2],
                        "max": s[3],
                        "mean": s[1] / s[0] if s[0] else 0.0,
                    }
                    for key, s in self._timings.items()
                },
            }
