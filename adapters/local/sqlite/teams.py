"""Team membership in SQLite: a ``team_members`` row per member."""

from __future__ import annotations

from collections.abc import Mapping

from toolrt.adapters.local.sqlite.database import SqliteStore


class SqliteTeams(SqliteStore):
    """Team membership (a :class:`~toolrt.ports.Teams`)."""

    def add_team_member(self, team: str, agent_id: str) -> bool:
        with self._db.write(f"adding {agent_id!r} to team {team!r}") as conn:
            cursor = conn.execute("INSERT OR IGNORE INTO team_members (team, agent_id) VALUES (?, ?)", (team, agent_id))
            return cursor.rowcount > 0

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        with self._db.write(f"removing {agent_id!r} from team {team!r}") as conn:
            cursor = conn.execute("DELETE FROM team_members WHERE team = ? AND agent_id = ?", (team, agent_id))
            return cursor.rowcount > 0

    def teams_of(self, agent_id: str) -> frozenset[str]:
        rows = self._db.read(
            f"reading the teams of {agent_id!r}",
            lambda c: c.execute("SELECT team FROM team_members WHERE agent_id = ?", (agent_id,)).fetchall(),
        )
        return frozenset(row[0] for row in rows)

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        rows = self._db.read(
            "listing teams", lambda c: c.execute("SELECT team, agent_id FROM team_members ORDER BY team").fetchall()
        )
        teams: dict[str, set[str]] = {}
        for team, agent_id in rows:
            teams.setdefault(team, set()).add(agent_id)
        return {team: frozenset(members) for team, members in teams.items()}
