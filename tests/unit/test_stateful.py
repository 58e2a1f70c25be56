"""A stateful property test: many agents registering, updating, splitting traffic, promoting,
rolling back, deregistering and executing, while the runtime's owner moves them between teams and
collects garbage."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.fakes import memory_runtime
from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, NotFoundError, OwnershipError, TeamMembershipError, Tool, ToolRuntimeError

AGENTS = ("a", "b", "c")
TEAMS = ("red", "blue")
BODIES = ("return a + b", "return a - b", "return a * b", "return 0")
VISIBILITIES = ("private", "shared", "public", *(f"team:{t}" for t in TEAMS))


class RuntimeMachine(RuleBasedStateMachine):
    """Invariants: an artifact exists while any tool references it (garbage collection included); its
    reference set equals the tools that use it; a non-owner never changes a tool; an agent lists, and
    runs, exactly the tools the model says its membership allows, and never shares with a team it is
    not in; every execution ran the pinned version or one its split weighs; metrics add up to the
    executions."""

    def __init__(self) -> None:
        super().__init__()
        self.rt = memory_runtime()
        self.counter = 0
        self.members: dict[str, set[str]] = {team: set() for team in TEAMS}

    def teams(self, agent: str) -> set[str]:
        return {team for team, members in self.members.items() if agent in members}

    def tools(self) -> list[str]:
        return [t.tool_id for t in self.rt.list_tools(status=None)]

    @rule(agent=st.sampled_from(AGENTS), body=st.sampled_from(BODIES), visibility=st.sampled_from(VISIBILITIES))
    def register(self, agent: str, body: str, visibility: str) -> None:
        self.counter += 1
        definition = b.definition(f"t{self.counter}", f"def handler(a, b):\n    {body}\n")
        before = self.tools()
        team = visibility.removeprefix("team:") if visibility.startswith("team:") else None
        try:
            self.rt.register_tool(agent, definition, visibility)
        except TeamMembershipError:
            assert team is not None and team not in self.teams(agent)
            assert self.tools() == before
        else:
            assert team is None or team in self.teams(agent)

    @rule(team=st.sampled_from(TEAMS), agent=st.sampled_from(AGENTS), join=st.booleans())
    def membership(self, team: str, agent: str, join: bool) -> None:
        if join:
            assert self.rt.add_team_member(team, agent) == (agent not in self.members[team])
            self.members[team].add(agent)
        else:
            assert self.rt.remove_team_member(team, agent) == (agent in self.members[team])
            self.members[team].discard(agent)

    def refused_as_seen(self, agent: str, before: Tool, refused: ToolRuntimeError) -> None:
        """Another agent's change is refused: OwnershipError when it may see the tool, else the
        NotFoundError an unknown id gets (an inactive tool of its own is not found either)."""
        teams = {team for team, members in self.members.items() if agent in members}
        if agent == before.owner:
            assert isinstance(refused, NotFoundError) and not before.is_active
        else:
            sees = before.can_discover(agent, teams) or before.can_execute(agent, teams)
            assert isinstance(refused, OwnershipError) == sees

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS), body=st.sampled_from(BODIES))
    def update(self, data: st.DataObject, agent: str, body: str) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        try:
            self.rt.update_tool(agent, tool_id, b.definition(before.name, f"def handler(a, b):\n    {body}\n"))
        except (OwnershipError, NotFoundError) as refused:
            self.refused_as_seen(agent, before, refused)
            assert self.rt.get_tool(tool_id) == before
        except ToolRuntimeError:
            assert self.rt.get_tool(tool_id) == before

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS), purge=st.booleans())
    def deregister(self, data: st.DataObject, agent: str, purge: bool) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        try:
            self.rt.deregister_tool(agent, tool_id, purge)
        except (OwnershipError, NotFoundError) as refused:
            self.refused_as_seen(agent, before, refused)
            assert self.rt.get_tool(tool_id) == before

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS))
    def rollback(self, data: st.DataObject, agent: str) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        version = data.draw(st.integers(1, before.latest_version))
        try:
            self.rt.rollback_tool(agent, tool_id, version)
        except ToolRuntimeError:
            assert self.rt.get_tool(tool_id) == before

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS), share=st.integers(0, 100))
    def set_traffic(self, data: st.DataObject, agent: str, share: int) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        other = data.draw(st.sampled_from([v.number for v in before.versions]))
        weights = (
            {before.current_version: 100}
            if other == before.current_version
            else {before.current_version: share, other: 100 - share}
        )
        try:
            after = self.rt.set_traffic(agent, tool_id, weights)
        except ToolRuntimeError:
            assert agent != before.owner or not before.is_active
            assert self.rt.get_tool(tool_id) == before
        else:
            assert after.traffic is not None and dict(after.traffic.weights) == weights

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS))
    def promote(self, data: st.DataObject, agent: str) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        version = data.draw(st.integers(1, before.latest_version))
        try:
            after = self.rt.promote(agent, tool_id, version)
        except ToolRuntimeError:
            assert self.rt.get_tool(tool_id) == before
        else:
            assert after.current_version == version and after.traffic is None

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS), pin=st.booleans())
    def execute(self, data: st.DataObject, agent: str, pin: bool) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        tool = self.rt.get_tool(tool_id)
        allowed = tool.can_execute(agent, self.teams(agent))
        version = data.draw(st.integers(1, tool.latest_version)) if pin else None
        try:
            result = self.rt.execute_tool(agent, tool_id, {"a": 1, "b": 2}, version)
        except ToolRuntimeError:
            assert not allowed
        else:
            assert allowed and result.ok
            # Every execution ran the pinned version, or one the split gives weight to.
            if version is not None:
                assert result.version == version
            elif tool.traffic is not None:
                assert dict(tool.traffic.weights)[result.version] > 0
            else:
                assert result.version == tool.current_version

    @rule(keep=st.integers(1, 3), dry_run=st.booleans())
    def collect_garbage(self, keep: int, dry_run: bool) -> None:
        before = {t.tool_id: t for t in self.rt.list_tools(status=None)}
        report = self.rt.collect_garbage(older_than=0.001, keep_versions=keep, grace_s=0, dry_run=dry_run)
        assert report.problems == ()
        for tool in self.rt.list_tools(status=None):
            if dry_run or tool.is_active:
                assert tool.versions == before[tool.tool_id].versions  # active tools keep every version
            assert tool.current_version == before[tool.tool_id].current_version

    @invariant()
    def metrics_add_up_to_the_executions(self) -> None:
        for tool in self.rt.list_tools(status=None):
            recorded = self.rt.list_executions(tool.owner, tool=tool.tool_id, limit=1000).items
            metrics = self.rt.tool_metrics(tool.tool_id)
            assert sum(v.executions for v in metrics.versions) == len(recorded)
            assert {v.version: v.executions for v in metrics.versions} == {
                n: sum(1 for e in recorded if e.version == n) for n in {e.version for e in recorded}
            }

    @invariant()
    def each_agent_lists_what_its_membership_allows(self) -> None:
        every = self.rt.list_tools(status=None)
        for agent in AGENTS:
            mine = self.teams(agent)
            expected = {t.tool_id for t in every if t.is_active and t.can_discover(agent, mine)}
            assert {t.tool_id for t in self.rt.list_tools(agent)} == expected
            # Every tool is described as adding numbers: search finds exactly the discoverable ones.
            assert {r.tool.tool_id for r in self.rt.search_tools(agent, "adds numbers", limit=100)} == expected

    @invariant()
    def references_are_exact_and_artifacts_exist(self) -> None:
        repo = self.rt.ports.repository
        store = self.rt.ports.artifacts
        expected: dict[CodeHash, set[str]] = {}
        for tool in self.rt.list_tools(status=None):
            if tool.is_active:
                for h in tool.code_hashes:
                    expected.setdefault(h, set()).add(tool.tool_id)
        for h, users in expected.items():
            assert repo.references(h) == users
            assert store.get(h) is not None
        for h in store.hashes():
            assert repo.references(h) == expected.get(h, set())


TestRuntimeMachine = RuntimeMachine.TestCase
TestRuntimeMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
