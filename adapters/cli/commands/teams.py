"""The ``teams`` group: team membership, which the runtime's owner manages (agents never do).

Whoever runs the CLI against a store is its owner: these commands ignore ``--agent``. The MCP
server offers no way to change membership.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from toolrt.adapters.cli.context import Cli, command_group, current_cli


def add(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team's name.")],
    agents: Annotated[list[str], typer.Argument(help="The agents to add.")],
) -> None:
    """Add agents to a team: they see and run its tools, and may share theirs with visibility team:NAME."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        added = [agent for agent in agents if rt.add_team_member(team, agent)]
        members = sorted(rt.list_teams().get(team, ()))
    _report(cli, team, "added", added, members)


def remove(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team's name.")],
    agents: Annotated[list[str], typer.Argument(help="The agents to remove.")],
) -> None:
    """Remove agents from a team: their next call no longer reaches its tools (theirs stay shared with it)."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        removed = [agent for agent in agents if rt.remove_team_member(team, agent)]
        members = sorted(rt.list_teams().get(team, ()))
    _report(cli, team, "removed", removed, members)


def list_(
    ctx: typer.Context,
    agent: Annotated[Optional[str], typer.Option("--of", help="Only the teams of this agent.")] = None,
) -> None:
    """List teams and their members."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        teams = rt.list_teams()
    if agent is not None:
        teams = {team: members for team, members in teams.items() if agent in members}
    views = {team: sorted(members) for team, members in teams.items()}
    if cli.json:
        cli.emit({"teams": views})
        return
    if not views:
        cli.out.print("no teams" if agent is None else f"{escape(agent)} is in no team")
        return
    table = Table("team", "members")
    for team, members in views.items():
        table.add_row(escape(team), escape(", ".join(members)))
    cli.out.print(table)


def _report(cli: Cli, team: str, verb: str, changed: list[str], members: list[str]) -> None:
    if cli.json:
        cli.emit({"team": team, verb: changed, "members": members})
        return
    cli.out.print(
        f"{verb} {len(changed)}: {escape(', '.join(changed)) or 'none'}; "
        f"team {escape(team)} has {len(members)} member(s){': ' + escape(', '.join(members)) if members else ''}"
    )


def teams_app() -> typer.Typer:
    """``toolrt teams``: add, remove, list."""
    return command_group(
        "Team membership (the runtime owner's): add, remove, list.", add=add, remove=remove, list=list_
    )
