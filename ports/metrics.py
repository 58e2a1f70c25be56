"""Metrics and event ports."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from toolrt.domain import DomainEvent


@runtime_checkable
class MetricsSink(Protocol):
    """Counters and distributions with string dimensions.

    ``snapshot`` returns a plain dict: ``{"counters": {"name|dim=value": n}, "timings": {...}}``
    (see the in-memory adapter for the exact shape).
    """

    def increment(self, name: str, value: int = 1, **dimensions: str) -> None:
        """Add ``value`` to a counter."""

    def observe(self, name: str, value: float, **dimensions: str) -> None:
        """Record one observation (a duration in milliseconds, a size)."""

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded so far, as plain data."""


@runtime_checkable
class EventPublisher(Protocol):
    """Receives domain events after the change they describe is stored."""

    def publish(self, event: DomainEvent) -> None:
        """Deliver ``event``; must not raise for a subscriber's failure."""
