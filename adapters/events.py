"""The event publisher every profile uses: it keeps the most recent domain events in memory."""

from __future__ import annotations

import collections

from toolrt.domain import DomainEvent


class RecordingEventPublisher:
    """Keeps the most recent ``keep`` events (for tests, the demo and subscribers that poll).

    It does not log them: each use case already logs what it did, with its context bound.
    """

    def __init__(self, keep: int = 1000) -> None:
        self.events: collections.deque[DomainEvent] = collections.deque(maxlen=keep)

    def publish(self, event: DomainEvent) -> None:
        self.events.append(event)
