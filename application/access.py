"""Who may run or see a tool: the tool's own rules (``Tool.can_execute`` / ``can_discover``), with
the agent's team membership read from the store only when it decides (a team tool the agent does
not own). Membership is read at every check, so removing an agent from a team takes effect on its
next call, in every process on the store."""

from __future__ import annotations

from toolrt.domain import NotFoundError, OwnershipError, TeamMembershipError, Tool, Visibility
from toolrt.ports import Teams


def deciding_teams(teams: Teams, tool: Tool, agent_id: str) -> frozenset[str]:
    """``agent_id``'s teams when they decide its access to ``tool``; none otherwise (no read)."""
    if tool.visibility is Visibility.TEAM and not tool.is_owned_by(agent_id):
        return teams.teams_of(agent_id)
    return frozenset()


def may_execute(teams: Teams, tool: Tool, agent_id: str) -> bool:
    """True when ``agent_id`` may run ``tool`` now."""
    return tool.can_execute(agent_id, deciding_teams(teams, tool, agent_id))


def check_execute(teams: Teams, tool: Tool, agent_id: str) -> None:
    """Refuse ``agent_id`` a run of ``tool`` it may not make: NotFoundError for a tool it may not
    see (the answer an unknown id gets: the id tells it nothing) or one withdrawn, OwnershipError
    for one it sees but may not run."""
    if may_execute(teams, tool, agent_id):
        return
    if not may_see(teams, tool, agent_id):
        raise NotFoundError("tool", tool.tool_id)
    if not tool.is_active:
        raise NotFoundError("active tool", tool.tool_id)
    raise OwnershipError(agent_id, tool.tool_id, "execute")


def may_see(teams: Teams, tool: Tool, agent_id: str) -> bool:
    """True when ``agent_id`` may discover or run ``tool`` (what status and history queries need)."""
    deciding = deciding_teams(teams, tool, agent_id)
    return tool.can_discover(agent_id, deciding) or tool.can_execute(agent_id, deciding)


def check_sharing(teams: Teams, agent_id: str, team: str | None) -> None:
    """Refuse to share a tool with ``team`` unless ``agent_id`` belongs to it (TeamMembershipError)."""
    if team is not None and team not in teams.teams_of(agent_id):
        raise TeamMembershipError(agent_id, team)
