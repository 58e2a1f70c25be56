"""toolrt.testing, the pytest plugin for people testing their agents: fixtures, assertions, stubs."""

from __future__ import annotations

import importlib.metadata

import pytest

import toolrt
from toolrt.application import ToolRuntime
from toolrt.testing import ToolHarness

ADD = {
    "name": "add",
    "description": "Add two numbers.",
    "language": "python",
    "code": "def handler(a: int, b: int) -> int:\n    print('adding')\n    return a + b\n",
}


def test_the_plugin_is_registered_with_pytest() -> None:
    """Installing toolrt registers toolrt.testing under pytest's plugin entry point."""
    plugins = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert plugins.get("toolrt") == "toolrt.testing"


def test_inprocess_runtime_runs_tools_in_the_test_process(toolrt_inprocess: ToolRuntime) -> None:
    """sandbox='inprocess' runs the code here, reports isolation 'none', and keeps stdout."""
    reg = toolrt_inprocess.register_tool("agent", ADD)
    result = toolrt_inprocess.execute_tool("agent", reg.tool_id, {"a": 2, "b": 3})
    assert result.output == 5 and result.stdout == "adding\n"
    assert result.metrics.isolation is toolrt.IsolationLevel.NONE


def test_strict_isolation_refuses_the_inprocess_sandbox() -> None:
    """A runtime configured with isolation='strict' will not run code in-process."""
    with pytest.raises(toolrt.ExecutionError, match="strict"):
        toolrt.connect("memory", sandbox="inprocess", isolation="strict")


def test_the_harness_records_registrations_and_executions(toolrt_harness: ToolHarness) -> None:
    """assert_registered and assert_executed check what an agent did, by tool name and params."""
    toolrt_harness.rt.register_tool("agent", ADD)
    toolrt_harness.rt.execute_tool("agent", "add", {"a": 1, "b": 1})
    assert toolrt_harness.assert_registered("add", agent_id="agent").owner == "agent"
    calls = toolrt_harness.assert_executed("add", params={"a": 1, "b": 1}, times=1)
    assert calls[0].result.output == 2 and calls[0].agent_id == "agent"
    with pytest.raises(AssertionError, match="never ran with"):
        toolrt_harness.assert_executed("add", params={"a": 9, "b": 9})
    with pytest.raises(AssertionError, match="no tool named 'sub'"):
        toolrt_harness.assert_registered("sub")


def test_a_stubbed_tool_returns_the_stub_without_running(toolrt_harness: ToolHarness) -> None:
    """stub() makes a tool answer a fixed output (or error) for the test; the call is still recorded."""
    toolrt_harness.rt.register_tool("agent", ADD)
    toolrt_harness.stub("add", 42)
    result = toolrt_harness.rt.execute_tool("agent", "add", {"a": 1, "b": 1})
    assert result.output == 42 and result.stdout == ""
    toolrt_harness.stub("add", error="service down")
    failed = toolrt_harness.rt.execute_tool("agent", "add", {"a": 1, "b": 1})
    assert failed.status.value == "failed" and failed.error is not None and failed.error.message == "service down"
    assert all(c.stubbed for c in toolrt_harness.calls("add"))


def test_the_runtime_fixture_uses_the_real_sandbox(toolrt_runtime: ToolRuntime) -> None:
    """toolrt_runtime is a fresh memory runtime with real isolation."""
    reg = toolrt_runtime.register_tool("agent", ADD)
    result = toolrt_runtime.execute_tool("agent", reg.tool_id, {"a": 2, "b": 2})
    assert result.output == 4 and result.metrics.isolation is not toolrt.IsolationLevel.NONE
