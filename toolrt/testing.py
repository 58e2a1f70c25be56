"""toolrt as a test harness for agent code: pytest fixtures, what-happened assertions and tool stubs.

Installed as a pytest plugin (entry point ``pytest11``), so a project that depends on toolrt gets,
in its own tests:

``toolrt_runtime``
    A fresh in-memory runtime for the test (the real sandbox), closed afterwards.
``toolrt_inprocess``
    The same with ``sandbox="inprocess"``: tools run in the test process, fast and deterministic,
    reported as ``isolation: none``, for trusted code only.
``toolrt_harness``
    A :class:`ToolHarness` over a fresh in-process runtime: assert what was registered and
    executed, and stub a tool's result for the test.

This module imports pytest only when pytest loads it: nothing at run time depends on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest

from toolrt.application import ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.domain import ExecutionFailure, ExecutionMetrics, ExecutionStatus, IsolationLevel, Language, Tool
from toolrt.ports import CancelSignal, Sandbox, SandboxRequest, SandboxResult
from toolrt.settings import Settings

__all__ = ["RecordedCall", "ToolHarness", "toolrt_harness", "toolrt_inprocess", "toolrt_runtime"]


@attrs.frozen
class RecordedCall:
    """One call that reached the sandbox (or a stub): who asked, with which params, and what came back."""

    agent_id: str
    code: str
    params: dict[str, Any]
    result: SandboxResult
    stubbed: bool


class _RecordingSandbox:
    """Wraps the runtime's sandbox: records every call and answers stubbed code without running it."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.isolation = inner.isolation
        self.calls: list[RecordedCall] = []
        self.stubs: dict[str, SandboxResult] = {}
        self._lock = threading.Lock()

    def supports(self, language: Language) -> bool:
        return self.inner.supports(language)

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        stub = self.stubs.get(request.code)
        result = stub if stub is not None else self.inner.run(request, cancel)
        with self._lock:
            self.calls.append(
                RecordedCall(request.tenant, request.code, dict(request.params), result, stub is not None)
            )
        return result

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class ToolHarness:
    """A runtime for one test plus what its tools did: registrations, executions and stubs."""

    def __init__(self, runtime: ToolRuntime, sandbox: _RecordingSandbox) -> None:
        self.rt = runtime
        self._sandbox = sandbox

    # -- what happened ---------------------------------------------------------------------------
    def registered(self, agent_id: str | None = None) -> list[Tool]:
        """Active tools, all or those owned by ``agent_id``."""
        return list(self.rt.list_tools(owner=agent_id))

    def calls(self, tool: str | None = None, *, agent_id: str | None = None) -> list[RecordedCall]:
        """Calls that reached the sandbox (stubbed ones included), narrowed to a tool id or name and an agent."""
        codes = None if tool is None else self._codes(tool)
        return [
            c
            for c in self._sandbox.calls
            if (codes is None or c.code in codes) and (agent_id is None or c.agent_id == agent_id)
        ]

    def assert_registered(self, name: str, *, agent_id: str | None = None) -> Tool:
        """The active tool called ``name`` (of ``agent_id``), or an AssertionError listing what exists."""
        found = [t for t in self.registered(agent_id) if t.name == name]
        if not found:
            names = sorted(t.name for t in self.registered(agent_id))
            raise AssertionError(f"no tool named {name!r} was registered{_by(agent_id)}; registered: {names}")
        return found[0]

    def assert_executed(
        self,
        tool: str,
        *,
        agent_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        times: int | None = None,
    ) -> list[RecordedCall]:
        """The calls of ``tool`` (id or name), checked for count and, if given, that one had ``params``."""
        calls = self.calls(tool, agent_id=agent_id)
        if times is not None and len(calls) != times:
            raise AssertionError(f"{tool!r} ran {len(calls)} times{_by(agent_id)}, expected {times}")
        if times is None and not calls:
            raise AssertionError(f"{tool!r} never ran{_by(agent_id)}")
        if params is not None and not any(c.params == dict(params) for c in calls):
            raise AssertionError(f"{tool!r} never ran with {dict(params)!r}; it ran with {[c.params for c in calls]!r}")
        return calls

    # -- stubs -------------------------------------------------------------------------------------
    def stub(self, tool: str, output: Any = None, *, error: str | None = None, agent_id: str | None = None) -> None:
        """Make ``tool`` (id or name) return ``output`` (or fail with ``error``) without running, for this test."""
        if error is None:
            result = SandboxResult(
                status=ExecutionStatus.SUCCEEDED, output=output, metrics=ExecutionMetrics(isolation=IsolationLevel.NONE)
            )
        else:
            result = SandboxResult(
                status=ExecutionStatus.FAILED,
                error=ExecutionFailure("Stubbed", error),
                metrics=ExecutionMetrics(isolation=IsolationLevel.NONE),
            )
        for code in self._codes(tool, agent_id):
            self._sandbox.stubs[code] = result

    def _codes(self, tool: str, agent_id: str | None = None) -> set[str]:
        # Code is content-addressed and may be shared: a tool is known to the sandbox by its code.
        matches = [
            t
            for t in self.rt.list_tools(status=None)
            if tool in (t.tool_id, t.name) and (agent_id is None or t.owner == agent_id)
        ]
        if not matches:
            raise AssertionError(f"no tool {tool!r}{_by(agent_id)}")
        return {v.definition.code for t in matches for v in t.versions}


def _by(agent_id: str | None) -> str:
    return "" if agent_id is None else f" by {agent_id!r}"


def harness(**settings: Any) -> ToolHarness:
    """A :class:`ToolHarness` over a fresh memory runtime (``settings`` as for ``toolrt.connect``)."""
    container = build_container(Settings.load({"profile": "memory", **settings}, {}))
    sandbox = _RecordingSandbox(container.adapters.sandbox())
    container.adapters.sandbox.override(sandbox)
    runtime: ToolRuntime = container.runtime()
    return ToolHarness(runtime, sandbox)


@pytest.fixture
def toolrt_runtime() -> Iterator[ToolRuntime]:
    """A fresh in-memory runtime with the real sandbox, closed after the test."""
    h = harness()
    try:
        yield h.rt
    finally:
        h.rt.close()


@pytest.fixture
def toolrt_inprocess() -> Iterator[ToolRuntime]:
    """A fresh in-memory runtime whose Python tools run in the test process (isolation 'none')."""
    h = harness(sandbox="inprocess")
    try:
        yield h.rt
    finally:
        h.rt.close()


@pytest.fixture
def toolrt_harness() -> Iterator[ToolHarness]:
    """A :class:`ToolHarness` over a fresh in-process memory runtime, closed after the test."""
    h = harness(sandbox="inprocess")
    try:
        yield h
    finally:
        h.rt.close()
