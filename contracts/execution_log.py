"""The contract every ExecutionLog adapter must pass.

Besides the examples, a property: for random execution records and random queries, a store lists
exactly what the in-process reference does (``ExecutionQuery.matches``, newest first, the limit),
for every field a query may narrow by. The suites need pytest and hypothesis (test dependencies).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolrt.contracts import builders as b
from toolrt.domain import Execution, ExecutionFailure, ExecutionStatus, NotFoundError, ValidationError
from toolrt.domain.criteria import ExecutionField, fields_of
from toolrt.domain.figures import minute_of
from toolrt.ports import ExecutionLog, ExecutionOutcome, ExecutionQuery, MinuteCount, ToolActivity, ToolUsage
from toolrt.ports.fleet import build_summary

_TOOLS = ("t1", "t2", "t3")
_CALLERS = ("agent-a", "agent-b", "agent-c")
_IDS = tuple(f"e{i}" for i in range(12))
# Few instants, so that records share them (the order falls back to the id) and bounds hit them
# exactly; whole seconds and fractions both, as the clock makes them.
_INSTANTS = tuple(b.T0 + timedelta(minutes=m, microseconds=u) for m in range(4) for u in (0, 500_000))
# A bound may come in any offset: stores compare it as the moment it is.
_OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30)))


def _moments() -> st.SearchStrategy[datetime]:
    return st.builds(
        lambda moment, zone: moment.astimezone(zone), st.sampled_from(_INSTANTS), st.sampled_from(_OFFSETS)
    )


#: How the property draws each field of ExecutionQuery (every field must have one: a new field is
#: then checked on every store the day it is added).
QUERY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "caller": st.none() | st.sampled_from(_CALLERS),
    "tool_ids": st.none() | st.frozensets(st.sampled_from(_TOOLS)),
    "tool_id": st.none() | st.sampled_from(_TOOLS),
    "version": st.none() | st.integers(1, 3),
    "status": st.none() | st.sampled_from(list(ExecutionStatus)),
    "since": st.none() | _moments(),
    "before": st.none() | st.tuples(_moments(), st.sampled_from(_IDS)),
    "limit": st.integers(1, 8),
}

#: Execution records sharing few tools, callers, versions and instants (ids unique).
EXECUTIONS = st.lists(
    st.builds(
        Execution,
        execution_id=st.sampled_from(_IDS),
        tool_id=st.sampled_from(_TOOLS),
        version=st.integers(1, 3),
        caller=st.sampled_from(_CALLERS),
        status=st.sampled_from(list(ExecutionStatus)),
        created_at=st.sampled_from(_INSTANTS),
    ),
    max_size=len(_IDS),
    unique_by=lambda e: e.execution_id,
)
#: Queries with every field drawn (:data:`QUERY_FIELDS`).
QUERIES = st.fixed_dictionaries(QUERY_FIELDS).map(lambda fields: ExecutionQuery(**fields))


def expected_listing(recorded: list[Execution], query: ExecutionQuery) -> list[Execution]:
    """The in-process reference: the records ``query`` matches, newest first (``created_at``, then
    ``execution_id``), at most ``query.limit``."""
    found = sorted(
        (e for e in recorded if query.matches(e)), key=lambda e: (e.created_at, e.execution_id), reverse=True
    )
    return found[: query.limit]


class ExecutionLogContract:
    """Subclass and implement :meth:`make_execution_log` (a fresh, empty log per call)."""

    def make_execution_log(self) -> ExecutionLog:
        raise NotImplementedError

    @pytest.fixture
    def executions(self) -> ExecutionLog:
        return self.make_execution_log()

    def test_is_an_execution_log(self, executions: ExecutionLog) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(executions, ExecutionLog)

    def test_the_property_draws_every_query_field(self) -> None:
        """Every field of ExecutionQuery is drawn by the listing property, and together they compare
        every field of an execution record a query may name."""
        assert {f.name for f in attrs.fields(ExecutionQuery)} == set(QUERY_FIELDS)
        everything = ExecutionQuery(
            caller="a", tool_ids=frozenset({"t"}), tool_id="t", version=1, status=ExecutionStatus.FAILED,
            since=b.T0, before=(b.T0, "e"),
        )  # fmt: skip
        assert {f for c in everything.criteria() for f in fields_of(c)} == set(ExecutionField)

    # One test subclassed per store: its examples suit every store, whichever one found them. Each
    # example makes its own store, so the fixtures of the test do not carry over between examples.
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.differing_executors, HealthCheck.function_scoped_fixture],
    )
    @given(recorded=EXECUTIONS, queries=st.lists(QUERIES, min_size=1, max_size=6))
    def test_listings_equal_the_in_process_reference(
        self, recorded: list[Execution], queries: list[ExecutionQuery]
    ) -> None:
        """For random records and random queries (every field, bounds in any offset), the store
        lists exactly what ``ExecutionQuery.matches`` selects, newest first, at most the limit."""
        executions = self.make_execution_log()
        for record in recorded:
            executions.record_execution(record)
        for query in queries:
            assert list(executions.list_executions(query)) == expected_listing(recorded, query), query

    def test_execution_listing_filters_pages_and_orders_newest_first(self, executions: ExecutionLog) -> None:
        """list_executions: caller and tool_ids together match either; the rest narrows; pages by cursor."""
        rows = [
            ("e1", "tool-a", "agent-a", ExecutionStatus.SUCCEEDED, 1),
            ("e2", "tool-b", "agent-b", ExecutionStatus.FAILED, 2),
            ("e3", "tool-a", "agent-b", ExecutionStatus.SUCCEEDED, 3),
            ("e4", "tool-c", "agent-c", ExecutionStatus.SUCCEEDED, 4),
            ("e5", "tool-b", "agent-a", ExecutionStatus.SUCCEEDED, 5),
        ]
        for eid, tool, caller, status, minute in rows:
            executions.record_execution(
                attrs.evolve(b.execution(eid, tool, status), caller=caller, created_at=b.T0 + timedelta(minutes=minute))
            )

        def ids(**fields: object) -> list[str]:
            return [e.execution_id for e in executions.list_executions(ExecutionQuery(**fields))]  # type: ignore[arg-type]

        assert ids() == ["e5", "e4", "e3", "e2", "e1"]
        assert ids(caller="agent-a") == ["e5", "e1"]
        assert ids(tool_ids=frozenset({"tool-a"})) == ["e3", "e1"]
        assert ids(caller="agent-a", tool_ids=frozenset({"tool-a"})) == ["e5", "e3", "e1"]
        assert ids(caller="agent-a", tool_ids=frozenset()) == ["e5", "e1"]
        assert ids(tool_ids=frozenset()) == []
        assert ids(status=ExecutionStatus.FAILED) == ["e2"]
        assert ids(tool_id="tool-b", caller="agent-a") == ["e5"]
        assert ids(since=b.T0 + timedelta(minutes=4)) == ["e5", "e4"]
        first = executions.list_executions(ExecutionQuery(limit=2))
        assert [e.execution_id for e in first] == ["e5", "e4"]
        last = first[-1]
        assert ids(limit=2, before=(last.created_at, last.execution_id)) == ["e3", "e2"]

    def test_execution_records_round_trip_and_replace(self, executions: ExecutionLog) -> None:
        """Execution records are stored, replaced by id, and read back equal."""
        e = b.execution(status=ExecutionStatus.RUNNING)
        executions.record_execution(e)
        assert executions.get_execution("exec-1") == e
        done = b.execution()
        executions.record_execution(done)
        assert executions.get_execution("exec-1") == done
        with pytest.raises(NotFoundError):
            executions.get_execution("exec-unknown")

    def test_purge_executions_removes_old_finished_records_only(self, executions: ExecutionLog) -> None:
        """Finished records created before the cutoff go (dry_run only counts); pending and running ones stay."""
        records = {
            "old-ok": (ExecutionStatus.SUCCEEDED, -3),
            "old-failed": (ExecutionStatus.FAILED, -2),
            "old-running": (ExecutionStatus.RUNNING, -3),
            "old-pending": (ExecutionStatus.PENDING, -3),
            "new-ok": (ExecutionStatus.SUCCEEDED, 1),
        }
        for eid, (status, days) in records.items():
            executions.record_execution(
                attrs.evolve(b.execution(eid, status=status), created_at=b.T0 + timedelta(days=days))
            )
        assert executions.purge_executions(b.T0, dry_run=True) == 2
        assert executions.get_execution("old-ok").execution_id == "old-ok"
        assert executions.purge_executions(b.T0) == 2
        for eid in ("old-ok", "old-failed"):
            with pytest.raises(NotFoundError):
                executions.get_execution(eid)
        for eid in ("old-running", "old-pending", "new-ok"):
            assert executions.get_execution(eid).execution_id == eid
        assert executions.purge_executions(b.T0) == 0

    def test_purge_executions_keeps_at_most_the_newest_finished_records(self, executions: ExecutionLog) -> None:
        """``keep_newest`` bounds the history by count: older finished records beyond it go, running ones stay."""
        for i in range(6):
            executions.record_execution(attrs.evolve(b.execution(f"e{i}"), created_at=b.T0 + timedelta(minutes=i)))
        running = attrs.evolve(b.execution("run", status=ExecutionStatus.RUNNING), created_at=b.T0)
        executions.record_execution(running)
        before = b.T0 - timedelta(days=1)
        assert executions.purge_executions(before, keep_newest=4, dry_run=True) == 2
        assert executions.purge_executions(before, keep_newest=4) == 2
        for eid in ("e0", "e1"):
            with pytest.raises(NotFoundError):
                executions.get_execution(eid)
        for eid in ("e2", "e3", "e4", "e5", "run"):
            assert executions.get_execution(eid).execution_id == eid
        assert executions.purge_executions(before, keep_newest=4) == 0
        assert executions.purge_executions(before, keep_newest=10) == 0

    def _fleet_records(self, executions: ExecutionLog) -> None:
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
            executions.record_execution(e)

        record("a", "t1", "agent-a", ExecutionStatus.SUCCEEDED, 0, 10.0)
        record("b", "t1", "agent-b", ExecutionStatus.FAILED, 0, 20.0)
        record("c-v2", "t1", "agent-a", ExecutionStatus.SUCCEEDED, 1, 30.0)
        record("d", "t2", "agent-c", ExecutionStatus.TIMED_OUT, 1, 40.0)
        record("e", "t2", "agent-c", ExecutionStatus.CANCELLED, 2, 1.0)
        record("f", "t2", "agent-c", ExecutionStatus.SUCCEEDED, 2, 50.0)
        record("g", "t1", "agent-a", ExecutionStatus.RUNNING, 2, 0.0)  # not finished: never counted
        record("late", "t1", "agent-z", ExecutionStatus.SUCCEEDED, 5, 99.0)  # outside the window

    def test_execution_summary_aggregates_the_finished_calls_of_a_window(self, executions: ExecutionLog) -> None:
        """Counts by status and minute, error types, isolation, per-tool activity, callers and
        nearest-rank percentiles of the finished calls created in ``[since, until)``."""
        self._fleet_records(executions)
        summary = executions.execution_summary(b.T0, b.T0 + timedelta(minutes=3))
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
        empty = executions.execution_summary(b.T0 - timedelta(days=1), b.T0)
        assert empty.callers == 0 and empty.p50_ms is None and empty.tools == () and empty.per_minute == ()

    def test_execution_summary_of_one_tool_splits_minutes_by_version(self, executions: ExecutionLog) -> None:
        """With ``tool_id``, only that tool's calls count, and each minute's counts carry the version."""
        self._fleet_records(executions)
        summary = executions.execution_summary(b.T0, b.T0 + timedelta(minutes=3), tool_id="t1")
        assert summary.tools == (ToolActivity("t1", 3, 1),)
        assert {(m.minute - minute_of(b.T0), m.status, m.version) for m in summary.per_minute} == {
            (0, ExecutionStatus.SUCCEEDED, 1),
            (0, ExecutionStatus.FAILED, 1),
            (1, ExecutionStatus.SUCCEEDED, 2),
        }
        assert (summary.p50_ms, summary.p95_ms) == (20.0, 30.0)

    def test_execution_summary_refuses_a_naive_or_reversed_window(self, executions: ExecutionLog) -> None:
        """A window is timezone-aware and does not end before it starts (ValidationError)."""
        with pytest.raises(ValidationError, match="timezone"):
            executions.execution_summary(b.T0.replace(tzinfo=None), b.T0.replace(tzinfo=None))
        with pytest.raises(ValidationError, match="before it starts"):
            executions.execution_summary(b.T0, b.T0 - timedelta(minutes=1))

    def test_tool_usage_counts_finished_calls_by_tool(self, executions: ExecutionLog) -> None:
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
            executions.record_execution(b.execution(f"e{i}", tool_id=tool_id, caller=caller, status=status))
        usage = executions.tool_usage(["t1", "t2", "t3"])
        assert usage["t1"] == ToolUsage(executions=3, distinct_callers=2, succeeded=2)
        assert usage["t2"] == ToolUsage(executions=1, distinct_callers=1, succeeded=0)
        assert usage["t3"] == ToolUsage(0, 0, 0) and usage["t3"].success_rate is None
        assert executions.tool_usage([]) == {}

    def test_execution_outcomes_are_the_finished_calls_of_one_tool(self, executions: ExecutionLog) -> None:
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
            executions.record_execution(record)
        found = sorted(executions.execution_outcomes("t1"), key=lambda o: (o.version, o.status.value))
        assert found == [
            ExecutionOutcome(1, ExecutionStatus.SUCCEEDED, 5.0, None),
            ExecutionOutcome(1, ExecutionStatus.TIMED_OUT, 5.0, None),
            ExecutionOutcome(2, ExecutionStatus.FAILED, 5.0, "KeyError"),
        ]
        assert [o.status for o in executions.execution_outcomes("t1", since=late)] == [ExecutionStatus.TIMED_OUT]
        assert executions.execution_outcomes("nothing") == []

    def test_bounds_in_another_offset_mean_the_same_moment(self, executions: ExecutionLog) -> None:
        """A window, a ``since`` or a purge cutoff given in another UTC offset selects the same
        records as the same moment given in UTC."""
        self._fleet_records(executions)
        ahead = timezone(timedelta(hours=2))
        since, until = b.T0 + timedelta(minutes=1), b.T0 + timedelta(minutes=3)
        assert executions.execution_summary(since.astimezone(ahead), until.astimezone(ahead)) == (
            executions.execution_summary(since, until)
        )
        outcomes = sorted(executions.execution_outcomes("t1", since), key=lambda o: (o.version, o.status.value))
        shifted = executions.execution_outcomes("t1", since.astimezone(ahead))
        assert sorted(shifted, key=lambda o: (o.version, o.status.value)) == outcomes
        assert executions.purge_executions(since.astimezone(ahead), dry_run=True) == 2
