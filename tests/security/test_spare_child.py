"""Each call runs in a child the zygote forked ahead of it, and that child serves that one call only.

Checked from outside, on the host: before a call the zygote has exactly one child (the spare); the
call reports its own start time, which is that spare's; when the call has returned the spare is gone
from the host, and the next call runs in a new spare forked after the first call ended.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from tests.security.conftest import run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.local.workers import PythonZygote
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest

# The call's own pid (1: the first process of its own pid namespace) and start time (clock ticks
# since boot, the same in every namespace).
OWN_START = (
    "import os\ndef handler():\n"
    "    with open('/proc/self/stat') as f:\n"
    "        return [os.getpid(), int(f.read().rsplit(')', 1)[1].split()[19])]\n"
)


@pytest.fixture
def one_zygote() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=1)
    try:
        yield sb
    finally:
        sb.close()


def _zygote(sb: SubprocessSandbox) -> PythonZygote:
    assert run(sb, OWN_START).status is ExecutionStatus.SUCCEEDED  # the pool has its zygote now
    ((_, zygote),) = sb._zygotes.idle()  # noqa: SLF001 - the outside view of the zygote
    assert isinstance(zygote, PythonZygote)
    return zygote


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _spare(zygote: PythonZygote) -> tuple[int, int]:
    """The zygote's one waiting child: (host pid, start time)."""
    deadline = time.monotonic() + 30
    while not (children := _children(zygote.pid)) and time.monotonic() < deadline:
        time.sleep(0.005)  # forked right after the previous call's result went out
    assert len(children) == 1, children
    with open(f"/proc/{children[0]}/stat") as f:
        return children[0], int(f.read().rsplit(")", 1)[1].split()[19])


@pytest.mark.bwrap
def test_a_pre_forked_child_serves_one_call_and_is_gone_before_the_next_call(one_zygote: SubprocessSandbox) -> None:
    """A call runs in the spare seen before it, as pid 1 of its own namespace; that process is gone
    when the call has its result; the next call runs in another spare, forked after the first call
    ended, which is gone after it."""
    zygote = _zygote(one_zygote)
    served: list[int] = []
    for n in range(2):
        host_pid, started = _spare(zygote)
        result = one_zygote.run(
            SandboxRequest(f"exec-{n}", Language.PYTHON, OWN_START, "handler", {}, 10.0, 128, 65536)
        )
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output == [1, started]  # the call ran in that very child
        assert not os.path.exists(f"/proc/{host_pid}")  # killed and reaped before the result came back
        served.append(host_pid)
    assert served[0] != served[1]


@pytest.mark.bwrap
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL"])
def test_a_call_signalling_pid_1_reaches_only_itself(
    one_zygote: SubprocessSandbox, served: Callable[[], list[int]], signal_name: str
) -> None:
    """Mallory's tool signals pid 1 of its namespace. That is the call itself (the zygote has no pid
    there): a signal its Python handles (SIGINT) interrupts its own call, the rest are ignored (init
    of its namespace); the zygote lives on and serves the next call."""
    zygote = _zygote(one_zygote)
    hostile = (
        "import os, signal, time\n"
        "def handler():\n"
        f"    os.kill(1, signal.{signal_name})\n"
        "    time.sleep(0.2)\n"
        "    return 'still here'\n"
    )
    result = one_zygote.run(SandboxRequest("exec-m", Language.PYTHON, hostile, "handler", {}, 10.0, 128, 65536))
    if signal_name == "SIGINT":
        assert result.status is ExecutionStatus.FAILED and result.error is not None
        assert result.error.type == "KeyboardInterrupt"
    else:
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output == "still here"
    victim = one_zygote.run(SandboxRequest("exec-v", Language.PYTHON, OWN_START, "handler", {}, 10.0, 128, 65536))
    assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
    assert zygote.alive() and not zygote.dead
    assert served()[-1] == served()[-2] == zygote.pid  # the same zygote, not another


@pytest.mark.bwrap
def test_a_zygote_kept_at_the_cap_forks_its_next_child_only_when_the_call_comes(
    served: Callable[[], list[int]],
) -> None:
    """With as many zygotes as the sandbox keeps, an idle zygote is likely retired before its pool
    calls again: it holds no child forked ahead (that memory and CPU would be wasted), and its next
    call, when it comes, runs in a child forked for it, in namespaces of its own as always."""
    with SubprocessSandbox(isolation="strict", workers=1, max_zygotes=1) as sb:
        first = sb.run(SandboxRequest("exec-1", Language.PYTHON, OWN_START, "handler", {}, 10.0, 128, 65536))
        assert first.status is ExecutionStatus.SUCCEEDED, first.error
        ((_, zygote),) = sb._zygotes.idle()  # noqa: SLF001 - the outside view of the zygote
        time.sleep(0.2)
        assert _children(zygote.pid) == []
        second = sb.run(SandboxRequest("exec-2", Language.PYTHON, OWN_START, "handler", {}, 10.0, 128, 65536))
        assert second.status is ExecutionStatus.SUCCEEDED, second.error
        assert second.output[0] == 1 and second.output != first.output
        assert served()[-1] == served()[-2] == zygote.pid
