"""Fleet metrics: the runtime owner's typed figures of what every agent's tools did over a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import toolrt
from toolrt.application.fleet_metrics import FleetMetrics, Refusal, StoredCounters, parse_window
from toolrt.domain import NotFoundError, ValidationError
from toolrt.ports import ToolActivity

ECHO = "def handler(secret: str) -> str:\n    return secret\n"
BOOM = "def handler(secret: str) -> str:\n    raise KeyError(secret)\n"


def _tool(name: str, code: str = ECHO) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Echo.",
        "language": "python",
        "code": code,
        "input_schema": {"type": "object", "properties": {"secret": {"type": "string"}}, "required": ["secret"]},
    }


@pytest.fixture
def rt() -> Any:
    with toolrt.connect("memory", sandbox="inprocess") as runtime:
        yield runtime


def test_fleet_metrics_count_tools_agents_executions_and_stored_counters(rt: Any) -> None:
    """A scripted workload of two agents comes back as typed figures: no string keys to parse."""
    mine = rt.register_tool("alice", _tool("echo"), "public")
    rt.register_tool("mallory", _tool("copy"))  # the same code as a public tool: an artifact cache hit
    boom = rt.register_tool("mallory", _tool("boom", BOOM))
    rt.register_tool("alice", _tool("echo2"))  # alice sees her own code: an artifact cache hit
    with pytest.raises(ValidationError):
        rt.register_tool("alice", _tool("bad", "def handler(:\n"))
    rt.execute_tool("alice", mine.tool_id, {"secret": "a"})
    rt.execute_tool("mallory", mine.tool_id, {"secret": "m"})
    rt.execute_tool("mallory", boom.tool_id, {"secret": "private-value"})
    with pytest.raises(ValidationError):
        rt.execute_tool("mallory", mine.tool_id, {"secret": 3})  # refused before it runs
    with pytest.raises(NotFoundError):
        rt.execute_tool("mallory", "nothing-here", {})

    fleet = rt.fleet_metrics("1h")
    assert isinstance(fleet, FleetMetrics)
    assert (fleet.tools, fleet.agents, fleet.callers) == (4, 2, 2)
    assert dict(fleet.tools_by_visibility) == {"private": 3, "public": 1}
    assert (fleet.executions, fleet.succeeded, fleet.failed) == (3, 2, 1)
    assert fleet.failure_rate == pytest.approx(1 / 3)
    assert dict(fleet.error_types) == {"KeyError": 1}
    assert dict(fleet.isolation) == {"none": 3}
    assert fleet.p50_ms is not None and fleet.p95_ms is not None and fleet.p50_ms <= fleet.p95_ms
    assert fleet.busiest[0] == ToolActivity(mine.tool_id, 2, 0)
    assert (fleet.registrations, fleet.registrations_failed) == (4, 1)
    assert (fleet.cache_hits, fleet.cache_misses) == (2, 3)  # copy, echo2; echo, boom, bad
    assert fleet.cache_hit_ratio == pytest.approx(2 / 5)
    assert Refusal("execute", "ValidationError", 1) in fleet.refusals
    assert Refusal("execute", "NotFoundError", 1) in fleet.refusals
    assert Refusal("register", "ValidationError", 1) in fleet.refusals
    assert sum(p.executions for p in fleet.series) == 3 and len(fleet.series) == 60
    assert fleet.executions_per_minute == pytest.approx(3 / 60)
    assert fleet.counter("registrations", outcome="success") == 4


def test_fleet_metrics_never_carry_params_outputs_or_messages(rt: Any) -> None:
    """What a call was given, returned or printed never reaches the figures (only types and counts)."""
    reg = rt.register_tool("alice", _tool("boom", BOOM))
    rt.execute_tool("alice", reg.tool_id, {"secret": "hunter2-private"})
    text = repr(rt.fleet_metrics("1h").as_dict())
    assert "hunter2" not in text and "KeyError" in text


def test_series_points_span_several_minutes_past_three_hours(rt: Any) -> None:
    """At most 180 points: a day's window has 8-minute points, each counting calls per minute."""
    fleet = rt.fleet_metrics("1d")
    assert fleet.bucket_minutes == 8 and len(fleet.series) == 180 and fleet.minutes == 1440
    assert all(p.minutes == 8 for p in fleet.series)


def test_a_window_ending_earlier_excludes_later_calls(rt: Any) -> None:
    """``until`` moves the window: calls after it are not counted."""
    reg = rt.register_tool("alice", _tool("echo"))
    rt.execute_tool("alice", reg.tool_id, {"secret": "a"})
    earlier = rt.fleet_metrics("10m", until=datetime.now(UTC) - timedelta(hours=1))
    assert earlier.executions == 0 and earlier.registrations == 0
    assert rt.fleet_metrics("10m").executions == 1


@pytest.mark.parametrize(
    ("window", "message"),
    [("8d", "at most 7 days"), ("-1h", "window"), ("soon", "window"), (0, "window")],
)
def test_bad_windows_are_refused(rt: Any, window: Any, message: str) -> None:
    """A window that is not a positive duration of at most 7 days is a ValidationError naming it."""
    with pytest.raises(ValidationError, match=message):
        rt.fleet_metrics(window)


def test_parse_window_rounds_up_to_whole_minutes() -> None:
    """Windows are whole minutes (a part of a minute counts as one)."""
    assert parse_window("1h") == 60 and parse_window(90) == 2 and parse_window(timedelta(days=7)) == 7 * 1440


def test_counts_reach_the_store_on_flush_and_close_only_once() -> None:
    """Counters are gathered in process and written together; closing writes what is left."""
    with toolrt.connect("memory", sandbox="inprocess") as runtime:
        counters: StoredCounters = runtime._counters
        counters.increment("registrations", outcome="success")
        counters.increment("registrations", outcome="success")
        counters.increment("executions", status="succeeded")  # derivable from records: not stored
        counters.increment("errors", type="KeyError", operation="execute")  # idem
        counters.flush()
        counters.flush()
        stored = runtime.ports.repository.read_counts(0, 10**9)
        assert [(c.name, c.dimensions, c.value) for c in stored] == [("registrations", (("outcome", "success"),), 2)]
        assert runtime.metrics()["counters"]["executions|status=succeeded"] == 1  # this process's own


def test_the_async_twin_reads_the_same_figures() -> None:
    """``connect_async`` offers fleet_metrics with the same arguments."""
    import asyncio

    async def main() -> FleetMetrics:
        async with toolrt.connect_async("memory", sandbox="inprocess") as art:
            return await art.fleet_metrics("5m")

    assert asyncio.run(main()).minutes == 5


def test_tool_activity_splits_a_tools_calls_by_version(rt: Any) -> None:
    """Per-version series of one tool over a window; another agent's private tool is not found for it."""
    reg = rt.register_tool("alice", _tool("echo"))
    rt.execute_tool("alice", reg.tool_id, {"secret": "a"})
    rt.update_tool("alice", reg.tool_id, _tool("echo", ECHO + "# v2\n"))
    rt.execute_tool("alice", reg.tool_id, {"secret": "b"})
    rt.execute_tool("alice", reg.tool_id, {"secret": "c"}, version=1)
    activity = rt.tool_activity(reg.tool_id, "15m")
    assert [sum(p.executions for p in points) for _, points in activity.series] == [2, 1]
    assert activity.summary.tools == (ToolActivity(reg.tool_id, 3, 0),)
    assert set(activity.as_dict()["series"]) == {"1", "2"}
    with pytest.raises(NotFoundError):
        rt.tool_activity(reg.tool_id, agent_id="mallory")


def test_the_owners_view_of_history_spans_every_agent(rt: Any) -> None:
    """``list_executions(None, ...)`` is the runtime owner's: every agent's calls, newest first."""
    a = rt.register_tool("alice", _tool("echo"))
    m = rt.register_tool("mallory", _tool("copy"))
    rt.execute_tool("alice", a.tool_id, {"secret": "a"})
    rt.execute_tool("mallory", m.tool_id, {"secret": "m"})
    assert [e.output for e in rt.list_executions(None).items] == ["m", "a"]
    assert [e.output for e in rt.list_executions(None, tool=a.tool_id).items] == ["a"]
    assert [e.output for e in rt.list_executions("alice").items] == ["a"]


def test_history_can_be_bounded_by_count_as_well_as_age() -> None:
    """``gc_keep_executions`` (or ``keep_executions=``) keeps only the newest finished records."""
    with toolrt.connect("memory", sandbox="inprocess", gc_keep_executions=3) as runtime:
        reg = runtime.register_tool("alice", _tool("echo"))
        for i in range(5):
            runtime.execute_tool("alice", reg.tool_id, {"secret": str(i)})
        assert runtime.collect_garbage(dry_run=True).executions == 2
        assert runtime.collect_garbage(keep_executions=1, dry_run=True).executions == 4
        assert runtime.collect_garbage(dry_run=False).executions == 2
        assert [e.output for e in runtime.list_executions("alice").items] == ["4", "3", "2"]
        assert runtime.fleet_metrics("1h").executions == 3
    with (
        toolrt.connect("memory", sandbox="inprocess") as runtime,
        pytest.raises(ValidationError, match="keep_executions"),
    ):
        runtime.collect_garbage(keep_executions=0)
