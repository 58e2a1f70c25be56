"""The isolation suite: hostile tools against a Sandbox, every outcome checked from outside it.

Any sandbox that claims to isolate tools runs it: subclass :class:`SandboxIsolationContract` and
implement :meth:`~SandboxIsolationContract.make_sandbox`. toolrt's tests run it against every
sandbox backend registered with ``isolating=True`` (``toolrt.backends``), its own and those other
packages add. The suite looks from the host running the tests: the sandbox's tools must run here
(a remote sandbox needs a suite of its own).

What a weaker mode documents it cannot hold is named in :attr:`cannot_hold` (expected to fail, so
that a change in what holds is noticed) and :attr:`may_not_hold` (holds only by timing).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import Sandbox, SandboxRequest, SandboxResult

__all__ = ["SandboxIsolationContract", "host_processes_with", "run_hostile"]

SECRET = "s3cr3t-d0-not-leak-7f3a"


def run_hostile(
    sb: Sandbox, code: str, params: dict[str, Any] | None = None, *, language: Language = Language.PYTHON, **limits: Any
) -> SandboxResult:
    """Run ``code`` as a tool of agent ``hostile`` with tight limits (``limits`` override them)."""
    fields: dict[str, Any] = {"timeout_s": 10.0, "memory_mb": 128, "max_output_bytes": 64 * 1024}
    fields.update(limits)
    return sb.run(SandboxRequest("hostile", language, code, "handler", params or {}, **fields))


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker`` (the outside view of surviving processes)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def _accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


_ESCAPES = {
    # frame walking up to the harness and its globals
    "frames": "import sys\ndef handler(target):\n    f = sys._getframe()\n    while f.f_back:\n        f = f.f_back\n"
    "    f.f_globals['os'].system('echo pwned > ' + target)\n    return 'tried'\n",
    # object graph walking to os via __subclasses__
    "subclasses": "def handler(target):\n    for c in ().__class__.__base__.__subclasses__():\n"
    "        if c.__name__ == '_wrap_close':\n            c.__init__.__globals__['system']('echo pwned > ' + target)\n"
    "    return 'tried'\n",
    # ctypes straight into libc
    "ctypes": "import ctypes\ndef handler(target):\n"
    "    ctypes.CDLL(None).system(('echo pwned > ' + target).encode())\n    return 'tried'\n",
}

_FILE_LIMITS = {
    "file_size": "def handler():\n    with open('big', 'wb') as f:\n        for _ in range(64):\n"
    "            f.write(b'x' * (1 << 20))\n",
    "open_files": "def handler():\n    return [open('/dev/null') for _ in range(1000)]\n",
}


class SandboxIsolationContract:
    """Subclass and implement :meth:`make_sandbox` (a sandbox running tools on this host)."""

    #: Tests this sandbox is documented not to hold (name: why); they must fail (strict xfail).
    cannot_hold: ClassVar[Mapping[str, str]] = {}
    #: Tests this sandbox holds only by timing (name: why); they may fail.
    may_not_hold: ClassVar[Mapping[str, str]] = {}

    def make_sandbox(self) -> Sandbox:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls) -> Iterator[Sandbox]:
        """One sandbox for the whole suite: what one hostile call leaves must not reach the next."""
        sb = cls().make_sandbox()
        try:
            yield sb
        finally:
            sb.close()

    @pytest.fixture(autouse=True)
    def _what_it_cannot_hold(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname
        if name in self.cannot_hold:
            request.applymarker(pytest.mark.xfail(strict=True, reason=self.cannot_hold[name]))
        elif name in self.may_not_hold:
            request.applymarker(pytest.mark.xfail(strict=False, reason=self.may_not_hold[name]))

    @pytest.fixture
    def listener(self) -> Iterator[socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        try:
            yield sock
        finally:
            sock.close()

    @staticmethod
    def _needs(sandbox: Sandbox, language: Language) -> None:
        if not sandbox.supports(language):
            pytest.skip(f"this sandbox does not run {language.value} here")

    # -- network -------------------------------------------------------------------------------
    def test_tcp_to_a_host_listener_never_connects(self, sandbox: Sandbox, listener: socket.socket) -> None:
        """A tool cannot reach a service listening on the host's loopback."""
        port = listener.getsockname()[1]
        code = (
            "import socket\ndef handler(port):\n    try:\n"
            "        socket.create_connection(('127.0.0.1', port), timeout=1).close()\n        return 'connected'\n"
            "    except OSError as e:\n        return repr(e)\n"
        )
        result = run_hostile(sandbox, code, {"port": port})
        assert result.status is ExecutionStatus.SUCCEEDED
        assert result.output != "connected"
        assert not _accepted(listener)

    def test_javascript_cannot_reach_the_host_listener(self, sandbox: Sandbox, listener: socket.socket) -> None:
        """JavaScript tools have no network either."""
        self._needs(sandbox, Language.JAVASCRIPT)
        port = listener.getsockname()[1]
        code = (
            "const net = require('net');\nfunction handler(p) { return new Promise((res) => {\n"
            "  const s = net.connect(p.port, '127.0.0.1', () => { s.end(); res('connected'); });\n"
            "  s.on('error', (e) => res(String(e))); }); }\n"
        )
        result = run_hostile(sandbox, code, {"port": port}, language=Language.JAVASCRIPT)
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert result.output != "connected"
        assert not _accepted(listener)

    def test_dns_does_not_resolve(self, sandbox: Sandbox) -> None:
        """Name resolution fails: there is no network and no resolver configuration."""
        code = (
            "import socket\ndef handler():\n    try:\n        return socket.getaddrinfo('pypi.org', 443)[0][4][0]\n"
            "    except OSError as e:\n        return 'failed: ' + repr(e)\n"
        )
        result = run_hostile(sandbox, code)
        assert str(result.output).startswith("failed")

    def test_host_unix_sockets_are_unreachable(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """A unix socket the host listens on is not even visible to the tool."""
        path = tmp_path / "host.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        server.setblocking(False)
        code = (
            "import socket\ndef handler(path):\n    s = socket.socket(socket.AF_UNIX)\n    try:\n"
            "        s.connect(path)\n        return 'connected'\n    except OSError as e:\n        return repr(e)\n"
        )
        try:
            result = run_hostile(sandbox, code, {"path": str(path)})
            assert result.output != "connected"
            assert not _accepted(server)
        finally:
            server.close()

    # -- files and environment -------------------------------------------------------------------
    def test_secrets_on_the_host_are_not_readable(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """/etc/shadow, a planted credentials file and the host home stay out of reach."""
        creds = tmp_path / "credentials"
        creds.write_text(f"aws_secret_access_key={SECRET}\n")
        os.chmod(tmp_path, 0o755)
        os.chmod(creds, 0o644)  # readable by anyone on the host: only the sandbox may hide it
        code = (
            "import os\ndef handler(paths):\n    out = {}\n    for p in paths:\n        try:\n"
            "            out[p] = open(p).read()\n        except OSError as e:\n            out[p] = repr(e)\n"
            "    out['home'] = os.listdir('/') \n    return out\n"
        )
        paths = ["/etc/shadow", str(creds), "/root/.bashrc", "/proc/1/environ"]
        result = run_hostile(sandbox, code, {"paths": paths})
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert SECRET not in str(result.output) + result.stdout + result.stderr
        assert "root:" not in str(result.output.get("/etc/shadow"))
        assert "home" not in result.output["home"] and "work" not in result.output["home"]

    def test_environment_is_built_from_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Host environment variables (AWS keys and the like) never reach the tool, not even via
        /proc, in a sandbox started while they were set."""
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        fresh = self.make_sandbox()
        try:
            code = (
                "import os\ndef handler():\n    seen = [repr(dict(os.environ))]\n    for p in os.listdir('/proc'):\n"
                "        if p.isdigit():\n            try:\n"
                "                seen.append(open('/proc/%s/environ' % p, 'rb').read().decode())\n"
                "            except OSError:\n                pass\n    return seen\n"
            )
            result = run_hostile(fresh, code)
            assert result.status is ExecutionStatus.SUCCEEDED, result
            assert SECRET not in str(result.output)
            assert "AWS_" not in str(result.output)
        finally:
            fresh.close()

    def test_writes_outside_the_work_dir_do_not_land(self, sandbox: Sandbox, tmp_path: Path) -> None:
        """The host file system is read-only or invisible; only the call's own work dir is writable."""
        os.chmod(tmp_path, 0o777)
        targets = [str(tmp_path / "pwned"), "/usr/pwned", "/etc/pwned", "/pwned"]
        code = (
            "def handler(targets):\n    out = {}\n    for t in targets:\n        try:\n"
            "            open(t, 'w').write('x')\n            out[t] = 'written'\n"
            "        except OSError as e:\n            out[t] = repr(e)\n"
            "    open('ok.txt', 'w').write('fine')\n    return out\n"
        )
        result = run_hostile(sandbox, code, {"targets": targets})
        assert result.status is ExecutionStatus.SUCCEEDED, result
        for target in targets:
            assert not Path(target).exists()

    @pytest.mark.parametrize("escape", list(_ESCAPES), ids=list(_ESCAPES))
    def test_in_process_escapes_gain_nothing(self, sandbox: Sandbox, tmp_path: Path, escape: str) -> None:
        """Tricks that break in-process sandboxes only reach the inside of the sandbox."""
        os.chmod(tmp_path, 0o777)
        target = tmp_path / "escaped"
        result = run_hostile(sandbox, _ESCAPES[escape], {"target": str(target)})
        assert result.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
        assert not target.exists()

    # -- resources -------------------------------------------------------------------------------
    def test_memory_bomb_is_killed_and_the_next_call_works(self, sandbox: Sandbox) -> None:
        """Allocating past memory_mb kills the call with limit=memory; the sandbox keeps serving."""
        code = "def handler():\n    blocks = []\n    while True:\n        blocks.append(bytearray(50 * 1024 * 1024))\n"
        result = run_hostile(sandbox, code, memory_mb=64)
        assert result.status is ExecutionStatus.KILLED
        assert result.metrics.limit == "memory"
        assert run_hostile(sandbox, "def handler():\n    return 'alive'\n").output == "alive"

    def test_javascript_memory_bomb_is_killed(self, sandbox: Sandbox) -> None:
        """A JavaScript heap that outgrows memory_mb kills the call with limit=memory."""
        self._needs(sandbox, Language.JAVASCRIPT)
        code = "function handler() { const xs = []; for (;;) xs.push(new Array(1e6).fill(1.5)); }\n"
        result = run_hostile(sandbox, code, language=Language.JAVASCRIPT, memory_mb=64, timeout_s=20.0)
        assert result.status is ExecutionStatus.KILLED, result
        assert result.metrics.limit == "memory"

    def test_fork_bomb_is_contained(self, sandbox: Sandbox) -> None:
        """A fork bomb hits the process limit, leaves nothing behind and the next call works."""
        code = (
            "import os, time\ndef handler():\n    n = 0\n    try:\n        while True:\n"
            "            if os.fork() == 0:\n                time.sleep(987.601)\n                os._exit(0)\n"
            "            n += 1\n    except OSError:\n        raise\n"
        )
        result = run_hostile(sandbox, code, timeout_s=5.0)
        assert result.status is ExecutionStatus.KILLED, result
        assert result.metrics.limit == "processes"
        assert run_hostile(sandbox, "def handler():\n    return 'alive'\n").output == "alive"

    def test_busy_loop_times_out(self, sandbox: Sandbox) -> None:
        """A busy loop is stopped at its timeout with status timed_out."""
        result = run_hostile(sandbox, "def handler():\n    while True:\n        pass\n", timeout_s=1.0)
        assert result.status is ExecutionStatus.TIMED_OUT

    def test_output_flood_is_cut_and_host_memory_stays_bounded(self, sandbox: Sandbox) -> None:
        """Endless printing is cut at max_output_bytes and flagged; the call still ends at its timeout."""
        code = "import sys\ndef handler():\n    while True:\n        sys.stdout.write('y' * 65536)\n"
        result = run_hostile(sandbox, code, timeout_s=1.0, max_output_bytes=1000)
        assert result.status is ExecutionStatus.TIMED_OUT
        assert result.stdout_truncated
        assert len(result.stdout.encode()) <= 1000

    @pytest.mark.parametrize("limit", list(_FILE_LIMITS))
    def test_file_limits_kill_the_call(self, sandbox: Sandbox, limit: str) -> None:
        """Writing a huge file or opening too many files ends the call as killed, naming the limit."""
        result = run_hostile(sandbox, _FILE_LIMITS[limit])
        assert result.status is ExecutionStatus.KILLED, result
        assert result.metrics.limit == limit

    # -- processes -------------------------------------------------------------------------------
    def test_detached_orphans_that_ignore_sigterm_do_not_survive(self, sandbox: Sandbox) -> None:
        """A double-forked, setsid'd process that ignores SIGTERM is gone when the call returns."""
        marker = f"987.61{os.getpid()}"  # its own: another suite may run at the same time
        code = (
            "import os, signal\ndef handler(marker):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        if os.fork() == 0:\n            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "            os.execv('/bin/sleep', ['sleep', marker])\n        os._exit(0)\n    return 'spawned'\n"
        )
        result = run_hostile(sandbox, code, {"marker": marker})
        assert result.output == "spawned"
        assert host_processes_with(marker) == []

    def test_javascript_orphans_do_not_survive(self, sandbox: Sandbox) -> None:
        """A detached child process started by a JavaScript tool is gone when the call returns."""
        self._needs(sandbox, Language.JAVASCRIPT)
        marker = f"987.62{os.getpid()}"
        code = (
            "const cp = require('child_process');\nfunction handler() {\n"
            f"  const c = cp.spawn('/bin/sleep', ['{marker}'], {{ detached: true, stdio: 'ignore' }}); c.unref();\n"
            "  return 'spawned'; }\n"
        )
        try:
            result = run_hostile(sandbox, code, language=Language.JAVASCRIPT)
            assert result.output == "spawned", result
            deadline = time.monotonic() + 5
            while host_processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert host_processes_with(marker) == []
        finally:
            for pid in host_processes_with(marker):  # what escaped is the test's to clean up
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    def test_host_processes_are_invisible(self, sandbox: Sandbox) -> None:
        """/proc inside shows only the sandbox's own few processes, never the host's."""
        code = "import os\ndef handler():\n    return [p for p in os.listdir('/proc') if p.isdigit()]\n"
        result = run_hostile(sandbox, code)
        assert result.status is ExecutionStatus.SUCCEEDED
        assert len(result.output) <= 4
        assert str(os.getpid()) not in result.output or os.getpid() <= 4

    def test_a_tool_that_kills_its_parent_only_hurts_itself(self, sandbox: Sandbox) -> None:
        """Killing the process that started it fails that call; the next call is served."""
        code = (
            "import os, signal\ndef handler():\n    os.kill(os.getppid(), signal.SIGKILL)\n"
            "    import time\n    time.sleep(5)\n"
        )
        result = run_hostile(sandbox, code, timeout_s=3.0)
        assert result.status in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)
        assert run_hostile(sandbox, "def handler():\n    return 'alive'\n").output == "alive"

    # -- state -----------------------------------------------------------------------------------
    def test_no_state_leaks_between_calls(self, sandbox: Sandbox) -> None:
        """Files, module globals and builtins written by one call are invisible to the next."""
        write = (
            "import builtins, json, sys\ndef handler():\n    open('/tmp/leak', 'w').write('1')\n"
            "    open('left.txt', 'w').write('1')\n    open('/dev/shm/leak', 'w').write('1')\n"
            "    builtins.LEAK = 1\n    sys.modules['json'].LEAK = 1\n    return 'ok'\n"
        )
        assert run_hostile(sandbox, write).output == "ok"
        read = (
            "import builtins, json, os\ndef handler():\n"
            "    return [os.path.exists('/tmp/leak'), os.path.exists('left.txt'),\n"
            "            os.path.exists('/dev/shm/leak'), hasattr(builtins, 'LEAK'), hasattr(json, 'LEAK'),\n"
            "            os.listdir('.')]\n"
        )
        assert run_hostile(sandbox, read).output == [False, False, False, False, False, []]
