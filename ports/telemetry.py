"""The tracing port: spans around what the runtime does, for whoever traces the application.

Attribute values are what OpenTelemetry accepts (str, bool, int, float). Spans carry ids, names,
versions, statuses and timings: never a call's params, output or printed text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

AttributeValue = str | bool | int | float


@runtime_checkable
class Span(Protocol):
    """One operation being traced."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Attach ``key = value`` to the span."""

    def record_error(self, error_type: str, message: str) -> None:
        """Mark the span failed, with the error's type (``error.type``) and message."""


@runtime_checkable
class Tracer(Protocol):
    """Opens spans; a span opened inside another (in the same thread) is its child."""

    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> contextlib.AbstractContextManager[Span]:
        """A span named ``name`` for the ``with`` block; an exception leaving the block is recorded
        on it and propagates."""


class _NoSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def record_error(self, error_type: str, message: str) -> None:
        pass


class NoTracer:
    """A Tracer that records nothing: the runtime's default when no tracing is configured."""

    _span = _NoSpan()

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[Span]:
        yield self._span
