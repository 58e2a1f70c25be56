"""Subscriptions to domain events: what ``rt.subscribe`` hands handlers, after each change is stored.

The use cases publish an event once the change it describes is stored (``ToolRegistered`` after the
record and its references, ``ToolExecuted`` after the execution record). The bus passes each event
to the profile's own publisher first, then to every handler subscribed to its type or a base type
(``DomainEvent`` hears everything), in subscription order, in the thread that made the change. A
handler that raises is logged and the others still hear the event: a subscriber can never undo or
fail the change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from toolrt.domain import DomainEvent, ValidationError
from toolrt.logs import get_logger
from toolrt.ports import EventPublisher

log = get_logger(__name__)

Handler = Callable[[DomainEvent], None]


class EventBus:
    """An EventPublisher that also delivers to subscribers (see the module's rules)."""

    def __init__(self, inner: EventPublisher) -> None:
        self._inner = inner
        self._handlers: list[tuple[type[DomainEvent], Handler]] = []
        self._lock = threading.Lock()

    def publish(self, event: DomainEvent) -> None:
        self._inner.publish(event)
        with self._lock:
            handlers = [h for kind, h in self._handlers if isinstance(event, kind)]
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                log.warning("event handler failed", event_type=type(event).__name__, error=str(exc))

    def subscribe(self, event_type: type[DomainEvent], handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for every later event of ``event_type``; returns the unsubscriber."""
        if not (isinstance(event_type, type) and issubclass(event_type, DomainEvent)):
            raise ValidationError(f"event_type must be a DomainEvent class (toolrt.domain.events), got {event_type!r}")
        if not callable(handler):
            raise ValidationError(f"handler must be callable, got {handler!r}")
        entry = (event_type, handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe
