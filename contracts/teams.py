"""The contract every Teams adapter must pass."""

from __future__ import annotations

import pytest

from toolrt.ports import Teams


class TeamsContract:
    """Subclass and implement :meth:`make_teams` (a fresh, empty membership per call)."""

    def make_teams(self) -> Teams:
        raise NotImplementedError

    @pytest.fixture
    def teams(self) -> Teams:
        return self.make_teams()

    def test_is_teams(self, teams: Teams) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(teams, Teams)

    def test_team_membership_is_kept_per_agent_and_team(self, teams: Teams) -> None:
        """Adding twice or removing a non-member reports False and changes nothing."""
        assert teams.teams_of("a") == frozenset() and dict(teams.list_teams()) == {}
        assert teams.add_team_member("red", "a") is True
        assert teams.add_team_member("red", "a") is False
        assert teams.add_team_member("red", "b") and teams.add_team_member("blue", "a")
        assert teams.teams_of("a") == {"red", "blue"} and teams.teams_of("b") == {"red"}
        assert dict(teams.list_teams()) == {"blue": {"a"}, "red": {"a", "b"}}
        assert teams.remove_team_member("red", "c") is False
        assert teams.remove_team_member("blue", "a") is True
        assert teams.teams_of("a") == {"red"} and dict(teams.list_teams()) == {"red": {"a", "b"}}
