"""What the host keeps for all agents (templates, kept cgroups, its threads) never carries one agent's calls into another's.

Each test has two agents on one local runtime, one of them hostile (the validator's security rules
are off: the OS sandbox is the boundary), and asserts from outside, on the results the victim gets:

- starting more zygote templates than the sandbox keeps (one per environment and flavour) retires
  the least recently used one; a template is pid 1 of the namespaces its zygotes live in, so ending
  it while a zygote served a call ended another agent's call;
- a worker's cgroup, once empty, is kept for the next worker, of any agent: its memory peak and OOM
  count must start again from zero, or one agent's calls report another's memory and OOM kills;
- the host hands a zygote its request before it waits for the result with the call's deadline: a
  zygote that stopped reading (a learned import that never returns) must not hold the call past it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import local_runtime, private_environments
from tests.security.test_hostile_wheel import write_wheel
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder pip on the host finds this module's wheels in (it alone, as an index would be)."""
    folder = tmp_path_factory.mktemp("host-resources-wheels")
    for n in range(5):
        write_wheel(folder, f"toolrt-flavour{n}", {f"flavour{n}/__init__.py": f"N = {n}\n"}, f"flavour{n}\n")
    # A package with a submodule whose import never returns (a server, a prompt, a lock: here a sleep).
    write_wheel(
        folder,
        "toolrt-stuck",
        {"stuck/__init__.py": "READY = True\n", "stuck/forever.py": "import time\ntime.sleep(3600)\n"},
        "stuck\n",
    )
    patch = pytest.MonkeyPatch()
    patch.setenv("PIP_FIND_LINKS", str(folder))
    patch.setenv("PIP_NO_INDEX", "1")
    try:
        yield folder
    finally:
        patch.undo()


@pytest.fixture
def rt(tmp_path: Path, wheels: Path) -> Iterator[ToolRuntime]:
    with private_environments() as root:
        runtime = local_runtime(tmp_path / "store", root, security_checks=False)
        try:
            yield runtime
        finally:
            runtime.close()


def register(rt: ToolRuntime, agent: str, name: str, code: str, **fields: Any) -> str:
    visibility = fields.pop("visibility", "private")
    definition = {
        "name": name,
        "description": f"{name}.",
        "language": "python",
        "code": code,
        "input_schema": {"type": "object", "properties": {}},
        **fields,
    }
    return rt.register_tool(agent, definition, visibility).tool_id


def in_background(rt: ToolRuntime, agent: str, tool_id: str, params: dict[str, Any], **limits: Any) -> Any:
    """Start a call on a thread of its own: (the thread, a dict that receives the result)."""
    out: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: out.setdefault("result", rt.execute_tool(agent, tool_id, params, **limits)), daemon=True
    )
    thread.start()
    return thread, out


# -- templates ------------------------------------------------------------------------------------


def test_starting_more_templates_than_are_kept_never_ends_another_agents_call(rt: ToolRuntime) -> None:
    """Victor's call sleeps in a zygote of the plain template; meanwhile Mallory calls tools of five
    environments in both flavours (ten more templates than the plain one, past the eight kept), so
    the plain template is the least recently used and is retired. Victor's call still completes,
    and so does his next one."""
    slow = register(rt, "victor", "slow", "import time\n\ndef handler():\n    time.sleep(6)\n    return 'done'\n")
    quick = register(rt, "victor", "quick", "def handler():\n    return 'quick'\n")
    flavours = []
    for n in range(5):
        for flavour, code in (
            ("plain", f"import flavour{n}\n\ndef handler():\n    return flavour{n}.N\n"),
            ("async", f"import flavour{n}\n\nasync def handler():\n    return flavour{n}.N\n"),
        ):
            flavours.append(register(rt, "mallory", f"f{n}_{flavour}", code, requirements=[f"toolrt-flavour{n}"]))
    assert rt.execute_tool("victor", quick, {}).status is ExecutionStatus.SUCCEEDED
    thread, out = in_background(rt, "victor", slow, {}, timeout_s=30)
    time.sleep(0.5)  # (a start in the same instant would retire an idle template: still a pass)
    for tool_id in flavours:
        churn = rt.execute_tool("mallory", tool_id, {})
        assert churn.status is ExecutionStatus.SUCCEEDED, churn.error
    thread.join(60)
    victim = out["result"]
    assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
    assert victim.output == "done"
    assert rt.execute_tool("victor", quick, {}).output == "quick"


# -- kept cgroups ---------------------------------------------------------------------------------

NODE_HOG = """
function handler() {
  const held = [];
  for (let i = 0; i < 24; i++) held.push(Buffer.alloc(8 << 20, 1));
  return held.length;
}
"""
NODE_BOMB = """
function handler() {
  const held = [];
  for (;;) held.push(Buffer.alloc(16 << 20, 1));
}
"""
NODE_FAILS = """
function handler() {
  throw new Error('an ordinary failure');
}
"""


@pytest.mark.node
def test_a_kept_cgroup_never_carries_another_agents_memory_peak_or_oom_kill(tmp_path: Path) -> None:
    """Mallory's Node calls hold 192 MB, then run out of memory; each worker's cgroup is kept and
    handed to a later worker. Victor's Node tool, which fails with an ordinary error, is reported
    as that failure with a small peak, never as killed for memory with Mallory's peak."""
    from toolrt.adapters.node import find_node

    if find_node() is None:
        pytest.skip("needs Node.js 24")
    import toolrt

    with toolrt.connect(
        "local",
        data_dir=tmp_path,
        isolation="strict",
        security_checks=False,
        sandbox_workers=1,
        sandbox_js_engine="node",
    ) as runtime:

        def node_tool(agent: str, name: str, code: str) -> str:
            return register(runtime, agent, name, code, language="javascript")

        hog, bomb = node_tool("mallory", "hog", NODE_HOG), node_tool("mallory", "bomb", NODE_BOMB)
        fails = node_tool("victor", "fails", NODE_FAILS)
        seen = []
        for _ in range(3):
            assert runtime.execute_tool("mallory", hog, {}, memory_mb=256).status is ExecutionStatus.SUCCEEDED
            assert runtime.execute_tool("mallory", bomb, {}, memory_mb=256).status is ExecutionStatus.KILLED
            for _ in range(3):
                result = runtime.execute_tool("victor", fails, {}, memory_mb=256)
                seen.append((result.status, result.error.type if result.error else None, result.metrics.max_rss_kb))
    for status, error, peak_kb in seen:
        assert (status, error) == (ExecutionStatus.FAILED, "Error"), seen
        assert peak_kb < 96 << 10, seen  # Mallory's workers each held over 192 MB


# -- a zygote that stops reading ------------------------------------------------------------------


def test_a_zygote_stuck_in_a_learned_import_never_holds_a_call_past_its_deadline(rt: ToolRuntime) -> None:
    """Mallory's public tool names ``stuck.forever`` (in a function it never calls): the zygote that
    serves Victor's calls of it imports that while idle, and never returns. Victor's next call, with
    a 2 MB parameter (more than the socket to the zygote buffers), ends as timed out, as a call that
    ran too long does, instead of waiting for the zygote forever; his later calls work."""
    code = (
        "import stuck\n\n\ndef handler(blob: str = '') -> int:\n    return len(blob)\n\n\n"
        "def never_called() -> None:\n    import stuck.forever\n"
    )
    tool_id = register(rt, "mallory", "stuck_tool", code, requirements=["toolrt-stuck"], visibility="public")
    first = rt.execute_tool("victor", tool_id, {}, timeout_s=2)
    assert first.status is ExecutionStatus.SUCCEEDED, first.error
    time.sleep(0.5)  # idle: the zygote imports what the tool named, and sleeps in it
    thread, out = in_background(rt, "victor", tool_id, {"blob": "x" * (2 << 20)}, timeout_s=2)
    thread.join(60)
    assert not thread.is_alive(), "the call was still waiting for its zygote a minute later"
    assert out["result"].status is ExecutionStatus.TIMED_OUT, out["result"].error
    again = rt.execute_tool("victor", tool_id, {"blob": "abc"}, timeout_s=2)
    assert again.status is ExecutionStatus.SUCCEEDED and again.output == 3, again.error
