"""Teams from a hostile agent's side: a team tool reaches its team's members and nobody else.

Mallory is in no team, or in another one; Alice and Bob are in ``red``. Every way Mallory might learn
of, run or change red's tools is tried, on the memory store and on a real SQLite file; the answers
she gets must be exactly those for a tool that does not exist or that she may not use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.team_world import RADAR, STORES, team_runtime
from toolrt.application import ToolRuntime
from toolrt.domain import (
    NotFoundError,
    OwnershipError,
    TeamMembershipChanged,
    TeamMembershipError,
    ToolRuntimeError,
    ValidationError,
    Visibility,
)


@pytest.fixture(params=STORES)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolRuntime]:
    runtime = team_runtime(request.param, tmp_path)
    yield runtime
    runtime.close()


def test_members_discover_search_and_run_team_tools(rt: ToolRuntime) -> None:
    reg = rt.register_tool("alice", RADAR, "team:red")
    assert reg.tool.visibility is Visibility.TEAM and reg.tool.team == "red"
    assert [t.tool_id for t in rt.list_tools("bob")] == [reg.tool_id]
    assert [r.tool.tool_id for r in rt.search_tools("bob", "weather radar")] == [reg.tool_id]
    assert rt.execute_tool("bob", "red_radar", {"station": "x"}).ok  # by name, as a member sees it
    assert rt.get_tool_status(reg.tool_id, "bob").team == "red"


def test_a_non_member_meets_a_team_tool_as_if_it_did_not_exist(rt: ToolRuntime) -> None:
    reg = rt.register_tool("alice", RADAR, "team:red")
    rt.execute_tool("alice", reg.tool_id, {"station": "secret-station"})
    assert rt.list_tools("mallory") == []
    assert rt.search_tools("mallory", "weather radar red team stations") == []
    with pytest.raises(NotFoundError):
        rt.get_tool_status(reg.tool_id, "mallory")
    with pytest.raises(NotFoundError):
        rt.list_versions(reg.tool_id, "mallory")
    with pytest.raises(NotFoundError):
        rt.tool_usage("mallory", reg.tool_id)
    with pytest.raises(NotFoundError):
        rt.tools_usage("mallory", [reg.tool_id])
    assert rt.tools_usage("bob", [reg.tool_id])[reg.tool_id].executions == 1
    with pytest.raises(NotFoundError):
        rt.execute_tool("mallory", "red_radar", {"station": "x"})  # its name resolves to nothing
    with pytest.raises(NotFoundError):
        rt.execute_tool("mallory", reg.tool_id, {"station": "x"})  # the id: refused as an unknown id
    with pytest.raises(ToolRuntimeError):
        rt.test_tool("mallory", reg.tool_id)
    # Her history holds nothing of Alice's call, parameters or output.
    assert rt.list_executions("mallory").items == ()


def test_a_non_member_cannot_change_a_team_tool(rt: ToolRuntime) -> None:
    reg = rt.register_tool("alice", RADAR, "team:red")
    before = rt.get_tool(reg.tool_id)
    for attempt in (
        lambda: rt.update_tool("mallory", reg.tool_id, {**RADAR, "code": "def handler(station):\n    return 1\n"}),
        lambda: rt.update_tool("mallory", reg.tool_id, visibility="public"),
        lambda: rt.deregister_tool("mallory", reg.tool_id),
        lambda: rt.rollback_tool("mallory", reg.tool_id, 1),
    ):
        with pytest.raises(ToolRuntimeError):
            attempt()
    # Nor can a member who does not own it.
    with pytest.raises(OwnershipError):
        rt.update_tool("bob", reg.tool_id, visibility="public")
    assert rt.get_tool(reg.tool_id) == before


def test_sharing_with_a_team_needs_membership_and_stores_nothing_otherwise(rt: ToolRuntime) -> None:
    with pytest.raises(TeamMembershipError) as caught:
        rt.register_tool("mallory", RADAR, "team:red")
    assert "toolrt teams add red mallory" in str(caught.value)
    items = rt.register_tools("mallory", [RADAR], "team:red")
    assert isinstance(items[0].error, TeamMembershipError)
    own = rt.register_tool("mallory", {**RADAR, "name": "mine"})
    with pytest.raises(TeamMembershipError):
        rt.update_tool("mallory", own.tool_id, visibility="team:red")
    assert [t.name for t in rt.list_tools(status=None)] == ["mine"]
    assert rt.get_tool(own.tool_id).visibility is Visibility.PRIVATE
    for bad in ("team", "team:", "team:Bad!", "teams:red"):
        with pytest.raises(ValidationError):
            rt.register_tool("alice", {**RADAR, "name": "other"}, bad)


def test_identical_code_tells_a_non_member_nothing_of_the_team_tool(rt: ToolRuntime) -> None:
    """The same code registered by Mallory: no duplicate hint, no count of users, no reuse."""
    team_tool = rt.register_tool("alice", RADAR, "team:red")
    mine = rt.register_tool("mallory", {**RADAR, "name": "copy"}, on_duplicate="warn")
    assert mine.similar == () and mine.warnings == ()
    assert rt.get_tool_status(mine.tool_id, "mallory").shared_by == 1
    reused = rt.register_tool("mallory", {**RADAR, "name": "copy2"}, on_duplicate="reuse")
    assert reused.reused and reused.tool_id == mine.tool_id  # her own copy, never the team's tool
    assert {s.tool_id for s in reused.similar} == {mine.tool_id}
    # A member does see the team tool as a duplicate.
    hint = rt.register_tool("bob", {**RADAR, "name": "bobs"}, on_duplicate="warn")
    assert team_tool.tool_id in {s.tool_id for s in hint.similar}


def test_leaving_a_team_takes_effect_on_the_next_call(rt: ToolRuntime) -> None:
    reg = rt.register_tool("alice", RADAR, "team:red")
    heard: list[TeamMembershipChanged] = []
    rt.subscribe(TeamMembershipChanged, heard.append)  # type: ignore[arg-type]  # subscribe takes DomainEvent handlers
    assert rt.execute_tool("bob", reg.tool_id, {"station": "x"}).ok
    assert rt.remove_team_member("red", "bob")
    with pytest.raises(NotFoundError):
        rt.execute_tool("bob", reg.tool_id, {"station": "x"})
    assert rt.list_tools("bob") == [] and rt.search_tools("bob", "radar") == []
    assert [(e.team, e.agent_id, e.added) for e in heard] == [("red", "bob", False)]
    # The owner keeps its tool after leaving: listed, found, run and changed as before.
    rt.remove_team_member("red", "alice")
    assert [t.tool_id for t in rt.list_tools("alice")] == [reg.tool_id]
    assert [r.tool.tool_id for r in rt.search_tools("alice", "radar")] == [reg.tool_id]
    assert rt.execute_tool("alice", reg.tool_id, {"station": "x"}).ok


def test_a_team_tools_statistics_do_not_move_a_non_members_scores(rt: ToolRuntime) -> None:
    rt.register_tool("mallory", {**RADAR, "name": "weather_now", "description": "Weather now."}, "public")
    before = [(r.tool.tool_id, r.score) for r in rt.search_tools("mallory", "weather radar")]
    for i in range(5):
        rt.register_tool("alice", {**RADAR, "name": f"radar_{i}", "code": RADAR["code"] + f"# {i}\n"}, "team:red")
    assert [(r.tool.tool_id, r.score) for r in rt.search_tools("mallory", "weather radar")] == before


def test_membership_is_checked_for_names_and_agents(rt: ToolRuntime) -> None:
    with pytest.raises(ValidationError):
        rt.add_team_member("no spaces", "alice")
    with pytest.raises(ValidationError):
        rt.add_team_member("red", " ")
    assert rt.add_team_member("red", "alice") is False  # already a member
    assert rt.list_teams() == {"blue": {"mallory"}, "red": {"alice", "bob"}}
    assert rt.teams_of("mallory") == {"blue"}
