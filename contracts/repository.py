"""The contract every ToolRepository adapter must pass."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import attrs
import pytest

from toolrt.contracts import builders as b
from toolrt.domain import (
    CodeHash,
    ConflictError,
    ExecutionFailure,
    ExecutionStatus,
    NotFoundError,
    StorageError,
    Tool,
    ToolStatus,
    TransientError,
    ValidationError,
    Visibility,
)
from toolrt.domain.search import query_terms
from toolrt.ports import ExecutionOutcome, ExecutionQuery, SearchQuery, ToolQuery, ToolRepository, ToolUsage
from toolrt.ports.fleet import MinuteCount, StoredCount, ToolActivity, ToolCensus, build_summary, minute_of, summed
from toolrt.ports.repository import InProcessSearch


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

    def test_network_declaration_round_trips_with_each_version(self, repo: ToolRepository) -> None:
        """A version's network declaration is stored with it: the hosts a tool may reach come back as given."""
        t = b.tool()
        t = t.with_version(b.definition(network={"allow": ["api.example.com:443", "[::1]:8080"]}), b.T0)
        repo.add(t)
        got = repo.get(t.tool_id)
        assert got == t
        assert [str(e) for e in got.definition.network.allow] == ["[::1]:8080", "api.example.com:443"]
        assert not got.version(1).definition.network

    def test_requirements_and_lock_round_trip_with_each_version(self, repo: ToolRepository) -> None:
        """A version's requirements and the lock they resolved to are stored with it, exactly."""
        t = b.tool()
        with_packages = b.definition(requirements=["python-dateutil>=2.8", "six"], lock=b.lock())
        t = t.with_version(with_packages, b.T0)
        repo.add(t)
        got = repo.get(t.tool_id)
        assert got == t
        assert got.definition.requirements == ("python-dateutil>=2.8", "six")
        assert got.definition.lock == b.lock()
        assert got.code_hash == with_packages.code_hash != b.definition().code_hash
        assert got.version(1).definition.lock is None and not got.version(1).definition.requirements

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

    def test_change_marker_moves_with_tools_and_teams_not_executions(self, repo: ToolRepository) -> None:
        """A store that offers a change marker changes it for a tool added, saved or deleted and for a
        membership change, and keeps it for an execution record (watchers announce tool changes)."""
        before = repo.change_marker()
        if before is None:
            return  # the store cannot tell (memory, DynamoDB): its watchers rely on events alone
        t = b.tool()
        repo.add(t)
        added = repo.change_marker()
        assert added != before
        repo.record_execution(b.execution())
        assert repo.change_marker() == added
        repo.save(t.with_version(b.definition(code="def handler(a, b):\n    return a - b"), b.T0))
        saved = repo.change_marker()
        assert saved != added
        repo.add_team_member("red", "a")
        joined = repo.change_marker()
        assert joined != saved
        repo.delete(t.tool_id)
        assert repo.change_marker() != joined

    # -- garbage collection ----------------------------------------------------------------------

    def test_delete_unreferenced_calls_delete_only_for_unreferenced_hashes(self, repo: ToolRepository) -> None:
        """delete_unreferenced deletes a hash no tool references, or only an inactive one; never a referenced one."""
        active = b.tool("t1", owner="a", name="one")
        inactive = b.tool("t2", owner="b", name="two")
        repo.add(active)
        repo.add(inactive)
        repo.save(inactive.deactivated(b.T0))
        orphan = b.artifact("def handler():\n    return 'orphan'").code_hash
        calls: list[CodeHash] = []
        deleted = repo.delete_unreferenced([active.code_hash, inactive.code_hash, orphan], calls.append)
        assert list(deleted) == calls == [inactive.code_hash, orphan]
        assert repo.references(active.code_hash) == {"t1"}

    def test_delete_unreferenced_stops_at_a_failing_delete_and_can_run_again(self, repo: ToolRepository) -> None:
        """A delete that raises stops the call with its error; a later call deletes the hash."""
        h = b.artifact("def handler():\n    return 2").code_hash

        def failing(code_hash: CodeHash) -> None:
            raise StorageError("disk gone", backend="test")

        with pytest.raises(StorageError):
            repo.delete_unreferenced([h], failing)
        assert list(repo.delete_unreferenced([h], lambda code_hash: None)) == [h]

    def test_a_tool_referencing_the_hash_is_never_stored_between_check_and_delete(self, repo: ToolRepository) -> None:
        """A concurrent add of a tool using the hash waits until delete returned, or is refused (TransientError)."""
        t = b.tool("t1", owner="a", name="racer")
        outcome: dict[str, Any] = {}
        in_delete = threading.Event()
        delete_done = threading.Event()

        def add() -> None:
            in_delete.wait(5)
            try:
                repo.add(t)
                outcome["stored_after_delete"] = delete_done.is_set()
            except TransientError:
                outcome["refused"] = True

        def delete(code_hash: CodeHash) -> None:
            in_delete.set()
            worker.join(0.3)  # time for the concurrent add to land, if the repository let it
            delete_done.set()

        worker = threading.Thread(target=add)
        worker.start()
        assert list(repo.delete_unreferenced([t.code_hash], delete)) == [t.code_hash]
        worker.join(10)
        assert outcome in ({"stored_after_delete": True}, {"refused": True})
        if "refused" in outcome:
            with pytest.raises(NotFoundError):
                repo.get("t1")
            repo.add(t)  # once collection is over, the tool can be stored
        assert repo.references(t.code_hash) == {"t1"}

    def test_purge_executions_removes_old_finished_records_only(self, repo: ToolRepository) -> None:
        """Finished records created before the cutoff go (dry_run only counts); pending and running ones stay."""
        records = {
            "old-ok": (ExecutionStatus.SUCCEEDED, -3),
            "old-failed": (ExecutionStatus.FAILED, -2),
            "old-running": (ExecutionStatus.RUNNING, -3),
            "old-pending": (ExecutionStatus.PENDING, -3),
            "new-ok": (ExecutionStatus.SUCCEEDED, 1),
        }
        for eid, (status, days) in records.items():
            repo.record_execution(attrs.evolve(b.execution(eid, status=status), created_at=b.T0 + timedelta(days=days)))
        assert repo.purge_executions(b.T0, dry_run=True) == 2
        assert repo.get_execution("old-ok").execution_id == "old-ok"
        assert repo.purge_executions(b.T0) == 2
        for eid in ("old-ok", "old-failed"):
            with pytest.raises(NotFoundError):
                repo.get_execution(eid)
        for eid in ("old-running", "old-pending", "new-ok"):
            assert repo.get_execution(eid).execution_id == eid
        assert repo.purge_executions(b.T0) == 0

    def test_purge_executions_keeps_at_most_the_newest_finished_records(self, repo: ToolRepository) -> None:
        """``keep_newest`` bounds the history by count: older finished records beyond it go, running ones stay."""
        for i in range(6):
            repo.record_execution(attrs.evolve(b.execution(f"e{i}"), created_at=b.T0 + timedelta(minutes=i)))
        running = attrs.evolve(b.execution("run", status=ExecutionStatus.RUNNING), created_at=b.T0)
        repo.record_execution(running)
        before = b.T0 - timedelta(days=1)
        assert repo.purge_executions(before, keep_newest=4, dry_run=True) == 2
        assert repo.purge_executions(before, keep_newest=4) == 2
        for eid in ("e0", "e1"):
            with pytest.raises(NotFoundError):
                repo.get_execution(eid)
        for eid in ("e2", "e3", "e4", "e5", "run"):
            assert repo.get_execution(eid).execution_id == eid
        assert repo.purge_executions(before, keep_newest=4) == 0
        assert repo.purge_executions(before, keep_newest=10) == 0

    # -- fleet figures ---------------------------------------------------------------------------

    def _fleet_records(self, repo: ToolRepository) -> None:
        def record(eid: str, tool_id: str, caller: str, status: ExecutionStatus, minute: int, wall: float) -> None:
            e = b.execution(eid, tool_id=tool_id, caller=caller, status=status)
            e = attrs.evolve(
                e,
                created_at=b.T0 + timedelta(minutes=minute, seconds=7),
                metrics=attrs.evolve(e.metrics, wall_ms=wall),
                version=2 if eid.endswith("v2") else 1,
            )
            if status is not ExecutionStatus.SUCCEEDED:
                e = attrs.evolve(e, error=ExecutionFailure("KeyError" if tool_id == "t1" else "Timeout", "x"))
            repo.record_execution(e)

        record("a", "t1", "agent-a", ExecutionStatus.SUCCEEDED, 0, 10.0)
        record("b", "t1", "agent-b", ExecutionStatus.FAILED, 0, 20.0)
        record("c-v2", "t1", "agent-a", ExecutionStatus.SUCCEEDED, 1, 30.0)
        record("d", "t2", "agent-c", ExecutionStatus.TIMED_OUT, 1, 40.0)
        record("e", "t2", "agent-c", ExecutionStatus.CANCELLED, 2, 1.0)
        record("f", "t2", "agent-c", ExecutionStatus.SUCCEEDED, 2, 50.0)
        record("g", "t1", "agent-a", ExecutionStatus.RUNNING, 2, 0.0)  # not finished: never counted
        record("late", "t1", "agent-z", ExecutionStatus.SUCCEEDED, 5, 99.0)  # outside the window

    def test_execution_summary_aggregates_the_finished_calls_of_a_window(self, repo: ToolRepository) -> None:
        """Counts by status and minute, error types, isolation, per-tool activity, callers and
        nearest-rank percentiles of the finished calls created in ``[since, until)``."""
        self._fleet_records(repo)
        summary = repo.execution_summary(b.T0, b.T0 + timedelta(minutes=3))
        assert summary == build_summary(
            {
                ExecutionStatus.SUCCEEDED: 3,
                ExecutionStatus.FAILED: 1,
                ExecutionStatus.TIMED_OUT: 1,
                ExecutionStatus.CANCELLED: 1,
            },
            [
                MinuteCount(minute_of(b.T0), ExecutionStatus.SUCCEEDED, 1),
                MinuteCount(minute_of(b.T0), ExecutionStatus.FAILED, 1),
                MinuteCount(minute_of(b.T0) + 1, ExecutionStatus.SUCCEEDED, 1),
                MinuteCount(minute_of(b.T0) + 1, ExecutionStatus.TIMED_OUT, 1),
                MinuteCount(minute_of(b.T0) + 2, ExecutionStatus.CANCELLED, 1),
                MinuteCount(minute_of(b.T0) + 2, ExecutionStatus.SUCCEEDED, 1),
            ],
            {"KeyError": 1, "Timeout": 2},
            {"process": 5},
            [ToolActivity("t1", 3, 1), ToolActivity("t2", 2, 1)],
            3,
            30.0,
            50.0,
        )
        assert summary.count(ExecutionStatus.KILLED) == 0
        empty = repo.execution_summary(b.T0 - timedelta(days=1), b.T0)
        assert empty.callers == 0 and empty.p50_ms is None and empty.tools == () and empty.per_minute == ()

    def test_execution_summary_of_one_tool_splits_minutes_by_version(self, repo: ToolRepository) -> None:
        """With ``tool_id``, only that tool's calls count, and each minute's counts carry the version."""
        self._fleet_records(repo)
        summary = repo.execution_summary(b.T0, b.T0 + timedelta(minutes=3), tool_id="t1")
        assert summary.tools == (ToolActivity("t1", 3, 1),)
        assert {(m.minute - minute_of(b.T0), m.status, m.version) for m in summary.per_minute} == {
            (0, ExecutionStatus.SUCCEEDED, 1),
            (0, ExecutionStatus.FAILED, 1),
            (1, ExecutionStatus.SUCCEEDED, 2),
        }
        assert (summary.p50_ms, summary.p95_ms) == (20.0, 30.0)

    def test_execution_summary_refuses_a_naive_or_reversed_window(self, repo: ToolRepository) -> None:
        """A window is timezone-aware and does not end before it starts (ValidationError)."""
        with pytest.raises(ValidationError, match="timezone"):
            repo.execution_summary(b.T0.replace(tzinfo=None), b.T0.replace(tzinfo=None))
        with pytest.raises(ValidationError, match="before it starts"):
            repo.execution_summary(b.T0, b.T0 - timedelta(minutes=1))

    def test_tool_census_counts_tools_owners_and_visibility(self, repo: ToolRepository) -> None:
        """Active and inactive tools, distinct owners of active ones, and active tools per visibility."""
        repo.add(b.tool("t1", owner="a", name="one"))
        repo.add(b.tool("t2", owner="a", name="two", visibility=Visibility.PUBLIC))
        repo.add(b.tool("t3", owner="b", name="three", visibility=Visibility.TEAM, team="ops"))
        gone = b.tool("t4", owner="c", name="four")
        repo.add(gone)
        repo.save(gone.deactivated(b.T0))
        census = repo.tool_census()
        assert census == ToolCensus(3, 1, 2, (("private", 1), ("public", 1), ("team", 1)))

    def test_counts_add_up_per_minute_name_and_dimensions(self, repo: ToolRepository) -> None:
        """Stored counts add to the total of their key; a window reads its minutes; purge drops older ones."""
        dims = (("outcome", "success"),)
        repo.add_counts([StoredCount(10, "registrations", dims, 2), StoredCount(11, "registrations", dims, 1)])
        repo.add_counts([StoredCount(10, "registrations", dims, 3), StoredCount(10, "artifact_cache", (), 1)])
        repo.add_counts([])
        assert summed(repo.read_counts(10, 12)) == [
            StoredCount(10, "artifact_cache", (), 1),
            StoredCount(10, "registrations", dims, 5),
            StoredCount(11, "registrations", dims, 1),
        ]
        assert summed(repo.read_counts(11, 12)) == [StoredCount(11, "registrations", dims, 1)]
        assert repo.read_counts(12, 100) == [] and repo.read_counts(5, 5) == []
        assert repo.purge_counts(11, dry_run=True) == 2
        assert repo.purge_counts(11) == 2
        assert summed(repo.read_counts(0, 100)) == [StoredCount(11, "registrations", dims, 1)]

    def test_counts_from_many_threads_are_never_lost(self, repo: ToolRepository) -> None:
        """Concurrent adds to one counter all count (an atomic add, never read-modify-write)."""

        def add() -> None:
            for _ in range(10):
                repo.add_counts([StoredCount(1, "registrations", (("outcome", "success"),), 1)])

        threads = [threading.Thread(target=add) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(c.value for c in repo.read_counts(0, 2)) == 40

    # -- search ----------------------------------------------------------------------------------

    @staticmethod
    def _searchable(tool_id: str, owner: str, name: str, description: str, **kw: Any) -> Tool:
        visibility = kw.pop("visibility", Visibility.PUBLIC)
        team = kw.pop("team", None)
        definition = b.definition(name, description=description, **kw)
        return Tool.create(
            tool_id=tool_id, owner=owner, definition=definition, visibility=visibility, team=team, now=b.T0
        )

    def _catalog(self, repo: ToolRepository) -> list[Tool]:
        tools = [
            self._searchable("w1", "a", "get_weather_forecast", "Weather forecast for a city, by day"),
            self._searchable("w2", "a", "currentWeather", "The weather now at a place", tags=("weather",)),
            self._searchable("u1", "b", "convert_units", "Convert a length between metric and imperial units"),
            self._searchable("p1", "a", "city_population", "Population of a city", visibility=Visibility.PRIVATE),
            self._searchable(
                "s1", "b", "stolen_weather", "Weather from b's secret station", visibility=Visibility.PRIVATE
            ),
        ]
        for tool in tools:
            repo.add(tool)
        return tools

    def test_search_ranks_as_the_shared_scorer_does(self, repo: ToolRepository) -> None:
        """Hits, order, scores and matched fields are those of BM25F over exactly the visible tools."""
        tools = self._catalog(repo)
        for agent in ("a", "b", None):
            for text in ("weather forecast for a city", "convert length", "city", "weather"):
                query = SearchQuery(query_terms(text), visible_to=agent)
                expected = InProcessSearch().search(tools, query)
                got = repo.search(query)
                assert [(h.tool.tool_id, h.score.matched) for h in got] == [
                    (h.tool.tool_id, h.score.matched) for h in expected
                ], (agent, text)
                for mine, reference in zip(got, expected, strict=True):
                    assert mine.score.value == pytest.approx(reference.score.value)
                    assert mine.tool == reference.tool

    def test_search_never_shows_or_feels_another_agents_private_tools(self, repo: ToolRepository) -> None:
        """b's private tools are not found by a, and do not move a's scores (corpus statistics are a's)."""
        self._catalog(repo)
        query = SearchQuery(query_terms("weather station secret"), visible_to="a")
        before = [(h.tool.tool_id, h.score.value) for h in repo.search(query)]
        assert before and all(tool_id != "s1" for tool_id, _ in before)
        for i in range(5):  # many private tools of b full of the same words
            repo.add(
                self._searchable(
                    f"s{i + 2}", "b", f"weather_{i}", "weather station secret weather", visibility=Visibility.PRIVATE
                )
            )
        after = [(h.tool.tool_id, h.score.value) for h in repo.search(query)]
        assert after == before

    def test_search_follows_updates_deactivation_and_deletion(self, repo: ToolRepository) -> None:
        """The index changes with the record: a new description is found, an old one not, inactive never."""
        tools = {t.tool_id: t for t in self._catalog(repo)}
        changed = tools["u1"].with_version(b.definition("convert_units", description="Translate text to French"), b.T0)
        repo.save(changed)
        assert [h.tool.tool_id for h in repo.search(SearchQuery(query_terms("french"), visible_to="a"))] == ["u1"]
        assert repo.search(SearchQuery(query_terms("imperial"), visible_to="a")) == []
        repo.save(repo.get("w1").deactivated(b.T0))
        found = [h.tool.tool_id for h in repo.search(SearchQuery(query_terms("weather forecast"), visible_to="a"))]
        assert "w1" not in found and found == ["w2"]
        repo.delete("w2")
        assert repo.search(SearchQuery(query_terms("weather"), visible_to="a")) == []

    def test_search_returns_only_records_the_asker_may_see_while_they_change(self, repo: ToolRepository) -> None:
        """While b flips its tool between public and private (another thread), every record a search
        returns to a is one a may see: visibility is decided on the very record returned."""
        self._catalog(repo)
        flipped = self._searchable("f1", "b", "weather_flip", "weather now and then")
        repo.add(flipped)
        stop = threading.Event()

        def flip() -> None:
            private = True
            while not stop.is_set():
                current = repo.get("f1")
                visibility = Visibility.PRIVATE if private else Visibility.PUBLIC
                repo.save(current.with_visibility(visibility, b.T0))
                private = not private

        flipper = threading.Thread(target=flip, name="contract-flipper")
        flipper.start()
        try:
            query = SearchQuery(query_terms("weather"), visible_to="a")
            for _ in range(150):
                for hit in repo.search(query):
                    assert hit.tool.is_active and hit.tool.can_discover("a"), hit.tool.tool_id
        finally:
            stop.set()
            flipper.join(timeout=60)

    def test_search_by_tags_and_limit(self, repo: ToolRepository) -> None:
        """Tags keep tools carrying every one of them; the limit cuts the ranked list."""
        self._catalog(repo)
        tagged = repo.search(SearchQuery(query_terms("weather"), visible_to="a", tags=("weather",)))
        assert [h.tool.tool_id for h in tagged] == ["w2"]
        assert len(repo.search(SearchQuery(query_terms("weather city"), visible_to="a", limit=1))) == 1
        assert repo.search(SearchQuery((), visible_to="a")) == []

    def test_discoverable_lists_the_keys_of_exactly_the_visible_active_tools(self, repo: ToolRepository) -> None:
        """Ids, record versions and tags of what the agent may discover, as the records say."""
        tools = self._catalog(repo)
        repo.save(repo.get("w1").deactivated(b.T0))
        for agent in ("a", "b", None):
            expected = {
                (t.tool_id, t.record_version, t.definition.tags)
                for t in (repo.get(t.tool_id) for t in tools)
                if t.is_active and (agent is None or t.can_discover(agent))
            }
            assert set(repo.discoverable(agent)) == expected
            assert len(repo.discoverable(agent)) == len(expected)

    # -- teams -----------------------------------------------------------------------------------

    def test_team_membership_is_kept_per_agent_and_team(self, repo: ToolRepository) -> None:
        """Adding twice or removing a non-member reports False and changes nothing."""
        assert repo.teams_of("a") == frozenset() and dict(repo.list_teams()) == {}
        assert repo.add_team_member("red", "a") is True
        assert repo.add_team_member("red", "a") is False
        assert repo.add_team_member("red", "b") and repo.add_team_member("blue", "a")
        assert repo.teams_of("a") == {"red", "blue"} and repo.teams_of("b") == {"red"}
        assert dict(repo.list_teams()) == {"blue": {"a"}, "red": {"a", "b"}}
        assert repo.remove_team_member("red", "c") is False
        assert repo.remove_team_member("blue", "a") is True
        assert repo.teams_of("a") == {"red"} and dict(repo.list_teams()) == {"red": {"a", "b"}}

    def _team_catalog(self, repo: ToolRepository) -> list[Tool]:
        team = Visibility.TEAM
        shared = [
            self._searchable("r1", "b", "red_weather", "Weather radar for the red team", visibility=team, team="red"),
            self._searchable("r2", "c", "red_city", "City weather station list", visibility=team, team="red"),
            self._searchable("k1", "b", "blue_weather", "Weather of the blue team", visibility=team, team="blue"),
        ]
        for tool in shared:
            repo.add(tool)
        return [*self._catalog(repo), *shared]

    def test_team_tools_are_listed_and_searched_only_through_their_team(self, repo: ToolRepository) -> None:
        """A member of red finds red's tools, never blue's; scores use exactly its visible tools."""
        tools = self._team_catalog(repo)
        stored = {t.tool_id: repo.get(t.tool_id) for t in tools}
        assert stored["r1"].team == "red" and stored["r1"].visibility is Visibility.TEAM
        cases = [("a", frozenset({"red"})), ("a", frozenset()), ("b", frozenset()), ("c", frozenset({"blue", "red"}))]
        for agent, teams in cases:
            listed = {t.tool_id for t in repo.list(ToolQuery(visible_to=agent, teams=teams))}
            assert listed == {t.tool_id for t in tools if t.can_discover(agent, teams)}, (agent, teams)
            keys = {tool_id for tool_id, _, _ in repo.discoverable(agent, teams)}
            assert keys == listed
            for text in ("weather station", "red team radar", "city"):
                query = SearchQuery(query_terms(text), visible_to=agent, teams=teams)
                expected = InProcessSearch().search(tools, query)
                got = repo.search(query)
                assert [h.tool.tool_id for h in got] == [h.tool.tool_id for h in expected], (agent, teams, text)
                for mine, reference in zip(got, expected, strict=True):
                    assert mine.score.value == pytest.approx(reference.score.value)
        # b owns k1 (blue) without being in blue: its owner still finds it.
        assert "k1" in {h.tool.tool_id for h in repo.search(SearchQuery(query_terms("blue"), visible_to="b"))}

    def test_a_tool_moving_to_and_from_a_team_moves_in_search(self, repo: ToolRepository) -> None:
        """Visibility changes re-index the tool: found by the team while team, by nobody else after."""
        tools = self._team_catalog(repo)
        del tools
        query = SearchQuery(query_terms("radar"), visible_to="a", teams={"red"})
        assert [h.tool.tool_id for h in repo.search(query)] == ["r1"]
        repo.save(repo.get("r1").with_visibility(Visibility.PRIVATE, b.T0))
        assert (
            repo.search(query) == [] and repo.list(ToolQuery(visible_to="a", teams={"red"}, name="red_weather")) == []
        )
        repo.save(repo.get("r1").with_visibility(Visibility.TEAM, b.T0, team="red"))
        assert [h.tool.tool_id for h in repo.search(query)] == ["r1"]

    # -- usage -----------------------------------------------------------------------------------

    def test_tool_usage_counts_finished_calls_by_tool(self, repo: ToolRepository) -> None:
        """Finished, not cancelled, calls; distinct callers; successes; zeros for a tool never called."""
        statuses = [
            ("t1", "a", ExecutionStatus.SUCCEEDED),
            ("t1", "b", ExecutionStatus.FAILED),
            ("t1", "a", ExecutionStatus.SUCCEEDED),
            ("t1", "c", ExecutionStatus.CANCELLED),
            ("t1", "c", ExecutionStatus.RUNNING),
            ("t2", "b", ExecutionStatus.TIMED_OUT),
        ]
        for i, (tool_id, caller, status) in enumerate(statuses):
            repo.record_execution(b.execution(f"e{i}", tool_id=tool_id, caller=caller, status=status))
        usage = repo.tool_usage(["t1", "t2", "t3"])
        assert usage["t1"] == ToolUsage(executions=3, distinct_callers=2, succeeded=2)
        assert usage["t2"] == ToolUsage(executions=1, distinct_callers=1, succeeded=0)
        assert usage["t3"] == ToolUsage(0, 0, 0) and usage["t3"].success_rate is None
        assert repo.tool_usage([]) == {}

    def test_execution_outcomes_are_the_finished_calls_of_one_tool(self, repo: ToolRepository) -> None:
        """Version, status, wall time and error type of each finished call, narrowed by ``since``."""
        late = b.T0 + timedelta(hours=1)
        records = [
            b.execution("e1", tool_id="t1"),
            attrs.evolve(b.execution("e2", tool_id="t1", status=ExecutionStatus.FAILED), version=2),
            b.execution("e3", tool_id="t1", status=ExecutionStatus.RUNNING),
            b.execution("e4", tool_id="t2"),
            attrs.evolve(b.execution("e5", tool_id="t1", status=ExecutionStatus.TIMED_OUT), created_at=late),
        ]
        records[1] = attrs.evolve(records[1], error=ExecutionFailure("KeyError", "item"))
        for record in records:
            repo.record_execution(record)
        found = sorted(repo.execution_outcomes("t1"), key=lambda o: (o.version, o.status.value))
        assert found == [
            ExecutionOutcome(1, ExecutionStatus.SUCCEEDED, 5.0, None),
            ExecutionOutcome(1, ExecutionStatus.TIMED_OUT, 5.0, None),
            ExecutionOutcome(2, ExecutionStatus.FAILED, 5.0, "KeyError"),
        ]
        assert [o.status for o in repo.execution_outcomes("t1", since=late)] == [ExecutionStatus.TIMED_OUT]
        assert repo.execution_outcomes("nothing") == []
