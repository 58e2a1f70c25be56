"""Per-minute counter totals in SQLite: a ``counters`` row per minute, name and dimensions."""

from __future__ import annotations

from collections.abc import Sequence

from toolrt.adapters.local.sqlite.database import SqliteStore
from toolrt.adapters.shared.counters import dimensions_text, parse_dimensions
from toolrt.ports import StoredCount


class SqliteCounters(SqliteStore):
    """Counter totals (a :class:`~toolrt.ports.Counters`) that every process on the file adds to."""

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        """One transaction, an upsert per count (the totals add up across processes)."""
        if not counts:
            return
        with self._db.write(f"adding {len(counts)} counter value(s)") as conn:
            conn.executemany(
                "INSERT INTO counters (minute, name, dimensions, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (minute, name, dimensions) DO UPDATE SET value = value + excluded.value",
                [(c.minute, c.name, dimensions_text(c.dimensions), c.value) for c in counts],
            )

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        rows = self._db.read(
            "reading counters",
            lambda c: c.execute(
                "SELECT minute, name, dimensions, value FROM counters WHERE minute >= ? AND minute < ?",
                (since_minute, until_minute),
            ).fetchall(),
        )
        return [StoredCount(int(m), str(n), parse_dimensions(str(d)), int(v)) for m, n, d, v in rows]

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        if dry_run:
            return int(
                self._db.read(
                    "counting old counters",
                    lambda c: c.execute("SELECT count(*) FROM counters WHERE minute < ?", (before_minute,)).fetchone()[
                        0
                    ],
                )
            )
        with self._db.write("removing old counters") as conn:
            return int(conn.execute("DELETE FROM counters WHERE minute < ?", (before_minute,)).rowcount)
