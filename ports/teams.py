"""The teams port: a store-level membership, managed by the runtime's owner, never by agents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class Teams(Protocol):
    """Which agents belong to which team (``toolrt.contracts.TeamsContract`` checks it).

    A team exists while it has members. Membership is read at each check, so a change applies to
    the next call in every process on the store.
    """

    def add_team_member(self, team: str, agent_id: str) -> bool:
        """Make ``agent_id`` a member of ``team``; False when it already was one."""

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        """End ``agent_id``'s membership of ``team``; False when it was not a member. Tools are
        untouched: the agent's team tools stay shared with the team."""

    def teams_of(self, agent_id: str) -> frozenset[str]:
        """The teams ``agent_id`` belongs to."""

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        """Every team that has members, with its members."""
