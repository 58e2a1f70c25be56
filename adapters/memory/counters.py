"""Per-minute counter totals in a dict."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from toolrt.ports import StoredCount

_Key = tuple[int, str, tuple[tuple[str, str], ...]]


class InMemoryCounters:
    """Counter totals under one lock (a :class:`~toolrt.ports.Counters`)."""

    def __init__(self) -> None:
        super().__init__()
        self._counts_lock = threading.RLock()
        self._totals: dict[_Key, int] = {}

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        with self._counts_lock:
            for count in counts:
                self._totals[count.key] = self._totals.get(count.key, 0) + count.value

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        with self._counts_lock:
            return [
                StoredCount(m, n, d, v)
                for (m, n, d), v in sorted(self._totals.items())
                if since_minute <= m < until_minute
            ]

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        with self._counts_lock:
            old = [key for key in self._totals if key[0] < before_minute]
            if not dry_run:
                for key in old:
                    del self._totals[key]
            return len(old)
