"""A stateful property test: many agents registering, updating, deregistering and executing."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.fakes import memory_runtime
from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, OwnershipError, ToolRuntimeError, Visibility

AGENTS = ("a", "b", "c")
BODIES = ("return a + b", "return a - b", "return a * b", "return 0")


class RuntimeMachine(RuleBasedStateMachine):
    """Invariants: an artifact exists while any tool references it; its reference set equals the
    tools that use it; a non-owner never changes a tool."""

    def __init__(self) -> None:
        super().__init__()
        self.rt = memory_runtime()
        self.counter = 0

    def tools(self) -> list[str]:
        return [t.tool_id for t in self.rt.list_tools(status=None)]

    @rule(agent=st.sampled_from(AGENTS), body=st.sampled_from(BODIES), visibility=st.sampled_from(list(Visibility)))
    def register(self, agent: str, body: str, visibility: Visibility) -> None:
        self.counter += 1
        self.rt.register_tool(agent, b.definition(f"t{self.counter}", f"def handler(a, b):\n    {body}\n"), visibility)

    @precondition(lambda self: self.tools())
    @rule(data=st.data(), agent=st.sampled_from(AGENTS), body=st.sampled_from(BODIES))
    def update(self, data: st.DataObject, agent: str, body: str) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        before = self.rt.get_tool(tool_id)
        try:
            self.rt.update_tool(agent, tool_id, b.definition(before.name, f"def handler(a, b):\n    {body}\n"))
        except OwnershipError:
            assert agent != before.owner
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
        except OwnershipError:
            assert agent != before.owner
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
    @rule(data=st.data(), agent=st.sampled_from(AGENTS))
    def execute(self, data: st.DataObject, agent: str) -> None:
        tool_id = data.draw(st.sampled_from(self.tools()))
        tool = self.rt.get_tool(tool_id)
        try:
            result = self.rt.execute_tool(agent, tool_id, {"a": 1, "b": 2})
        except ToolRuntimeError:
            assert not tool.can_execute(agent)
        else:
            assert tool.can_execute(agent) and result.ok

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
