"""CloudWatch metrics as embedded-metric-format log lines, with an in-process snapshot."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

NAMESPACE = "toolrt"


def _key(name: str, dimensions: dict[str, str]) -> str:
    if not dimensions:
        return name
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))


class CloudWatchEmfMetrics:
    """A MetricsSink writing one CloudWatch embedded-metric-format JSON line per observation.

    In Lambda (or with the CloudWatch agent) those lines become metrics without any API call.
    ``snapshot()`` has the in-memory shape: ``{"counters": {key: n}, "timings": {key: {count, sum,
    min, max, mean}}}`` with ``key`` = ``name`` or ``name|dim=value,...``.
    """

    def __init__(
        self,
        namespace: str = NAMESPACE,
        *,
        write: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._namespace = namespace
        self._write = write if write is not None else self._stdout
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, int] = defaultdict(int)
        self._timings: dict[str, list[float]] = {}

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        with self._lock:
            self._counters[_key(name, dimensions)] += value
        self._emit(name, value, "Count", dimensions)

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        key = _key(name, dimensions)
        with self._lock:
            stats = self._timings.setdefault(key, [0, 0.0, float("inf"), float("-inf")])
            stats[0] += 1
            stats[1] += value
            stats[2] = min(stats[2], value)
            stats[3] = max(stats[3], value)
        unit = "Milliseconds" if name.endswith("_ms") else "None"
        self._emit(name, value, unit, dimensions)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(self._counters),
                "timings": {
                    key: {"count": int(s[0]), "sum": s[1], "min": s[2], "max": s[3], "mean": s[1] / s[0] if s[0] else 0.0}
                    for key, s in self._timings.items()
                },
            }

    def _emit(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [sorted(dimensions)],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            name: value,
            **dimensions,
        }
        self._write(json.dumps(document, sort_keys=True))

    @staticmethod
    def _stdout(line: str) -> None:
        sys.stdout.write(line + "\n")
