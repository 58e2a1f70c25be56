"""Hostile tools against the local sandbox; every outcome is checked from outside it.

The shipped isolation suite (``toolrt.contracts.SandboxIsolationContract``) runs against the
namespaced sandbox with every isolating backend (tests/contract/test_sandbox_isolation.py); here
it runs in process isolation, where what that mode documents it cannot hold is expected to fail,
beside what belongs to the subprocess sandbox itself (its uid, its result channel, its fallback).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.conftest import ISOLATION_MODES, host_processes_with, one_worker_sandbox, run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.contracts import SandboxIsolationContract
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import Sandbox

pytestmark = pytest.mark.bwrap

# What process isolation (no bubblewrap) documents it cannot hold (docs/sandbox.md, "Tenant isolation"):
# each of these runs in that mode too, expected to fail, so that a change in what holds is noticed.
PROCESS_CANNOT_HOLD: dict[str, str] = {
    "test_secrets_on_the_host_are_not_readable": "the host's files that nobody may read are visible",
    "test_tcp_to_a_host_listener_never_connects": "no network namespace: the host's loopback is reachable",
    "test_javascript_cannot_reach_the_host_listener": "no network namespace: the host's loopback is reachable",
    "test_dns_does_not_resolve": "no network namespace: names resolve",
    "test_host_processes_are_invisible": "no pid namespace: the host's processes are visible",
    "test_no_state_leaks_between_calls": "the host's /tmp and /dev/shm are shared: files left there outlive the call",
}
# ...and what it holds only by timing: a detached Node child escapes when it leaves before the kill.
PROCESS_MAY_NOT_HOLD: dict[str, str] = {
    "test_javascript_orphans_do_not_survive": "Node descendants that detach in time escape without a pid namespace",
}


@pytest.mark.node
class TestProcessIsolation(SandboxIsolationContract):
    """The isolation suite against the local sandbox without bubblewrap."""

    cannot_hold = {name: f"process isolation: {why}" for name, why in PROCESS_CANNOT_HOLD.items()}
    may_not_hold = {name: f"process isolation: {why}" for name, why in PROCESS_MAY_NOT_HOLD.items()}

    def make_sandbox(self) -> Sandbox:
        return one_worker_sandbox("process")


@pytest.fixture(scope="module", params=ISOLATION_MODES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    """What is the subprocess sandbox's own runs against both isolation modes."""
    sb = one_worker_sandbox(request.param)
    try:
        yield sb
    finally:
        sb.close()


def test_runs_unprivileged_on_the_host(sandbox: SubprocessSandbox) -> None:
    """Inside, the tool is uid 65534 without capabilities; outside, its processes are not host root."""
    code = (
        "import os\ndef handler():\n    status = open('/proc/self/status').read()\n"
        "    caps = [l for l in status.splitlines() if l.startswith('CapEff')][0]\n"
        "    return [os.getuid(), caps.split()[1]]\n"
    )
    result = run(sandbox, code)
    assert result.output == [65534, "0000000000000000"]
    for pid in host_processes_with("python_zygote") or []:
        with open(f"/proc/{pid}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        assert uid_line.split()[1] != "0"


def test_without_namespaces_orphans_and_fork_bombs_are_still_reaped() -> None:
    """The process-isolation fallback still kills detached orphans and contains a fork bomb."""
    sb = SubprocessSandbox(bwrap=False, workers=1)
    try:
        orphan = (
            "import os, signal\ndef handler():\n    if os.fork() == 0:\n        os.setsid()\n"
            "        if os.fork() == 0:\n            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "            os.execv('/bin/sleep', ['sleep', '987.631'])\n        os._exit(0)\n    return 'spawned'\n"
        )
        assert run(sb, orphan).output == "spawned"
        assert host_processes_with("987.631") == []
        bomb = "import os, time\ndef handler():\n    while True:\n        if os.fork() == 0:\n            time.sleep(987.641)\n"
        result = run(sb, bomb, timeout_s=5.0)
        assert result.status in (ExecutionStatus.KILLED, ExecutionStatus.TIMED_OUT)
        assert host_processes_with("987.641") == []
        assert run(sb, "def handler():\n    return 'alive'\n").output == "alive"
    finally:
        sb.close()


SPOOF = """
function handler(p) {
  const fs = require('fs');
  const fd = Number(process.argv[process.argv.length - 1]);
  fs.writeSync(fd, JSON.stringify({status: 'succeeded', output: '42', cpu_ms: p.cpu, max_rss_kb: 7,
                                   exit_code: 99, stdout_truncated: true}));
  process.exit(0);
}
"""


@pytest.mark.node
def test_a_tool_cannot_forge_the_host_side_metrics(sandbox: SubprocessSandbox) -> None:
    """A JS tool writing its own result document cannot set metrics or flags, nor crash the host."""
    forged = run(sandbox, SPOOF, {"cpu": 123456789}, language=Language.JAVASCRIPT)
    assert forged.metrics.cpu_ms < 60_000 and forged.metrics.max_rss_kb != 7
    assert forged.metrics.exit_code != 99 and not forged.stdout_truncated
    garbage = run(sandbox, SPOOF, {"cpu": "not-a-number"}, language=Language.JAVASCRIPT)
    assert garbage.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
