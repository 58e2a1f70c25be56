"""Each call runs in a child the zygote forked ahead of it, and that child serves that one call only.

Checked from outside, on the host: before a call the zygote has exactly one child (the spare); the
call reports its own pid, which is that spare's pid in the sandbox's namespace; when the call has
returned the spare is gone from the host, and the next call (another agent's) runs in a new spare
forked after the first call ended.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.security.conftest import run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.local.workers import PythonZygote
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest

OWN_PID = "import os\ndef handler():\n    return os.getpid()\n"


@pytest.fixture
def one_zygote() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=1)
    try:
        yield sb
    finally:
        sb.close()


def _zygote(sb: SubprocessSandbox) -> PythonZygote:
    assert run(sb, OWN_PID).status is ExecutionStatus.SUCCEEDED  # the pool has its zygote now
    pool = sb._python_pools[("", False, None, "python")]
    deadline = time.monotonic() + 30
    while not pool._idle and time.monotonic() < deadline:
        time.sleep(0.01)
    (zygote,) = pool._idle
    assert isinstance(zygote, PythonZygote)
    return zygote


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _spare(zygote: PythonZygote) -> tuple[int, int]:
    """The zygote's one waiting child: (host pid, pid inside the sandbox's namespace)."""
    (zygote_pid,) = [p for p in zygote.tree() if p in _children(zygote.proc.pid)]
    deadline = time.monotonic() + 30
    while not (children := _children(zygote_pid)) and time.monotonic() < deadline:
        time.sleep(0.005)  # forked right after the previous call's result went out
    assert len(children) == 1, children
    with open(f"/proc/{children[0]}/status") as f:
        nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
    return children[0], int(nspid[-1])


@pytest.mark.bwrap
def test_a_pre_forked_child_serves_one_call_and_is_gone_before_the_next_agents_call(
    one_zygote: SubprocessSandbox,
) -> None:
    """Agent A's call runs in the spare seen before it; that process is gone when A has its result;
    agent B's call runs in another spare, forked after A's call ended, which is gone after B's."""
    zygote = _zygote(one_zygote)
    served: list[int] = []
    for agent in ("agent-a", "agent-b"):
        host_pid, inside = _spare(zygote)
        request = SandboxRequest(
            f"exec-{agent}", Language.PYTHON, OWN_PID, "handler", {}, 10.0, 128, 65536, tenant=agent
        )
        result = one_zygote.run(request)
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output == inside  # the call ran in that very child
        assert not os.path.exists(f"/proc/{host_pid}")  # killed and reaped before the result came back
        served.append(host_pid)
    assert served[0] != served[1]


@pytest.mark.bwrap
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"])
def test_a_call_cannot_end_the_zygote_that_serves_the_next_agent(
    one_zygote: SubprocessSandbox, signal_name: str
) -> None:
    """Mallory's tool signals pid 1 of its namespace, the zygote, which would end on a signal it
    handles (Python handles SIGINT): the zygote lives on, the call runs to its end, and the next
    agent's call is served by that same zygote."""
    zygote = _zygote(one_zygote)
    hostile = (
        "import os, signal, time\n"
        "def handler():\n"
        f"    os.kill(1, signal.{signal_name})\n"
        "    time.sleep(0.2)\n"
        "    return 'still here'\n"
    )
    result = one_zygote.run(
        SandboxRequest("exec-m", Language.PYTHON, hostile, "handler", {}, 10.0, 128, 65536, tenant="mallory")
    )
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == "still here"
    victim = one_zygote.run(
        SandboxRequest("exec-v", Language.PYTHON, OWN_PID, "handler", {}, 10.0, 128, 65536, tenant="victim")
    )
    assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
    assert zygote.proc.poll() is None and not zygote.dead
    assert _zygote(one_zygote) is zygote  # the same zygote, not a cold start
