"""The contract every Counters adapter must pass."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest

from toolrt.ports import Counters, StoredCount


def summed(counts: Iterable[StoredCount]) -> list[StoredCount]:
    """``counts`` with equal keys added up, sorted by minute, name and dimensions."""
    totals: dict[tuple[int, str, tuple[tuple[str, str], ...]], int] = {}
    for count in counts:
        totals[count.key] = totals.get(count.key, 0) + count.value
    return [StoredCount(m, n, d, v) for (m, n, d), v in sorted(totals.items())]


class CountersContract:
    """Subclass and implement :meth:`make_counters` (fresh, empty totals per call)."""

    def make_counters(self) -> Counters:
        raise NotImplementedError

    @pytest.fixture
    def counters(self) -> Counters:
        return self.make_counters()

    def test_is_counters(self, counters: Counters) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(counters, Counters)

    def test_counts_add_up_per_minute_name_and_dimensions(self, counters: Counters) -> None:
        """Stored counts add to the total of their key; a window reads its minutes; purge drops older ones."""
        dims = (("outcome", "success"),)
        counters.add_counts([StoredCount(10, "registrations", dims, 2), StoredCount(11, "registrations", dims, 1)])
        counters.add_counts([StoredCount(10, "registrations", dims, 3), StoredCount(10, "artifact_cache", (), 1)])
        counters.add_counts([])
        assert summed(counters.read_counts(10, 12)) == [
            StoredCount(10, "artifact_cache", (), 1),
            StoredCount(10, "registrations", dims, 5),
            StoredCount(11, "registrations", dims, 1),
        ]
        assert summed(counters.read_counts(11, 12)) == [StoredCount(11, "registrations", dims, 1)]
        assert counters.read_counts(12, 100) == [] and counters.read_counts(5, 5) == []
        assert counters.purge_counts(11, dry_run=True) == 2
        assert counters.purge_counts(11) == 2
        assert summed(counters.read_counts(0, 100)) == [StoredCount(11, "registrations", dims, 1)]

    def test_counts_from_many_threads_are_never_lost(self, counters: Counters) -> None:
        """Concurrent adds to one counter all count (an atomic add, never read-modify-write)."""

        def add() -> None:
            for _ in range(10):
                counters.add_counts([StoredCount(1, "registrations", (("outcome", "success"),), 1)])

        threads = [threading.Thread(target=add) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(c.value for c in counters.read_counts(0, 2)) == 40
