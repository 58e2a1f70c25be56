"""Team membership in a dict: team -> members."""

from __future__ import annotations

import threading
from collections.abc import Mapping


class InMemoryTeams:
    """Team membership under one lock (a :class:`~toolrt.ports.Teams`)."""

    def __init__(self) -> None:
        super().__init__()
        self._teams_lock = threading.RLock()
        self._members: dict[str, set[str]] = {}

    def add_team_member(self, team: str, agent_id: str) -> bool:
        with self._teams_lock:
            members = self._members.setdefault(team, set())
            added = agent_id not in members
            members.add(agent_id)
            return added

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        with self._teams_lock:
            members = self._members.get(team, set())
            if agent_id not in members:
                return False
            members.discard(agent_id)
            if not members:
                del self._members[team]
            return True

    def teams_of(self, agent_id: str) -> frozenset[str]:
        with self._teams_lock:
            return frozenset(team for team, members in self._members.items() if agent_id in members)

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        with self._teams_lock:
            return {team: frozenset(members) for team, members in sorted(self._members.items())}
