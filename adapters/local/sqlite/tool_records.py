"""Tool records in SQLite: a row per tool (the JSON body plus the columns queries filter on)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, cast

from toolrt.adapters.local import _serde
from toolrt.adapters.local.sqlite.database import SqliteStore
from toolrt.adapters.local.sqlite.derived import drop_derived, write_derived
from toolrt.domain import ConflictError, NotFoundError, Tool, ToolStatus
from toolrt.ports import ToolCensus, ToolQuery


def team_sql(teams: frozenset[str], table: str = "") -> str:
    """`` OR team tools of these teams``, with one placeholder per team (sorted by the caller)."""
    if not teams:
        return ""
    return f" OR ({table}visibility = 'team' AND {table}team IN ({', '.join('?' * len(teams))}))"


class SqliteToolRecords(SqliteStore):
    """Tool records (a :class:`~toolrt.ports.ToolRecords`): every change runs in ``BEGIN IMMEDIATE``,
    so the record-version check, the record and the rows derived from it (code references, tags,
    search index) change in one serialized transaction."""

    def add(self, tool: Tool) -> None:
        with self._db.write(f"adding tool {tool.tool_id!r}") as conn:
            self._insert(conn, tool)

    def add_many(self, tools: Iterable[Tool]) -> int:
        """Add every tool in one transaction (all or none, the rules of :meth:`add` each); the count."""
        count = 0
        with self._db.write("adding tools in bulk") as conn:
            for tool in tools:
                self._insert(conn, tool)
                count += 1
        return count

    def _insert(self, conn: sqlite3.Connection, tool: Tool) -> None:
        if conn.execute("SELECT 1 FROM tools WHERE tool_id = ?", (tool.tool_id,)).fetchone():
            raise ConflictError(f"tool id {tool.tool_id!r} already exists")
        self._check_name(conn, tool)
        try:
            conn.execute(
                "INSERT INTO tools (tool_id, owner, name, status, visibility, description, code_hash,"
                " record_version, updated_at, body, team) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(tool),
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"tool {tool.tool_id!r} conflicts with a stored tool: {exc}") from exc
        write_derived(conn, tool)

    def get(self, tool_id: str) -> Tool:
        row = self._db.read(
            f"reading tool {tool_id!r}",
            lambda c: c.execute("SELECT tool_id, body FROM tools WHERE tool_id = ?", (tool_id,)).fetchone(),
        )
        if row is None:
            raise NotFoundError("tool", tool_id)
        return self._db.tool(row[0], row[1])

    def save(self, tool: Tool) -> None:
        with self._db.write(f"saving tool {tool.tool_id!r}") as conn:
            row = conn.execute("SELECT record_version FROM tools WHERE tool_id = ?", (tool.tool_id,)).fetchone()
            if row is None:
                raise NotFoundError("tool", tool.tool_id)
            if row[0] != tool.record_version - 1:
                raise ConflictError(
                    f"tool {tool.tool_id!r} changed concurrently (stored record version {row[0]}, "
                    f"update based on {tool.record_version - 1}); re-read and retry"
                )
            self._check_name(conn, tool)
            try:
                conn.execute(
                    "UPDATE tools SET owner = ?, name = ?, status = ?, visibility = ?, description = ?,"
                    " code_hash = ?, record_version = ?, updated_at = ?, body = ?, team = ? WHERE tool_id = ?",
                    _row(tool)[1:] + (tool.tool_id,),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"tool {tool.tool_id!r} conflicts with a stored tool: {exc}") from exc
            write_derived(conn, tool)

    def delete(self, tool_id: str) -> None:
        with self._db.write(f"deleting tool {tool_id!r}") as conn:
            drop_derived(conn, tool_id)
            if conn.execute("DELETE FROM tools WHERE tool_id = ?", (tool_id,)).rowcount == 0:
                raise NotFoundError("tool", tool_id)

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        where: list[str] = []
        args: list[Any] = []
        if query.owner is not None:
            where.append("owner = ?")
            args.append(query.owner)
        if query.visible_to is not None:
            where.append(f"(owner = ? OR visibility = 'public'{team_sql(query.teams)})")
            args += [query.visible_to, *sorted(query.teams)]
        if query.status is not None:
            where.append("status = ?")
            args.append(ToolStatus(query.status).value)
        if query.name is not None:
            where.append("name = ?")
            args.append(query.name)
        if query.tag is not None:
            where.append("tool_id IN (SELECT tool_id FROM tool_tags WHERE tag = ?)")
            args.append(query.tag)
        if query.text is not None:
            where.append("(instr(toolrt_lower(name), ?) > 0 OR instr(toolrt_lower(description), ?) > 0)")
            args += [query.text.lower()] * 2
        sql = "SELECT tool_id, body FROM tools"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY name, tool_id LIMIT ?"
        args.append(max(0, query.limit))
        rows = self._db.read("listing tools", lambda c: c.execute(sql, args).fetchall())
        return [self._db.tool(tool_id, body) for tool_id, body in rows]

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, int, tuple[str, ...]]]:
            where = "t.status = 'active'" + (
                "" if visible_to is None else f" AND (t.owner = ? OR t.visibility = 'public'{team_sql(teams, 't.')})"
            )
            rows = conn.execute(
                "SELECT t.tool_id, t.record_version, g.tag FROM tools t LEFT JOIN tool_tags g ON g.tool_id = t.tool_id"
                f" WHERE {where} ORDER BY t.tool_id",
                () if visible_to is None else (visible_to, *sorted(teams)),
            ).fetchall()
            found: dict[str, tuple[int, list[str]]] = {}
            for tool_id, record_version, tag in rows:
                entry = found.setdefault(tool_id, (int(record_version), []))
                if tag is not None:
                    entry[1].append(tag)
            return [(tool_id, version, tuple(tags)) for tool_id, (version, tags) in found.items()]

        return self._db.read("listing discoverable tools", run)

    def tool_census(self) -> ToolCensus:
        """Counted by SQL over the tools' columns (no record is read)."""

        def run(conn: sqlite3.Connection) -> ToolCensus:
            # Both from covering indexes (tools_by_visibility, tools_by_owner): no record is read.
            rows = conn.execute(
                "SELECT status, visibility, count(*) FROM tools INDEXED BY tools_by_visibility GROUP BY 1, 2"
            ).fetchall()
            (owners,) = conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT owner FROM tools INDEXED BY tools_by_owner"
                " WHERE status = 'active')"
            ).fetchone()
            active = sum(int(n) for status, _, n in rows if status == ToolStatus.ACTIVE.value)
            inactive = sum(int(n) for status, _, n in rows if status != ToolStatus.ACTIVE.value)
            visibility: dict[str, int] = {}
            for status, chosen, n in rows:
                if status == ToolStatus.ACTIVE.value:
                    visibility[chosen] = visibility.get(chosen, 0) + int(n)
            return ToolCensus(active, inactive, int(owners), tuple(sorted(visibility.items())))

        return self._db.read("counting tools", run)

    def change_marker(self) -> tuple[int, int, int]:
        """A value that changes whenever any process adds, changes or deletes a tool record, or
        changes a team's membership (within one process: it holds a string hash).

        For watchers such as the MCP server, which tells its clients when the tool list changed.
        ``PRAGMA data_version`` costs nothing and says whether another connection committed (and a
        counter, whether this database object did); only then are the tool records counted
        (executions are written to the same file and must not look like tool changes).
        """

        def read(conn: sqlite3.Connection) -> tuple[int, int, int]:
            local = self._db.local
            data_version = (int(conn.execute("PRAGMA data_version").fetchone()[0]), self._db.commits)
            cached = getattr(local, "marker", None)
            if cached is not None and cached[0] == data_version:
                return cast(tuple[int, int, int], cached[1])
            count, versions = conn.execute("SELECT count(*), coalesce(sum(record_version), 0) FROM tools").fetchone()
            # Membership changes what agents may list, too (teams are few: read them whole).
            members = hash(tuple(conn.execute("SELECT team, agent_id FROM team_members ORDER BY team, agent_id")))
            marker = (int(count), int(versions), members)
            local.marker = (data_version, marker)
            return marker

        return self._db.read("reading the change marker", read)

    @staticmethod
    def _check_name(conn: sqlite3.Connection, tool: Tool) -> None:
        if not tool.is_active:
            return
        row = conn.execute(
            "SELECT tool_id FROM tools WHERE owner = ? AND name = ? AND status = 'active' AND tool_id != ?",
            (tool.owner, tool.name, tool.tool_id),
        ).fetchone()
        if row is not None:
            raise ConflictError(f"agent {tool.owner!r} already has an active tool named {tool.name!r} ({row[0]})")


def _row(tool: Tool) -> tuple[Any, ...]:
    return (
        tool.tool_id,
        tool.owner,
        tool.name,
        tool.status.value,
        tool.visibility.value,
        tool.definition.description,
        str(tool.code_hash),
        tool.record_version,
        tool.updated_at.isoformat(),
        _serde.dumps(tool),
        tool.team,
    )
