"""The contract every ToolRepository adapter must pass."""

from __future__ import annotations

from datetime import timedelta

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, ConflictError, ExecutionStatus, NotFoundError, ToolStatus, Visibility
from toolrt.ports import ExecutionQuery, ToolQuery, ToolRepository


class ToolRepositoryContract:
    """Subclass and implement :meth:`make_repository` (a fresh, empty repository per call)."""

    def make_repository(self) -> ToolRepository:
        raise NotImplementedError

    @pytest.fixture
    def repo(self) -> ToolRepository:
        return self.make_repository()

    def test_is_a_tool_repository(self, repo: ToolRepository) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(repo, ToolRepository)

    def test_add_then_get_round_trips(self, repo: ToolRepository) -> None:
        """A stored tool comes back equal, version history and all."""
        t = b.tool()
        repo.add(t)
        assert repo.get(t.tool_id) == t

    def test_get_unknown_raises_not_found(self, repo: ToolRepository) -> None:
        """An unknown id is a NotFoundError naming the id."""
        with pytest.raises(NotFoundError, match="nope"):
            repo.get("nope")

    def test_add_duplicate_id_conflicts(self, repo: ToolRepository) -> None:
        """Two tools cannot share an id."""
        repo.add(b.tool("t1", name="one"))
        with pytest.raises(ConflictError):
            repo.add(b.tool("t1", name="two"))

    def test_active_names_are_unique_per_owner(self, repo: ToolRepository) -> None:
        """An owner cannot have two active tools with one name; other owners can use it."""
        repo.add(b.tool("t1", owner="a", name="add"))
        with pytest.raises(ConflictError):
            repo.add(b.tool("t2", owner="a", name="add"))
        repo.add(b.tool("t3", owner="b", name="add"))
        assert {t.tool_id for t in repo.list(ToolQuery(status=None))} == {"t1", "t3"}

    def test_an_inactive_name_can_be_reused(self, repo: ToolRepository) -> None:
        """Deactivating a tool frees its name for a new tool of the same owner."""
        t = b.tool("t1", owner="a", name="add")
        repo.add(t)
        repo.save(t.deactivated(b.T0))
        repo.add(b.tool("t2", owner="a", name="add"))
        assert repo.get("t2").is_active

    def test_save_with_next_record_version(self, repo: ToolRepository) -> None:
        """A save that follows the stored record replaces it."""
        t = b.tool()
        repo.add(t)
        t2 = t.with_version(b.definition(code="def handler(a, b):\n    return a - b"), b.T0 + timedelta(1))
        repo.save(t2)
        stored = repo.get(t.tool_id)
        assert stored == t2
        assert stored.current_version == 2 and stored.record_version == 2

    def test_stale_save_conflicts_and_changes_nothing(self, repo: ToolRepository) -> None:
        """Two writers from the same record: the second gets ConflictError, the first's change stays."""
        t = b.tool()
        repo.add(t)
        first = t.with_visibility(Visibility.PUBLIC, b.T0)
        second = t.with_version(b.definition(code="def handler(a, b):\n    return 0"), b.T0)
        repo.save(first)
        with pytest.raises(ConflictError):
            repo.save(second)
        assert repo.get(t.tool_id) == first

    def test_save_unknown_raises_not_found(self, repo: ToolRepository) -> None:
        """Saving a tool that was never added is NotFoundError."""
        t = b.tool()
        with pytest.raises(NotFoundError):
            repo.save(t.with_visibility(Visibility.PUBLIC, b.T0))

    def test_save_cannot_steal_an_active_name(self, repo: ToolRepository) -> None:
        """Renaming a tool onto another active tool's name of the same owner conflicts."""
        repo.add(b.tool("t1", owner="a", name="one"))
        t2 = b.tool("t2", owner="a", name="two")
        repo.add(t2)
        with pytest.raises(ConflictError):
            repo.save(t2.with_version(b.definition("one"), b.T0))
        assert repo.get("t2").name == "two"

    def test_delete_removes_record_and_references(self, repo: ToolRepository) -> None:
        """After delete the tool is gone and references nothing."""
        t = b.tool()
        repo.add(t)
        repo.delete(t.tool_id)
        with pytest.raises(NotFoundError):
            repo.get(t.tool_id)
        assert repo.references(t.code_hash) == frozenset()
        with pytest.raises(NotFoundError):
            repo.delete(t.tool_id)

    def test_references_follow_history_while_active(self, repo: ToolRepository) -> None:
        """An active tool references every hash in its history; deactivation releases them all."""
        t = b.tool("t1")
        repo.add(t)
        h1 = t.code_hash
        t2 = t.with_version(b.definition(code="def handler(a, b):\n    return a * b"), b.T0)
        repo.save(t2)
        h2 = t2.code_hash
        assert repo.references(h1) == {"t1"}
        assert repo.references(h2) == {"t1"}
        repo.save(t2.deactivated(b.T0))
        assert repo.references(h1) == frozenset()
        assert repo.references(h2) == frozenset()

    def test_shared_code_is_referenced_by_each_tool(self, repo: ToolRepository) -> None:
        """Two tools with identical code both reference it; find_by_code_hash returns both."""
        code = "def handler(a, b):\n    return a + b"
        repo.add(b.tool("t1", owner="a", name="x", code=code))
        repo.add(b.tool("t2", owner="b", name="y", code=code))
        h = CodeHash.of("python", code)
        assert repo.references(h) == {"t1", "t2"}
        assert {t.tool_id for t in repo.find_by_code_hash(h)} == {"t1", "t2"}
        repo.delete("t1")
        assert repo.references(h) == {"t2"}

    def test_list_filters(self, repo: ToolRepository) -> None:
        """Listing narrows by owner, visibility to an agent, status, name, tag and text."""
        repo.add(b.tool("t1", owner="a", name="alpha"))
        repo.add(b.tool("t2", owner="b", name="beta", visibility=Visibility.PUBLIC))
        t3 = b.tool("t3", owner="b", name="gamma")
        repo.add(t3)
        repo.save(t3.deactivated(b.T0))

        def ids(query: ToolQuery) -> list[str]:
            return [t.tool_id for t in repo.list(query)]

        assert ids(ToolQuery(owner="a")) == ["t1"]
        assert ids(ToolQuery(visible_to="a")) == ["t1", "t2"]
        assert ids(ToolQuery(owner="b")) == ["t2"]
        assert ids(ToolQuery(owner="b", status=None)) == ["t2", "t3"]
        assert ids(ToolQuery(owner="b", status=ToolStatus.INACTIVE)) == ["t3"]
        assert ids(ToolQuery(name="beta")) == ["t2"]
        assert ids(ToolQuery(text="ALPH")) == ["t1"]
        assert ids(ToolQuery(status=None, limit=2)) == ["t1", "t2"]

    def test_list_by_tag(self, repo: ToolRepository) -> None:
        """Tags of the current version are searchable."""
        t = b.tool("t1")
        repo.add(t)
        repo.save(t.with_version(b.definition(tags=["math", "demo"]), b.T0))
        repo.add(b.tool("t2", name="other"))
        assert [x.tool_id for x in repo.list(ToolQuery(tag="math"))] == ["t1"]

    def test_execution_listing_filters_pages_and_orders_newest_first(self, repo: ToolRepository) -> None:
        """list_executions: caller and tool_ids together match either; the rest narrows; pages by cursor."""
        import attrs

        rows = [
            ("e1", "tool-a", "agent-a", ExecutionStatus.SUCCEEDED, 1),
            ("e2", "tool-b", "agent-b", ExecutionStatus.FAILED, 2),
            ("e3", "tool-a", "agent-b", ExecutionStatus.SUCCEEDED, 3),
            ("e4", "tool-c", "agent-c", ExecutionStatus.SUCCEEDED, 4),
            ("e5", "tool-b", "agent-a", ExecutionStatus.SUCCEEDED, 5),
        ]
        for eid, tool, caller, status, minute in rows:
            repo.record_execution(
                attrs.evolve(b.execution(eid, tool, status), caller=caller, created_at=b.T0 + timedelta(minutes=minute))
            )

        def ids(**fields: object) -> list[str]:
            return [e.execution_id for e in repo.list_executions(ExecutionQuery(**fields))]  # type: ignore[arg-type]

        assert ids() == ["e5", "e4", "e3", "e2", "e1"]
        assert ids(caller="agent-a") == ["e5", "e1"]
        assert ids(tool_ids=frozenset({"tool-a"})) == ["e3", "e1"]
        assert ids(caller="agent-a", tool_ids=frozenset({"tool-a"})) == ["e5", "e3", "e1"]
        assert ids(caller="agent-a", tool_ids=frozenset()) == ["e5", "e1"]
        assert ids(tool_ids=frozenset()) == []
        assert ids(status=ExecutionStatus.FAILED) == ["e2"]
        assert ids(tool_id="tool-b", caller="agent-a") == ["e5"]
        assert ids(since=b.T0 + timedelta(minutes=4)) == ["e5", "e4"]
        first = repo.list_executions(ExecutionQuery(limit=2))
        assert [e.execution_id for e in first] == ["e5", "e4"]
        last = first[-1]
        assert ids(limit=2, before=(last.created_at, last.execution_id)) == ["e3", "e2"]

    def test_execution_records_round_trip_and_replace(self, repo: ToolRepository) -> None:
        """Execution records are stored, replaced by id, and read back equal."""
        e = b.execution(status=ExecutionStatus.RUNNING)
        repo.record_execution(e)
        assert repo.get_execution("exec-1") == e
        done = b.execution()
        repo.record_execution(done)
        assert repo.get_execution("exec-1") == done
        with pytest.raises(NotFoundError):
            repo.get_execution("exec-unknown")
