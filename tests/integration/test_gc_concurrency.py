"""Garbage collection never races a registration: the artifact a new tool uses stays loadable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt
from toolrt.application import ToolRuntime
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, ToolRuntimeError, ValidationReport, normalize_code

CODE = "def handler(a, b):\n    return a * b\n"
ITERATIONS = 25
REGISTRARS = 4


@pytest.fixture(params=["memory", "local"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolRuntime]:
    settings: dict[str, Any] = {"data_dir": tmp_path} if request.param == "local" else {}
    with toolrt.connect(request.param, sandbox="inprocess", **settings) as runtime:
        yield runtime


def _round(rt: ToolRuntime, round_: int, failures: list[str]) -> tuple[list[tuple[str, str]], int]:
    """One race: a collector looping with no grace period against registrars of the same code."""
    stop = threading.Event()
    start = threading.Barrier(REGISTRARS + 1)
    tool_ids: list[tuple[str, str]] = []
    collected = 0

    def collect() -> None:
        nonlocal collected
        start.wait()
        while not stop.is_set():
            collected += len(rt.collect_garbage(grace_s=0, dry_run=False).artifacts)

    def register(n: int) -> None:
        agent = f"agent-{n}"
        start.wait()
        try:
            reg = rt.register_tool(agent, b.definition(f"mul-{round_}", code=CODE), on_duplicate="create")
        except ToolRuntimeError as exc:
            failures.append(f"round {round_}: registration failed: {exc}")
            return
        if rt.ports.artifacts.get(reg.code_hash) is None:
            failures.append(f"round {round_}: {agent}'s new tool has no artifact")
        tool_ids.append((agent, reg.tool_id))

    collector = threading.Thread(target=collect)
    registrars = [threading.Thread(target=register, args=(n,)) for n in range(REGISTRARS)]
    collector.start()
    for thread in registrars:
        thread.start()
    for thread in registrars:
        thread.join(30)
    stop.set()
    collector.join(30)
    return tool_ids, collected


def test_collection_racing_registrations_of_the_same_code_never_loses_the_artifact(rt: ToolRuntime) -> None:
    """Threads register the same code (left unreferenced in the store) while collections with no grace
    period run in a loop; every registration finds the artifact present when it returns, and after
    each round it is loadable and the tools run."""
    definition = b.definition("mul", code=CODE)
    orphan = Artifact(
        definition.code_hash, definition.language, normalize_code(CODE), "handler", ValidationReport(), b.T0
    )
    failures: list[str] = []
    collected = 0
    for round_ in range(ITERATIONS):
        rt.ports.artifacts.put(orphan)  # unreferenced and old: collectable until a tool takes it up
        tool_ids, found = _round(rt, round_, failures)
        collected += found
        assert not failures, failures
        assert rt.ports.artifacts.get(definition.code_hash) is not None
        for agent, tool_id in tool_ids:
            assert rt.execute_tool(agent, tool_id, {"a": 6, "b": 7}).output == 42
        # Withdraw them all: the code is unreferenced again (deregistration may delete it; put back above).
        for agent, tool_id in tool_ids:
            rt.deregister_tool(agent, tool_id, purge=True)
    # The orphan is collectable when nothing races for it (so the collector in the rounds above was
    # a real threat); how often it won a round depends on scheduling, so that is not asserted.
    rt.ports.artifacts.put(orphan)
    assert definition.code_hash in rt.collect_garbage(grace_s=0, dry_run=False).artifacts
