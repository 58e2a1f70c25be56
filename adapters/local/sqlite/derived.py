"""The rows derived from a tool record (its code references, its tags, its search index entry),
written in the record's own transaction, so that they never disagree with it."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence

from toolrt.domain import Tool, Visibility
from toolrt.domain.search import SearchDocument

PUBLIC_SCOPE = "public"
CONTENT = "{name description params tags}"  # an FTS5 column filter: query terms never match the scope


def _token(kind: str, name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()[:16]
    return kind + "".join(chr(ord("a") + b % 26) for b in digest)


def owner_scope(owner: str) -> str:
    """The token naming an owner's non-public tools in the search index (one unicode61 token).
    Query terms are only ever matched against the content columns, never against this one."""
    return _token("owner", owner)


def team_scope(team: str) -> str:
    """The token naming a team's tools in the search index (see :func:`owner_scope`)."""
    return _token("team", team)


def scope_of(owner: str, team: str | None) -> str:
    """The scope column of a non-public tool: its owner's token, and its team's for team tools."""
    return owner_scope(owner) + ("" if team is None else " " + team_scope(team))


def write_derived(conn: sqlite3.Connection, tool: Tool) -> None:
    """Replace the rows derived from ``tool``'s record (written just before, in this transaction)."""
    conn.execute("DELETE FROM code_refs WHERE tool_id = ?", (tool.tool_id,))
    conn.execute("DELETE FROM tool_tags WHERE tool_id = ?", (tool.tool_id,))
    conn.executemany(
        "INSERT INTO code_refs (code_hash, tool_id) VALUES (?, ?)",
        [(str(h), tool.tool_id) for h in sorted(tool.code_hashes)],
    )
    conn.executemany(
        "INSERT INTO tool_tags (tag, tool_id) VALUES (?, ?)",
        [(tag, tool.tool_id) for tag in tool.definition.tags],
    )
    _index(conn, tool)


def drop_derived(conn: sqlite3.Connection, tool_id: str) -> None:
    """Remove the rows derived from a tool's record (before the record itself goes, so the result
    does not depend on foreign keys being enforced)."""
    conn.execute("DELETE FROM code_refs WHERE tool_id = ?", (tool_id,))
    conn.execute("DELETE FROM tool_tags WHERE tool_id = ?", (tool_id,))
    _unindex(conn, tool_id)


def _unindex(conn: sqlite3.Connection, tool_id: str) -> None:
    row = conn.execute("SELECT rowid FROM tools WHERE tool_id = ?", (tool_id,)).fetchone()
    if row is None:
        return
    old = conn.execute("SELECT name, description, params, tags FROM search_public WHERE rowid = ?", row).fetchone()
    if old is not None:
        conn.execute("DELETE FROM search_public WHERE rowid = ?", row)
        _add_totals(conn, PUBLIC_SCOPE, old, -1)
    old = conn.execute(
        "SELECT scope, name, description, params, tags FROM search_private WHERE rowid = ?", row
    ).fetchone()
    if old is not None:
        conn.execute("DELETE FROM search_private WHERE rowid = ?", row)
        _add_totals(conn, old[0], old[1:], -1)


def _add_totals(conn: sqlite3.Connection, scope: str, columns: Sequence[str], sign: int) -> None:
    lengths = [sign * len(column.split()) for column in columns]
    owner, _, team = scope.partition(" ")
    conn.execute(
        "INSERT INTO search_totals (scope, documents, name, description, params, tags, owner, team)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET"
        " documents = documents + excluded.documents, name = name + excluded.name,"
        " description = description + excluded.description, params = params + excluded.params,"
        " tags = tags + excluded.tags",
        (scope, sign, *lengths, None if scope == PUBLIC_SCOPE else owner, team or None),
    )


def _index(conn: sqlite3.Connection, tool: Tool) -> None:
    # Only active tools are in the index: public ones in search_public, the others in
    # search_private under their scope (see the schema's second step).
    _unindex(conn, tool.tool_id)
    if not tool.is_active:
        return
    columns = SearchDocument.of(tool.tool_id, tool.definition).columns()
    if tool.visibility is Visibility.PUBLIC:
        conn.execute(
            "INSERT INTO search_public (rowid, name, description, params, tags)"
            " SELECT rowid, ?, ?, ?, ? FROM tools WHERE tool_id = ?",
            (*columns, tool.tool_id),
        )
        _add_totals(conn, PUBLIC_SCOPE, columns, 1)
    else:
        scope = scope_of(tool.owner, tool.team)
        conn.execute(
            "INSERT INTO search_private (rowid, scope, name, description, params, tags)"
            " SELECT rowid, ?, ?, ?, ?, ? FROM tools WHERE tool_id = ?",
            (scope, *columns, tool.tool_id),
        )
        _add_totals(conn, scope, columns, 1)


def fill_search_index(conn: sqlite3.Connection, decode: Callable[[str, str, type[Tool]], Tool]) -> int:
    """Index every active tool afresh (the index emptied first); the count indexed."""
    conn.execute("DELETE FROM search_public")
    conn.execute("DELETE FROM search_private")
    conn.execute("DELETE FROM search_totals")
    count = 0
    for tool_id, body in conn.execute("SELECT tool_id, body FROM tools WHERE status = 'active'").fetchall():
        _index(conn, decode(tool_id, body, Tool))
        count += 1
    return count
