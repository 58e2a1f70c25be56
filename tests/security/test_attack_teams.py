"""Attacks on teams from a hostile agent's side (Mallory, in team blue; Alice and Bob in red).

Each asserts from outside what Mallory gets: exactly what a tool that does not exist would give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.team_world import RADAR, STORES, team_runtime
from toolrt.adapters.local.sqlite_repository import owner_scope, team_scope
from toolrt.application import ToolRuntime
from toolrt.domain import NotFoundError, ToolRuntimeError, ValidationError


@pytest.fixture(params=STORES)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolRuntime]:
    runtime = team_runtime(request.param, tmp_path)
    yield runtime
    runtime.close()


def test_search_words_cannot_widen_the_scope(rt: ToolRuntime) -> None:
    """FTS5 syntax and the index's own scope tokens as search words find nothing of team red."""
    rt.register_tool("alice", RADAR, "team:red")
    for words in (
        'radar" OR "weather',
        f"scope : {team_scope('red')}",
        f'"{team_scope("red")}" radar',
        f"{owner_scope('alice')} radar weather",
        "radar OR NEAR(weather radar) OR *",
        "scope:* radar",
        "radar') OR 1=1 --",
        "red team stations radar weather images",
    ):
        assert rt.search_tools("mallory", words) == [], words


@pytest.mark.parametrize(
    "hostile",
    ["red", "team:red", "TEAM#red", "MEMBER#alice", "OWNER#alice", "alice ", "Alice", "alice\x00"],
)
def test_an_agent_id_shaped_like_a_team_or_a_store_key_gets_nothing(rt: ToolRuntime, hostile: str) -> None:
    """Agent ids colliding with the team's name, its visibility label, store keys or the owner's id
    spelled another way: no listing, search, status or run of red's tool."""
    reg = rt.register_tool("alice", RADAR, "team:red")
    assert rt.list_tools(hostile) == []
    assert rt.search_tools(hostile, "weather radar") == []
    with pytest.raises(NotFoundError):
        rt.get_tool_status(reg.tool_id, hostile)
    with pytest.raises(ToolRuntimeError):
        rt.execute_tool(hostile, reg.tool_id, {"station": "x"})


def test_agent_ids_shaped_like_index_tokens_get_nothing(rt: ToolRuntime) -> None:
    """An agent named after the search index's own scope tokens of alice and of red."""
    rt.register_tool("alice", RADAR, "team:red")
    for hostile in (team_scope("red"), owner_scope("alice"), f"{owner_scope('alice')} {team_scope('red')}"):
        assert rt.search_tools(hostile, "weather radar") == []
        assert rt.list_tools(hostile) == []


@pytest.mark.parametrize("team", ["red' OR '1'='1", 'red" OR 1=1 --', "red)", "red*", "r%"])
def test_team_names_are_names_not_sql(rt: ToolRuntime, team: str) -> None:
    """A team name carrying SQL or FTS5 syntax is refused, for membership and for visibility."""
    with pytest.raises(ValidationError):
        rt.add_team_member(team, "mallory")
    with pytest.raises(ValidationError):
        rt.register_tool("mallory", {**RADAR, "name": "sneak"}, f"team:{team}")
    assert rt.teams_of("mallory") == {"blue"}


def test_moving_a_tool_to_another_team_takes_it_from_the_first(rt: ToolRuntime) -> None:
    """Alice (in red and blue) moves her red tool to blue: Bob (red) no longer finds or runs it, and
    Mallory (blue) now does; the search index follows the move."""
    rt.add_team_member("blue", "alice")
    reg = rt.register_tool("alice", RADAR, "team:red")
    assert [r.tool.tool_id for r in rt.search_tools("bob", "weather radar")] == [reg.tool_id]
    rt.update_tool("alice", reg.tool_id, visibility="team:blue")
    assert rt.search_tools("bob", "weather radar") == [] and rt.list_tools("bob") == []
    with pytest.raises(ToolRuntimeError):
        rt.execute_tool("bob", reg.tool_id, {"station": "x"})
    assert [r.tool.tool_id for r in rt.search_tools("mallory", "weather radar")] == [reg.tool_id]
    rt.update_tool("alice", reg.tool_id, visibility="private")
    assert rt.search_tools("mallory", "weather radar") == [] and rt.list_tools("mallory") == []


def test_a_member_sees_its_own_calls_of_a_team_tool_never_the_owners(rt: ToolRuntime) -> None:
    """Bob may run Alice's team tool; its history shows him his own calls only, never Alice's
    parameters or output, and Mallory's shows nothing of either."""
    reg = rt.register_tool("alice", RADAR, "team:red")
    rt.execute_tool("alice", reg.tool_id, {"station": "alice-secret"})
    rt.execute_tool("bob", reg.tool_id, {"station": "bob-own"})
    bobs = rt.list_executions("bob", tool=reg.tool_id).items
    assert [e.caller for e in bobs] == ["bob"] and "alice-secret" not in repr(bobs)
    assert "alice-secret" not in repr(rt.list_executions("bob").items)
    # By id, the team tool answers as another agent's private tool does: as an unknown id.
    private = rt.register_tool("alice", {**RADAR, "name": "private_radar"})
    for hidden in (reg.tool_id, private.tool_id):
        with pytest.raises(NotFoundError):
            rt.list_executions("mallory", tool=hidden)
    with pytest.raises(NotFoundError):
        rt.list_executions("mallory", tool="red_radar")  # by name: nothing of that name for her
    assert rt.list_executions("mallory").items == ()
