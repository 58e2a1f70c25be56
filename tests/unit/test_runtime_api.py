"""The facade a user embeds: tools by name, per-call limits, and an async twin that matches the sync one."""

from __future__ import annotations

import inspect
import pathlib

import anyio
import pytest

from tests.fakes import EchoSandbox
from toolrt.application import AsyncToolRuntime, ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.domain import LimitExceededError, NotFoundError, ValidationError, Visibility
from toolrt.settings import Settings


def _runtime() -> tuple[ToolRuntime, EchoSandbox]:
    container = build_container(Settings(profile="memory", max_timeout_s=60, max_memory_mb=512))
    sandbox = EchoSandbox()
    container.adapters.sandbox.override(sandbox)
    return container.runtime(), sandbox


def test_a_tool_can_be_executed_by_name_own_tool_first() -> None:
    """A name resolves to the agent's own tool before another agent's public tool of the same name."""
    rt, sandbox = _runtime()
    theirs = rt.register_tool("bob", b.definition(name="add"), Visibility.PUBLIC)
    assert rt.execute_tool("alice", "add", {"a": 1, "b": 2}).tool_id == theirs.tool_id
    mine = rt.register_tool("alice", b.definition(name="add"))
    assert rt.execute_tool("alice", "add", {"a": 1, "b": 2}).tool_id == mine.tool_id


def test_a_name_shared_by_several_public_tools_is_ambiguous_and_a_private_name_is_unknown() -> None:
    """Two public tools of one name need an id; another agent's private tool cannot be named at all."""
    rt, _ = _runtime()
    one = rt.register_tool("bob", b.definition(name="conv"), Visibility.PUBLIC)
    two = rt.register_tool("carol", b.definition(name="conv"), Visibility.PUBLIC)
    with pytest.raises(ValidationError) as caught:
        rt.execute_tool("alice", "conv", {"a": 1, "b": 2})
    assert one.tool_id in str(caught.value) and two.tool_id in str(caught.value)
    rt.register_tool("mallory-victim", b.definition(name="secret"))
    with pytest.raises(NotFoundError):
        rt.execute_tool("mallory", "secret", {"a": 1, "b": 2})


def test_per_call_limits_replace_the_tools_own_within_the_maxima() -> None:
    """timeout_s and memory_mb reach the sandbox for this call; above the maxima nothing runs."""
    rt, sandbox = _runtime()
    reg = rt.register_tool("alice", b.definition(name="add"))
    rt.execute_tool("alice", "add", {"a": 1, "b": 2}, timeout_s=2.5, memory_mb=64)
    assert (sandbox.requests[-1].timeout_s, sandbox.requests[-1].memory_mb) == (2.5, 64)
    calls = len(sandbox.requests)
    with pytest.raises(LimitExceededError, match="timeout_s"):
        rt.execute_tool("alice", reg.tool_id, {"a": 1, "b": 2}, timeout_s=61)
    with pytest.raises(LimitExceededError, match="memory_mb"):
        rt.execute_tool("alice", reg.tool_id, {"a": 1, "b": 2}, memory_mb=4096)
    with pytest.raises(ValidationError):
        rt.execute_tool("alice", reg.tool_id, {"a": 1, "b": 2}, timeout_s=0)
    assert len(sandbox.requests) == calls


def test_the_async_runtime_has_every_public_method_with_the_same_signature() -> None:
    """Every public method of ToolRuntime exists on AsyncToolRuntime with the same parameters."""

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(m) for n, m in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")
        }

    sync, asynchronous = public(ToolRuntime), public(AsyncToolRuntime)
    assert sorted(sync) == sorted(asynchronous)
    for name, signature in sync.items():
        assert list(signature.parameters.values()) == list(asynchronous[name].parameters.values()), name


# The async twin's methods that are not coroutines: they never block, or run at import time.
_AT_ONCE = {"tool", "subscribe", "list_templates", "add_template", "metrics"}
# The only ones written out rather than derived from the sync method.
_WRITTEN_OUT = {"wait_execution", "close"}


def test_the_async_runtime_is_derived_from_the_sync_one() -> None:
    """Every async method but two is the sync method's derived twin (same name, signature and
    docstring), a coroutine unless it never blocks: a method added to ToolRuntime needs one line."""
    for name, method in inspect.getmembers(AsyncToolRuntime, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert inspect.iscoroutinefunction(method) is (name not in _AT_ONCE), name
        if name in _WRITTEN_OUT:
            continue
        assert getattr(method, "__wrapped__", None) is getattr(ToolRuntime, name), name
        assert method.__doc__ == getattr(ToolRuntime, name).__doc__, name


def test_the_async_runtime_executes_by_name() -> None:
    """The async twin runs a tool by name with per-call limits, like the sync one."""
    rt, sandbox = _runtime()
    rt.register_tool("alice", b.definition(name="add"))

    async def scenario() -> None:
        async with AsyncToolRuntime(rt) as art:
            execution = await art.execute_tool("alice", "add", {"a": 1, "b": 2}, timeout_s=3)
            assert execution.status.value == "succeeded"
            assert (await art.health())["profile"] == "memory"

    anyio.run(scenario)
    assert sandbox.requests[-1].timeout_s == 3


def test_the_async_runtime_runs_at_most_max_concurrent_executions_at_once() -> None:
    """200 concurrent executions through connect_async: all finish, never more than the limit at once."""
    import asyncio
    import threading
    import time as _time

    import toolrt

    rt = toolrt.connect_async("memory", sandbox="inprocess", max_concurrent_executions=3)
    code = "import time\ndef handler(i: int) -> int:\n    time.sleep(0.002)\n    return i\n"
    reg = rt.sync.register_tool(
        "agent-a", {"name": "slow", "description": "Sleeps.", "language": "python", "code": code}
    )
    running = 0
    peak = 0
    lock = threading.Lock()
    original = rt.sync._execute.execute

    def counted(request):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            _time.sleep(0.001)
            return original(request)
        finally:
            with lock:
                running -= 1

    rt.sync._execute.execute = counted  # type: ignore[method-assign]

    async def main() -> list[int]:
        results = await asyncio.gather(*(rt.execute_tool("agent-a", reg.tool_id, {"i": i}) for i in range(200)))
        await rt.close()
        return [r.output for r in results]

    assert asyncio.run(main()) == list(range(200))
    assert 1 <= peak <= 3


@pytest.mark.parametrize("profile", ["memory", "local"])
def test_an_update_with_a_definition_and_a_visibility_applies_both_as_one_change(
    profile: str, tmp_path: pathlib.Path
) -> None:
    """New code and a new visibility in one call: one new version, the visibility changed, and the
    record one version on (it used to fail with ConflictError every time)."""
    settings = Settings(profile=profile, data_dir=tmp_path / "data")
    container = build_container(settings)
    container.adapters.sandbox.override(EchoSandbox())
    rt = container.runtime()
    try:
        reg = rt.register_tool("alice", b.definition(name="add"), Visibility.PUBLIC)
        before = rt.get_tool(reg.tool_id)
        update = rt.update_tool(
            "alice", reg.tool_id, b.definition(name="add", code="def handler(a, b):\n    return b + a\n"), "private"
        )
        after = rt.get_tool(reg.tool_id)
        assert update.new_version and update.new_code and after.current_version == 2
        assert after.visibility is Visibility.PRIVATE
        assert after.record_version == before.record_version + 1
        assert [t.tool_id for t in rt.list_tools("bob")] == []
    finally:
        rt.close()
