"""Releasing versions: traffic splits, sticky routing, the guard, promotion and per-version metrics,
on the memory store and on a real SQLite file (metrics read back after the store is reopened)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import EchoSandbox, memory_runtime
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.application import ToolRuntime
from toolrt.application.traffic import version_metrics
from toolrt.domain import (
    ExecutionFailure,
    ExecutionMetrics,
    ExecutionStatus,
    NotFoundError,
    TrafficChanged,
    TrafficSplit,
    ValidationError,
)
from toolrt.ports import ExecutionOutcome, SandboxRequest, SandboxResult

BASE = {"name": "price", "description": "Price of an item.", "language": "python"}
V1 = "def handler(item: str) -> str:\n    return 'v1'\n"
V2 = "def handler(item: str) -> str:\n    return 'v2'  # broken\n"


class BrokenV2Sandbox(EchoSandbox):
    """Succeeds, except for code marked broken, which fails like a tool raising."""

    def run(self, request: SandboxRequest, cancel: Any = None) -> SandboxResult:
        self.requests.append(request)
        if "broken" in request.code:
            return SandboxResult(
                ExecutionStatus.FAILED,
                error=ExecutionFailure("KeyError", "item"),
                metrics=ExecutionMetrics(wall_ms=3.0),
            )
        return SandboxResult(ExecutionStatus.SUCCEEDED, output="ok", metrics=ExecutionMetrics(wall_ms=2.0))


@pytest.fixture(params=["memory", "sqlite"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolRuntime]:
    overrides: dict[str, Any] = {"sandbox": BrokenV2Sandbox()}
    if request.param == "sqlite":
        overrides["repository"] = SqliteToolRepository(tmp_path / "tools.sqlite")
    runtime = memory_runtime(**overrides)
    yield runtime
    runtime.close()


def _two_versions(rt: ToolRuntime, visibility: str = "public") -> str:
    tool_id = rt.register_tool("owner", {**BASE, "code": V1}, visibility).tool_id
    rt.update_tool("owner", tool_id, {**BASE, "code": V2})
    rt.promote("owner", tool_id, 1)
    return tool_id


def test_a_split_routes_by_weight_sticky_keys_stick_and_pins_bypass(rt: ToolRuntime) -> None:
    tool_id = _two_versions(rt)
    rt.set_traffic("owner", tool_id, {1: 50, 2: 50})
    by_key = {
        key: rt.execute_tool("caller", tool_id, {"item": "x"}, sticky_key=key).version for key in map(str, range(60))
    }
    assert set(by_key.values()) == {1, 2}  # both versions serve some keys
    for key, version in list(by_key.items())[:10]:
        assert rt.execute_tool("caller", tool_id, {"item": "x"}, sticky_key=key).version == version
    assert {rt.execute_tool("caller", tool_id, {"item": "x"}, version=1).version for _ in range(5)} == {1}
    metrics = rt.tool_metrics(tool_id, "owner")
    assert metrics.traffic == ((1, 50), (2, 50))
    ran = Counter(e.version for e in rt.list_executions("owner", tool=tool_id, limit=1000).items)
    assert {v.version: v.executions for v in metrics.versions} == dict(ran)
    assert sum(v.executions for v in metrics.versions) == 75


def test_the_guard_ends_a_split_whose_candidate_fails(rt: ToolRuntime) -> None:
    tool_id = _two_versions(rt)
    heard: list[TrafficChanged] = []
    rt.subscribe(TrafficChanged, heard.append)  # type: ignore[arg-type]  # subscribe takes DomainEvent handlers
    rt.set_traffic("owner", tool_id, {1: 50, 2: 50}, guard={"margin": 0.2, "min_calls": 5})
    versions = [rt.execute_tool("caller", tool_id, {"item": "x"}, sticky_key=str(i)).version for i in range(60)]
    assert versions.count(2) == 5  # the fifth failure of version 2 tripped the guard
    tool = rt.get_tool(tool_id)
    assert tool.traffic is None and tool.traffic_note is not None and "version 2 failed 5 of 5" in tool.traffic_note
    assert set(versions[versions.index(2) + 1 :][-20:]) == {1}
    assert heard[-1].weights == () and heard[-1].reason == tool.traffic_note
    v2 = rt.tool_metrics(tool_id).version(2)
    assert v2 is not None and v2.failed == 5 and v2.errors == (("KeyError", 5),) and v2.error_rate == 1.0


def test_a_healthy_candidate_costs_the_guard_no_reads(rt: ToolRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard reads the split's outcomes only after a failed candidate call: a candidate that
    keeps succeeding never makes a call pay for reading every call since the split began."""
    tool_id = _two_versions(rt)
    rt.update_tool("owner", tool_id, {**BASE, "code": V1 + "# v3, healthy\n"})
    rt.promote("owner", tool_id, 1)
    rt.set_traffic("owner", tool_id, {1: 50, 3: 50}, guard={"margin": 0.1, "min_calls": 2})
    repository = rt.ports.repository
    reads: list[str] = []
    real = repository.execution_outcomes

    def counted(tool: str, since: Any = None) -> Any:
        reads.append(tool)
        return real(tool, since)

    monkeypatch.setattr(repository, "execution_outcomes", counted)
    versions = [rt.execute_tool("caller", tool_id, {"item": "x"}, sticky_key=str(i)).version for i in range(40)]
    assert versions.count(3) > 5 and reads == []
    assert rt.get_tool(tool_id).traffic is not None  # the split stands


def test_promotion_and_new_versions_end_a_split(rt: ToolRuntime) -> None:
    tool_id = _two_versions(rt)
    rt.set_traffic("owner", tool_id, {1: 90, 2: 10})
    promoted = rt.promote("owner", tool_id, 2)
    assert promoted.current_version == 2 and promoted.traffic is None
    rt.set_traffic("owner", tool_id, {1: 10, 2: 90})
    updated = rt.update_tool("owner", tool_id, {**BASE, "code": V1 + "# v3\n"}).tool
    assert updated.current_version == 3 and updated.traffic is None
    assert updated.traffic_note == "ended when version 3 was put in force"
    rt.set_traffic("owner", tool_id, {3: 100})
    assert rt.set_traffic("owner", tool_id, None).traffic is None


@pytest.mark.parametrize(
    ("weights", "error"),
    [
        ({1: 50, 2: 40}, ValidationError),  # not 100
        ({1: 50, 9: 50}, NotFoundError),  # no version 9
        ({2: 100}, ValidationError),  # leaves out the version in force
        ({1: 120, 2: -20}, ValidationError),
        ({1: "half", 2: 50}, ValidationError),
        ({1: 50.5, 2: 49.5}, ValidationError),
    ],
)
def test_bad_splits_are_typed_errors_and_change_nothing(rt: ToolRuntime, weights: Any, error: type) -> None:
    tool_id = _two_versions(rt)
    before = rt.get_tool(tool_id)
    with pytest.raises(error):
        rt.set_traffic("owner", tool_id, weights)
    with pytest.raises(ValidationError):
        rt.set_traffic("owner", tool_id, {1: 50, 2: 50}, guard={"margin": 2})
    assert rt.get_tool(tool_id) == before


def test_another_agent_changes_no_split_and_reads_no_private_metrics(rt: ToolRuntime) -> None:
    tool_id = _two_versions(rt, "private")
    rt.execute_tool("owner", tool_id, {"item": "secret"})
    before = rt.get_tool(tool_id)
    with pytest.raises(NotFoundError):  # a private tool: as for an unknown id
        rt.set_traffic("mallory", tool_id, {1: 50, 2: 50})
    with pytest.raises(NotFoundError):
        rt.promote("mallory", tool_id, 2)
    with pytest.raises(NotFoundError):
        rt.tool_metrics(tool_id, "mallory")
    assert rt.get_tool(tool_id) == before


def test_metrics_survive_reopening_the_store(tmp_path: Path) -> None:
    db = tmp_path / "tools.sqlite"
    first = memory_runtime(sandbox=BrokenV2Sandbox(), repository=SqliteToolRepository(db))
    tool_id = _two_versions(first)
    for version in (1, 1, 2):
        first.execute_tool("caller", tool_id, {"item": "x"}, version=version)
    expected = first.tool_metrics(tool_id)
    first.close()
    again = memory_runtime(repository=SqliteToolRepository(db))
    assert again.tool_metrics(tool_id) == expected
    assert [(v.version, v.succeeded, v.failed, v.p50_ms) for v in expected.versions] == [(1, 2, 0, 2.0), (2, 0, 1, 3.0)]
    again.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=4).filter(lambda w: sum(w) <= 100), st.text(max_size=8))
def test_routing_only_picks_versions_with_weight(weights: list[int], key: str) -> None:
    pairs = {i + 1: w for i, w in enumerate(weights)}
    pairs[len(weights) + 1] = 100 - sum(weights)
    split = TrafficSplit(pairs, since=datetime(2026, 1, 1, tzinfo=UTC))
    for sticky in (key, None):
        version = split.route("tool-1", sticky)
        assert pairs[version] > 0
    assert split.route("tool-1", key) == split.route("tool-1", key)


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=50))
def test_percentiles_are_values_of_the_sample_in_order(times: list[float]) -> None:
    outcomes = [ExecutionOutcome(1, ExecutionStatus.SUCCEEDED, t) for t in times]
    (metrics,) = version_metrics(outcomes)
    assert metrics.p50_ms in times and metrics.p95_ms in times
    assert min(times) <= metrics.p50_ms <= metrics.p95_ms <= max(times)  # type: ignore[operator]
