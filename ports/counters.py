"""The counters port: per-minute totals of what no record holds (registrations, cache hits, refusals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen
class StoredCount:
    """A counter's total over one minute, as a store keeps it.

    ``minute``: minutes since the epoch (UTC); ``dimensions``: sorted ``(key, value)`` pairs whose
    keys and values pass :func:`check_dimension`.
    """

    minute: int
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: int

    @property
    def key(self) -> tuple[int, str, tuple[tuple[str, str], ...]]:
        """What identifies the counter and its minute (values with one key add up)."""
        return (self.minute, self.name, self.dimensions)


def check_dimension(value: str) -> str:
    """A dimension key or value stores can keep unambiguously (``,``, ``=`` and ``|`` become ``_``)."""
    if any(c in value for c in ",=|"):
        return value.replace(",", "_").replace("=", "_").replace("|", "_")
    return value


@runtime_checkable
class Counters(Protocol):
    """Per-minute counter totals that every process on one store adds to
    (``toolrt.contracts.CountersContract`` checks it)."""

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        """Add each count to the stored total of its minute, name and dimensions, atomically per
        count, so that every process writing to one store adds to the same totals."""

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        """The stored totals of the minutes in ``[since_minute, until_minute)``, in no particular order."""

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        """Remove the stored totals of minutes before ``before_minute``; how many (would be) removed."""
