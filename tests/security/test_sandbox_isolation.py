"""Hostile tools against the namespaced local sandbox; every outcome is checked from outside it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import ISOLATION_MODES, host_processes_with, one_worker_sandbox, run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import ExecutionStatus, IsolationLevel, Language

pytestmark = pytest.mark.bwrap

SECRET = "s3cr3t-d0-not-leak-7f3a"

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


@pytest.fixture(scope="module", params=ISOLATION_MODES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    """The hostile suite runs against both isolation modes."""
    sb = one_worker_sandbox(request.param)
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture(autouse=True)
def _what_process_isolation_cannot_hold(request: pytest.FixtureRequest) -> None:
    if "sandbox" not in request.fixturenames:
        return
    sb = request.getfixturevalue("sandbox")
    name = request.node.originalname
    if sb.isolation is IsolationLevel.PROCESS and name in PROCESS_CANNOT_HOLD:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"process isolation: {PROCESS_CANNOT_HOLD[name]}"))
    elif sb.isolation is IsolationLevel.PROCESS and name in PROCESS_MAY_NOT_HOLD:
        request.applymarker(pytest.mark.xfail(strict=False, reason=f"process isolation: {PROCESS_MAY_NOT_HOLD[name]}"))


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


def _accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_tcp_to_a_host_listener_never_connects(sandbox: SubprocessSandbox, listener: socket.socket) -> None:
    """A tool cannot reach a service listening on the host's loopback."""
    port = listener.getsockname()[1]
    code = (
        "import socket\ndef handler(port):\n"
        "    try:\n        socket.create_connection(('127.0.0.1', port), timeout=1).close()\n        return 'connected'\n"
        "    except OSError as e:\n        return repr(e)\n"
    )
    result = run(sandbox, code, {"port": port})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.output != "connected"
    assert not _accepted(listener)
    listener.close()


@pytest.mark.node
def test_javascript_cannot_reach_the_host_listener(sandbox: SubprocessSandbox, listener: socket.socket) -> None:
    """JavaScript tools have no network either."""
    port = listener.getsockname()[1]
    code = (
        "const net = require('net');\nfunction handler(p) { return new Promise((res) => {\n"
        "  const s = net.connect(p.port, '127.0.0.1', () => { s.end(); res('connected'); });\n"
        "  s.on('error', (e) => res(String(e))); }); }\n"
    )
    result = run(sandbox, code, {"port": port}, language=Language.JAVASCRIPT)
    assert result.status is ExecutionStatus.SUCCEEDED, result
    assert result.output != "connected"
    assert not _accepted(listener)
    listener.close()


def test_dns_does_not_resolve(sandbox: SubprocessSandbox) -> None:
    """Name resolution fails: there is no network and no resolver configuration."""
    code = (
        "import socket\ndef handler():\n    try:\n        return socket.getaddrinfo('pypi.org', 443)[0][4][0]\n"
        "    except OSError as e:\n        return 'failed: ' + repr(e)\n"
    )
    result = run(sandbox, code)
    assert str(result.output).startswith("failed")


def test_host_unix_sockets_are_unreachable(sandbox: SubprocessSandbox, tmp_path: Path) -> None:
    """A unix socket the host listens on is not even visible to the tool."""
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.setblocking(False)
    code = (
        "import socket\ndef handler(path):\n    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n        s.connect(path)\n        return 'connected'\n    except OSError as e:\n        return repr(e)\n"
    )
    result = run(sandbox, code, {"path": str(path)})
    assert result.output != "connected"
    assert not _accepted(server)
    server.close()


def test_secrets_on_the_host_are_not_readable(sandbox: SubprocessSandbox, tmp_path: Path) -> None:
    """/etc/shadow, a planted credentials file and the host home stay out of reach."""
    creds = tmp_path / "credentials"
    creds.write_text(f"aws_secret_access_key={SECRET}\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(creds, 0o644)  # readable by anyone on the host: only the mount namespace hides it
    code = (
        "import os\ndef handler(paths):\n    out = {}\n    for p in paths:\n"
        "        try:\n            out[p] = open(p).read()\n        except OSError as e:\n            out[p] = repr(e)\n"
        "    out['home'] = os.listdir('/') \n    return out\n"
    )
    paths = ["/etc/shadow", str(creds), "/root/.bashrc", "/proc/1/environ"]
    result = run(sandbox, code, {"paths": paths})
    assert result.status is ExecutionStatus.SUCCEEDED, result
    assert SECRET not in str(result.output) + result.stdout + result.stderr
    assert "root:" not in str(result.output.get("/etc/shadow"))
    assert "home" not in result.output["home"] and "work" not in result.output["home"]


def test_environment_is_built_from_nothing(sandbox: SubprocessSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Host environment variables (AWS keys and the like) never reach the tool, not even via /proc."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    fresh = SubprocessSandbox(isolation="strict", workers=0)
    try:
        code = (
            "import os\ndef handler():\n    seen = [repr(dict(os.environ))]\n    for p in os.listdir('/proc'):\n"
            "        if p.isdigit():\n            try:\n                seen.append(open('/proc/%s/environ' % p, 'rb').read().decode())\n"
            "            except OSError:\n                pass\n    return seen\n"
        )
        result = run(fresh, code)
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert SECRET not in str(result.output)
        assert "AWS_" not in str(result.output)
    finally:
        fresh.close()


def test_writes_outside_the_work_dir_do_not_land(sandbox: SubprocessSandbox, tmp_path: Path) -> None:
    """The host file system is read-only or invisible; only the private work dir is writable."""
    os.chmod(tmp_path, 0o777)
    targets = [str(tmp_path / "pwned"), "/usr/pwned", "/etc/pwned", "/pwned"]
    code = (
        "def handler(targets):\n    out = {}\n    for t in targets:\n        try:\n"
        "            open(t, 'w').write('x')\n            out[t] = 'written'\n"
        "        except OSError as e:\n            out[t] = repr(e)\n"
        "    open('ok.txt', 'w').write('fine')\n    return out\n"
    )
    result = run(sandbox, code, {"targets": targets})
    assert result.status is ExecutionStatus.SUCCEEDED, result
    for target in targets:
        assert not Path(target).exists()


def test_memory_bomb_is_killed_and_the_next_call_works(sandbox: SubprocessSandbox) -> None:
    """Allocating past memory_mb kills the call with limit=memory; the sandbox keeps serving."""
    code = "def handler():\n    blocks = []\n    while True:\n        blocks.append(bytearray(50 * 1024 * 1024))\n"
    result = run(sandbox, code, memory_mb=64)
    assert result.status is ExecutionStatus.KILLED
    assert result.metrics.limit == "memory"
    assert run(sandbox, "def handler():\n    return 'alive'\n").output == "alive"


def test_fork_bomb_is_contained(sandbox: SubprocessSandbox) -> None:
    """A fork bomb hits the process limit, leaves nothing behind and the next call works."""
    code = (
        "import os, time\ndef handler():\n    n = 0\n    try:\n        while True:\n"
        "            if os.fork() == 0:\n                time.sleep(987.601)\n                os._exit(0)\n            n += 1\n"
        "    except OSError:\n        raise\n"
    )
    result = run(sandbox, code, timeout_s=5.0)
    assert result.status is ExecutionStatus.KILLED, result
    assert result.metrics.limit == "processes"
    assert run(sandbox, "def handler():\n    return 'alive'\n").output == "alive"


def test_busy_loop_times_out(sandbox: SubprocessSandbox) -> None:
    """A busy loop is stopped at its timeout with status timed_out."""
    result = run(sandbox, "def handler():\n    while True:\n        pass\n", timeout_s=1.0)
    assert result.status is ExecutionStatus.TIMED_OUT


def test_output_flood_is_cut_and_host_memory_stays_bounded(sandbox: SubprocessSandbox) -> None:
    """Endless printing is cut at max_output_bytes and flagged; the call still ends at its timeout."""
    code = "import sys\ndef handler():\n    while True:\n        sys.stdout.write('y' * 65536)\n"
    result = run(sandbox, code, timeout_s=1.0, max_output_bytes=1000)
    assert result.status is ExecutionStatus.TIMED_OUT
    assert result.stdout_truncated
    assert len(result.stdout.encode()) <= 1000


@pytest.mark.parametrize("marker", ["987.611"])
def test_detached_orphans_that_ignore_sigterm_do_not_survive(sandbox: SubprocessSandbox, marker: str) -> None:
    """A double-forked, setsid'd process that ignores SIGTERM is gone when the call returns."""
    code = (
        "import os, signal\ndef handler(marker):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        if os.fork() == 0:\n            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "            os.execv('/bin/sleep', ['sleep', marker])\n        os._exit(0)\n    return 'spawned'\n"
    )
    result = run(sandbox, code, {"marker": marker})
    assert result.output == "spawned"
    assert host_processes_with(marker) == []


@pytest.mark.node
def test_javascript_orphans_do_not_survive(sandbox: SubprocessSandbox) -> None:
    """A detached child process started by a JavaScript tool is gone when the call returns."""
    marker = "987.621" if sandbox.isolation is IsolationLevel.NAMESPACES else "987.622"
    code = (
        "const cp = require('child_process');\nfunction handler() {\n"
        f"  const c = cp.spawn('/bin/sleep', ['{marker}'], {{ detached: true, stdio: 'ignore' }}); c.unref();\n"
        "  return 'spawned'; }\n"
    )
    try:
        result = run(sandbox, code, language=Language.JAVASCRIPT)
        assert result.output == "spawned", result
        deadline = time.monotonic() + 5
        while host_processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host_processes_with(marker) == []
    finally:
        for pid in host_processes_with(marker):  # what escaped (process isolation) is the test's to clean up
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def test_no_state_leaks_between_calls(sandbox: SubprocessSandbox) -> None:
    """Files, module globals and builtins written by one call are invisible to the next."""
    write = (
        "import builtins, json, sys\ndef handler():\n    open('/tmp/leak', 'w').write('1')\n    open('left.txt', 'w').write('1')\n"
        "    open('/dev/shm/leak', 'w').write('1')\n    builtins.LEAK = 1\n    sys.modules['json'].LEAK = 1\n    return 'ok'\n"
    )
    assert run(sandbox, write).output == "ok"
    read = (
        "import builtins, json, os\ndef handler():\n    return [os.path.exists('/tmp/leak'), os.path.exists('left.txt'),\n"
        "            os.path.exists('/dev/shm/leak'), hasattr(builtins, 'LEAK'), hasattr(json, 'LEAK'), os.listdir('.')]\n"
    )
    assert run(sandbox, read).output == [False, False, False, False, False, []]


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


@pytest.mark.parametrize(
    "escape",
    [
        # frame walking up to the harness and its globals
        "import sys\ndef handler(target):\n    f = sys._getframe()\n    while f.f_back:\n        f = f.f_back\n"
        "    f.f_globals['os'].system('echo pwned > ' + target)\n    return 'tried'\n",
        # object graph walking to os via __subclasses__
        "def handler(target):\n    for c in ().__class__.__base__.__subclasses__():\n"
        "        if c.__name__ == '_wrap_close':\n            c.__init__.__globals__['system']('echo pwned > ' + target)\n"
        "    return 'tried'\n",
        # ctypes straight into libc
        "import ctypes\ndef handler(target):\n    ctypes.CDLL(None).system(('echo pwned > ' + target).encode())\n    return 'tried'\n",
    ],
    ids=["frames", "subclasses", "ctypes"],
)
def test_in_process_escapes_gain_nothing(sandbox: SubprocessSandbox, tmp_path: Path, escape: str) -> None:
    """Tricks that break in-process sandboxes only reach the inside of the namespace."""
    os.chmod(tmp_path, 0o777)
    target = tmp_path / "escaped"
    result = run(sandbox, escape, {"target": str(target)})
    assert result.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
    assert not target.exists()


def test_host_processes_are_invisible(sandbox: SubprocessSandbox) -> None:
    """/proc inside shows only the sandbox's own few processes, never the host's."""
    code = "import os\ndef handler():\n    return [p for p in os.listdir('/proc') if p.isdigit()]\n"
    result = run(sandbox, code)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert len(result.output) <= 4
    assert str(os.getpid()) not in result.output or os.getpid() <= 4


@pytest.mark.parametrize(
    ("code", "limit"),
    [
        (
            "def handler():\n    with open('big', 'wb') as f:\n        for _ in range(64):\n"
            "            f.write(b'x' * (1 << 20))\n",
            "file_size",
        ),
        ("def handler():\n    return [open('/dev/null') for _ in range(1000)]\n", "open_files"),
    ],
    ids=["file_size", "open_files"],
)
def test_file_limits_kill_the_call(sandbox: SubprocessSandbox, code: str, limit: str) -> None:
    """Writing a huge file or opening too many files ends the call as killed, naming the limit."""
    result = run(sandbox, code)
    assert result.status is ExecutionStatus.KILLED, result
    assert result.metrics.limit == limit


@pytest.mark.node
def test_javascript_memory_bomb_is_killed(sandbox: SubprocessSandbox) -> None:
    """A JavaScript heap that outgrows memory_mb kills the call with limit=memory."""
    code = "function handler() { const xs = []; for (;;) xs.push(new Array(1e6).fill(1.5)); }\n"
    result = run(sandbox, code, language=Language.JAVASCRIPT, memory_mb=64, timeout_s=20.0)
    assert result.status is ExecutionStatus.KILLED, result
    assert result.metrics.limit == "memory"


def test_a_tool_that_kills_its_worker_only_hurts_itself(sandbox: SubprocessSandbox) -> None:
    """Killing the zygote from inside fails that call; the next call gets a fresh worker."""
    code = "import os, signal\ndef handler():\n    os.kill(os.getppid(), signal.SIGKILL)\n    import time\n    time.sleep(5)\n"
    result = run(sandbox, code, timeout_s=3.0)
    assert result.status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)
    assert run(sandbox, "def handler():\n    return 'alive'\n").output == "alive"


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
