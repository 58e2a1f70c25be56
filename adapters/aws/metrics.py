"""CloudWatch metrics as embedded-metric-format log lines, with an in-process snapshot."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from toolrt.adapters.metric_totals import MetricTotals

NAMESPACE = "toolrt"
EMF_CHOICES = ("auto", "on", "off")


def emf_wanted(choice: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to write EMF lines: ``on``, or ``auto`` inside AWS Lambda (``AWS_LAMBDA_FUNCTION_NAME``
    is set), where CloudWatch Logs turns them into metrics; never with ``off``."""
    if choice not in EMF_CHOICES:
        raise ValueError(f"metrics_emf must be one of {EMF_CHOICES}, got {choice!r}")
    env = os.environ if environ is None else environ
    return choice == "on" or (choice == "auto" and bool(env.get("AWS_LAMBDA_FUNCTION_NAME")))


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
        self._totals = MetricTotals()

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        self._totals.increment(name, value, **dimensions)
        self._emit(name, value, "Count", dimensions)

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        self._totals.observe(name, value, **dimensions)
        unit = "Milliseconds" if name.endswith("_ms") else "None"
        self._emit(name, value, unit, dimensions)

    def snapshot(self) -> dict[str, Any]:
        return self._totals.snapshot()

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
