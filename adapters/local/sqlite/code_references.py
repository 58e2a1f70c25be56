"""Code references in SQLite: the ``code_refs`` rows written with each tool record."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from toolrt.adapters.local.sqlite.database import SqliteStore
from toolrt.domain import CodeHash, Tool

# Garbage collection holds the write lock for at most this many artifacts.
_DELETE_CHUNK = 256


class SqliteCodeReferences(SqliteStore):
    """Which tools use which code (a :class:`~toolrt.ports.CodeReferences`): every code hash in each
    tool's history is a ``code_refs`` row; an active tool references all of its rows, an inactive
    tool none."""

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        rows = self._db.read(
            f"finding tools by code hash {code_hash.short}",
            lambda c: c.execute(
                "SELECT t.tool_id, t.body FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                " WHERE r.code_hash = ? ORDER BY r.tool_id",
                (str(code_hash),),
            ).fetchall(),
        )
        return [self._db.tool(tool_id, body) for tool_id, body in rows]

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        rows = self._db.read(
            f"reading references of {code_hash.short}",
            lambda c: c.execute(
                "SELECT r.tool_id FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                # "+t.status": without it SQLite walks every active tool (tools_by_status) first.
                " WHERE r.code_hash = ? AND +t.status = 'active'",
                (str(code_hash),),
            ).fetchall(),
        )
        return frozenset(row[0] for row in rows)

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Checks and deletes inside ``BEGIN IMMEDIATE``: no tool can be stored meanwhile. In chunks,
        so that registrations wait for one chunk at most."""
        deleted: list[CodeHash] = []
        for start in range(0, len(code_hashes), _DELETE_CHUNK):
            with self._db.write("deleting unreferenced artifacts") as conn:
                for code_hash in code_hashes[start : start + _DELETE_CHUNK]:
                    found = conn.execute(
                        "SELECT 1 FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
                        " WHERE r.code_hash = ? AND +t.status = 'active' LIMIT 1",
                        (str(code_hash),),
                    ).fetchone()
                    if found is None:
                        delete(code_hash)
                        deleted.append(code_hash)
        return deleted
