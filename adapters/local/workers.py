"""Sandbox workers as the host sees them: a Python zygote serving calls, or a single-use Node process.

The host trusts nothing that comes back. A zygote's result frame must echo the call's id and the
per-call nonce (which only the host and the zygote know), and its sections must fit their caps: any
other frame ends the worker and the call is reported as ``killed``, so a forged or stray frame can
never be taken for another call's result.
"""

from __future__ import annotations

import array
import codecs
import hmac
import json
import marshal
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from toolrt.adapters.local.cgroups import WorkerCgroup
from toolrt.adapters.local.egress_proxy import SANDBOX_PROXY_PORT, SANDBOX_SOCKET, EgressGate
from toolrt.adapters.local.process_tree import children, descendants, limit_cpu, read_exact, tree_usage
from toolrt.adapters.local.sandbox_results import MIN_FRAME_CAP, parse_result, worker_fields
from toolrt.domain import ExecutionError
from toolrt.logs import get_logger
from toolrt.ports import CancelSignal, SandboxRequest

__all__ = ["NodeWorker", "ProcessWorker", "PythonZygote", "Worker", "ZygoteTemplate"]

log = get_logger(__name__)

CANCEL_POLL_S = 0.05
GRACE_S = 3.0  # past the deadline, a worker that has not answered is killed from outside
_HEADER_CAP = 64 * 1024
# A call may start this many processes and threads (pids cgroup, or RLIMIT_NPROC without one).
CALL_PIDS = 64
# Without a pids cgroup, RLIMIT_NPROC is the only bound on how many processes share the memory
# budget (each under RLIMIT_AS): kept small so the total stays a small multiple of memory_mb.
FALLBACK_CALL_PROCESSES = 8
# The zygote, the pid 1 of its namespaces (environment zygotes) and its spare child (single-threaded),
# with room to spare.
_IDLE_ZYGOTE_TASKS = 5

# Returned by _read_result for a stream frame (compared by identity): the call's result is still to come.
_STREAMED: dict[str, Any] = {}
_PROTOCOL_ERROR = {
    "status": "killed",
    "error": {
        "type": "SandboxProtocolError",
        "message": "the sandbox worker sent a frame that does not belong to this call; it was stopped",
    },
}


class Worker:
    """One sandboxed process tree, as the host sees it: what it holds (cgroup, egress gate, scratch
    folder) and how to end it from outside."""

    def __init__(self, scratch: Path | None, *, namespaced: bool, tenant: Hashable = "") -> None:
        self.scratch = scratch
        self.namespaced = namespaced
        # Whom it serves: a zygote's pool key on the host (see ``SubprocessSandbox``); "" for workers
        # that serve one call each, and for pristine zygotes not yet bound to a pool.
        self.tenant: Hashable = tenant
        self.cgroup: WorkerCgroup | None = None
        # The worker's egress socket (its only way out), when it serves calls that may reach hosts.
        self.gate: EgressGate | None = None
        # The environment (requirements) a Python zygote serves; None: none bound.
        self.environment: Any = None
        self.dead = False

    @property
    def pid(self) -> int:
        """The worker's pid on the host (its sandbox's pid 1, or the bare process)."""
        raise NotImplementedError

    @property
    def reusable(self) -> bool:
        """Whether the worker may serve another call once this one is done (see ``PythonZygote``)."""
        return not self.dead

    def alive(self) -> bool:
        """Whether the worker's process is still running."""
        raise NotImplementedError

    def signal_kill(self) -> None:
        """Send SIGKILL to the whole tree without waiting."""
        raise NotImplementedError

    def _wait_gone(self, timeout: float) -> bool:
        raise NotImplementedError

    def _close_channels(self) -> None:
        raise NotImplementedError

    def _stderr_fd(self) -> int:
        raise NotImplementedError

    def kill(self) -> None:
        """Kill the whole tree and wait for it; closes its channels, removes the scratch dir and the cgroup."""
        self.signal_kill()
        if not self._wait_gone(10):
            log.warning("sandbox worker did not exit after SIGKILL", pid=self.pid)
        self._close_channels()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.gate is not None:
            self.gate.close()

    def tree(self) -> list[int]:
        """Host pids of the worker's processes inside the sandbox (not bubblewrap's own monitor)."""
        inside = descendants(self.pid)
        return inside if self.namespaced else [self.pid, *inside]

    def stderr_tail(self) -> str:
        """The end of what the worker wrote to stderr so far (for an error message), waiting briefly."""
        try:
            fd = self._stderr_fd()
            if fd < 0 or not select.select([fd], [], [], 0.2)[0]:
                return ""
            return os.read(fd, 4096).decode(errors="replace").strip()[-500:]
        except (OSError, ValueError):
            return ""


class ProcessWorker(Worker):
    """A worker this host started itself (a bubblewrap sandbox, or a bare process without namespaces)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], scratch: Path | None, *, namespaced: bool, tenant: Hashable = ""
    ) -> None:
        super().__init__(scratch, namespaced=namespaced, tenant=tenant)
        self.proc = proc
        # pidfds of what bubblewrap runs (its sandbox's pid 1), taken once it runs (see ``_wait_gone``).
        self._inner: list[int] = []

    def hold_inner(self) -> None:
        """Hold pidfds of the processes bubblewrap started (its sandbox's pid 1), for ``_wait_gone``."""
        for pid in children(self.proc.pid):
            try:
                self._inner.append(os.pidfd_open(pid))
            except OSError:
                pass  # already gone

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL to the session and, in bubblewrap, its namespace (pid 1 dies, and with it everything)."""
        if not self.dead:
            self.dead = True
            # Find the tree before the group dies: detached processes would be re-parented away.
            tree = descendants(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in (self.proc.pid, *tree):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _wait_gone(self, timeout: float) -> bool:
        """Wait for bubblewrap and for its sandbox's pid 1: bubblewrap may exit first, while that pid 1
        (re-parented to the host's init) is still tearing its namespace down."""
        deadline = time.monotonic() + timeout
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        gone = True
        for fd in self._take_inner():
            try:
                gone = bool(select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]) and gone
            finally:
                os.close(fd)
        return gone

    def _take_inner(self) -> list[int]:
        """The held pidfds, each handed to one caller only (kill may run on two threads at once)."""
        taken = []
        while True:
            try:
                taken.append(self._inner.pop())
            except IndexError:
                return taken

    def _close_channels(self) -> None:
        for fd in self._take_inner():
            os.close(fd)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def _stderr_fd(self) -> int:
        return self.proc.stderr.fileno() if self.proc.stderr is not None and not self.proc.stderr.closed else -1


def request_frame(doc: dict[str, Any]) -> bytes:
    """A frame for the zygote: host-made, so ``marshal`` (cheap to load in a cold zygote) is safe."""
    body = marshal.dumps(doc)
    return struct.pack(">I", len(body)) + body


class TemplateRetired(ExecutionError):
    """A zygote was asked of a template that was retired meanwhile (see ``ZygoteTemplate.drain``)."""


class ZygoteTemplate(ProcessWorker):
    """A pristine template zygote: pid 1 of its own bubblewrap sandbox (or a bare process), started
    once per kind of zygote. It forks agent zygotes on request and never runs a call, relays none of
    their data and keeps none of their descriptors (see the harness's docstring)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        ctl: socket.socket,
        *,
        namespaced: bool,
        environment: Any = None,
        flavor: str = "",
    ) -> None:
        super().__init__(proc, None, namespaced=namespaced)
        self.environment = environment
        self.flavor = flavor
        self._ctl = ctl
        self._lock = threading.Lock()
        self._seq = 0
        # A template is pid 1 of the pid namespace its zygotes live in, so it must outlive them: one
        # that is retired (``drain``) forks no more and ends only when none of its zygotes is left
        # (nor being forked), never under a call one of them serves.
        self._children: set[Worker] = set()
        self._forking = 0
        self._end: Callable[[Worker], None] | None = None
        self._ended = False
        self._children_lock = threading.Lock()

    @property
    def draining(self) -> bool:
        """Whether the template was retired: it forks no more zygotes, and its zygotes serve no more calls."""
        return self._end is not None

    def drain(self, end: Callable[[Worker], None]) -> None:
        """Retire the template: ``end(self)`` ends it once none of its zygotes is left (now, if none is)."""
        with self._children_lock:
            self._end = end
        self._end_if_unused()

    def release(self, zygote: Worker) -> None:
        """One of its zygotes has ended: the template ends too when it was retired and this was its last."""
        with self._children_lock:
            self._children.discard(zygote)
        self._end_if_unused()

    def _end_if_unused(self) -> None:
        with self._children_lock:
            end = self._end
            if end is None or self._ended or self._children or self._forking:
                return
            self._ended = True
        end(self)

    def _frame(self, deadline: float) -> Any:
        head = read_exact(self._ctl.fileno(), 4, deadline)
        if head is None or struct.unpack(">I", head)[0] > _HEADER_CAP:
            return None
        body = read_exact(self._ctl.fileno(), struct.unpack(">I", head)[0], deadline)
        try:
            return json.loads(body) if body else None
        except ValueError:
            return None

    def wait_ready(self, timeout: float) -> None:
        frame = self._frame(time.monotonic() + timeout)
        if not isinstance(frame, dict) or not frame.get("ready"):
            detail = self.stderr_tail()
            self.kill()
            raise ExecutionError(f"the Python sandbox did not start: {detail or 'no reason given'}")
        self.hold_inner()

    def fork_zygote(
        self, cgroup: WorkerCgroup | None, gate: EgressGate | None, scratch: Path | None, timeout: float
    ) -> PythonZygote:
        """A new zygote forked from this template, with descriptors of its own: a control socket to
        this host, a stderr pipe, its cgroup's ``cgroup.procs`` (it moves itself in before anything
        else) and, for calls that may reach hosts, an O_PATH descriptor of its egress socket.
        ``TemplateRetired`` when it was retired (``drain``): its successor forks the zygote instead."""
        with self._children_lock:
            if self._end is not None:
                raise TemplateRetired("the zygote template was retired")
            self._forking += 1
        try:
            zygote = self._fork_zygote(cgroup, gate, scratch, timeout)
            with self._children_lock:
                self._children.add(zygote)
            return zygote
        finally:
            with self._children_lock:
                self._forking -= 1
            self._end_if_unused()

    def _fork_zygote(
        self, cgroup: WorkerCgroup | None, gate: EgressGate | None, scratch: Path | None, timeout: float
    ) -> PythonZygote:
        host_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Its first frame then says, through the kernel, which pid it has here (SCM_CREDENTIALS).
        host_end.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        err_r, err_w = os.pipe()
        handed = [err_w]
        reply: Any = None
        try:
            groups = cgroup.procs_files() if cgroup is not None else []
            handed += groups
            if gate is not None:
                handed.append(os.open(gate.path, os.O_PATH | os.O_CLOEXEC))
            fds = [zygote_end.fileno(), *handed]
            with self._lock:
                self._seq += 1
                seq = self._seq
                body = marshal.dumps(
                    {"seq": seq, "cgroups": len(groups), "gate": gate is not None, "scratch": str(scratch or "")}
                )
                try:
                    self._ctl.sendmsg(
                        [struct.pack(">I", len(body)) + body],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
                    )
                    reply = self._frame(time.monotonic() + timeout)
                except OSError as exc:
                    reply = {"failed": seq, "error": str(exc)}
        except BaseException:
            host_end.close()
            os.close(err_r)
            raise
        finally:
            zygote_end.close()
            for fd in handed:
                os.close(fd)
        if not isinstance(reply, dict) or reply.get("spawned") != seq:
            host_end.close()
            os.close(err_r)
            why = reply.get("error") if isinstance(reply, dict) else self.stderr_tail() or "it did not answer"
            raise ExecutionError(f"the Python sandbox could not fork a zygote: {why}")
        zygote = PythonZygote(host_end, err_r, scratch, namespaced=self.namespaced)
        zygote.environment = self.environment
        zygote.template = self
        return zygote

    def _close_channels(self) -> None:
        super()._close_channels()
        self._ctl.close()


class PythonZygote(Worker):
    """A zygote forked from a template: one call at a time, each in a freshly forked child.

    It is not this host's child (the template is its parent and reaps it): the host knows it by the
    pid its first frame carried and holds a pidfd to it, through which it checks and ends it."""

    def __init__(self, ctl: socket.socket, err_fd: int, scratch: Path | None, *, namespaced: bool) -> None:
        super().__init__(scratch, namespaced=namespaced)
        self._ctl = ctl
        self._in = self._out = ctl.fileno()
        self._err = err_fd
        self._pid = 0
        self._pidfd = -1
        self._seq = 0
        self.template: ZygoteTemplate | None = None
        # What the idle zygote (and its spare child) holds: its charge in its cgroup after its last call.
        self.idle_bytes = 0

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def reusable(self) -> bool:
        """False once it ended, or once its template was retired (it is then ended after its call)."""
        return not self.dead and (self.template is None or not self.template.draining)

    def kill(self) -> None:
        """End it (see ``Worker.kill``); its template learns that it is gone."""
        super().kill()
        if self.template is not None:
            self.template.release(self)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the zygote's first frame, and learn its pid on this host from it."""
        deadline = time.monotonic() + timeout
        frame: Any = None
        pid = 0
        try:
            if select.select([self._out], [], [], timeout)[0]:
                head, ancillary, _, _ = self._ctl.recvmsg(4, socket.CMSG_SPACE(struct.calcsize("3i")))
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("3i", data[:12])[0]
                if 0 < len(head) < 4:
                    head += read_exact(self._out, 4 - len(head), deadline) or b""
                if len(head) == 4 and struct.unpack(">I", head)[0] <= _HEADER_CAP:
                    body = read_exact(self._out, struct.unpack(">I", head)[0], deadline)
                    frame = json.loads(body) if body else None
            self._ctl.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
            if pid > 0 and isinstance(frame, dict) and frame.get("ready"):
                self._pid = pid
                self._pidfd = os.pidfd_open(pid)
                return
        except (OSError, ValueError):
            pass
        detail = self.stderr_tail()
        self.kill()
        raise ExecutionError(f"the Python sandbox worker did not start: {detail or 'no reason given'}")

    def alive(self) -> bool:
        return self._pidfd >= 0 and not self.dead and not select.select([self._pidfd], [], [], 0)[0]

    def signal_kill(self) -> None:
        """SIGKILL through its pidfd: with namespaces that is pid 1 of its own, and all of it dies.
        Without, its calls' processes (each call detaches into a session of its own) go first."""
        if self.dead:
            return
        self.dead = True
        if self._pidfd < 0:
            return
        if not self.namespaced:
            for pid in descendants(self._pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _wait_gone(self, timeout: float) -> bool:
        return self._pidfd < 0 or bool(select.select([self._pidfd], [], [], timeout)[0])

    def _close_channels(self) -> None:
        self._ctl.close()
        for fd in (self._err, self._pidfd):
            if fd >= 0:
                os.close(fd)
        self._err = self._pidfd = -1

    def _stderr_fd(self) -> int:
        return self._err

    def _send(self, data: bytes, deadline: float, cancel: CancelSignal | None) -> bool:
        """Hand ``data`` to the zygote before ``deadline`` (monotonic). False when it did not take it
        all in time (it stopped reading: a learned import that never returns, say), or stopped and
        the call was cancelled meanwhile: the call then ends with the status the host decides, like
        a call that ran too long, instead of waiting for the zygote forever."""
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = left if cancel is None else min(left, CANCEL_POLL_S)
            if select.select([], [self._in], [], wait)[1]:
                try:
                    view = view[self._ctl.send(view, socket.MSG_DONTWAIT) :]
                except BlockingIOError:
                    continue
            elif cancel is not None and cancel.is_set():
                return False
        return True

    def call(
        self,
        request: SandboxRequest,
        cancel: CancelSignal | None,
        egress_token: str | None = None,
        engine: str | None = None,
        bytecode: bytes | None = None,
        learn: tuple[str, ...] = (),
        next_spare: bool = True,
    ) -> tuple[dict[str, Any] | None, str | None, bytes, bytes]:
        """Run one call: the zygote's verified header (or None and the status the host decided) and the streams.

        ``egress_token``: what the call's forwarder presents on each connection to the worker's
        egress gate (see ``EgressGate.begin``). ``engine="quickjs"``: the code is JavaScript, run on
        QuickJS in the forked child (see ``quickjs_engine``). ``bytecode``: the Python code compiled
        on the host (see ``code_cache``), which the child loads instead of compiling the source.
        ``learn``: modules of the zygote's environment the tool imports, which the zygote imports
        while idle after the call (environment zygotes only: each serves one agent).
        ``next_spare=False``: the zygote forks the child for its next call only when that call
        comes, not right after this one (it will likely be retired before it is called again)."""
        self._seq += 1
        seq = self._seq
        nonce = secrets.token_hex(16)
        calls = CALL_PIDS if self.cgroup is not None else FALLBACK_CALL_PROCESSES
        # RLIMIT_NPROC counts per user (and user namespace). Without namespaces every worker shares
        # the host user's count, so the pids cgroup (armed below) is the call's bound instead.
        nproc = calls if self.namespaced or self.cgroup is None else 1 << 15
        payload = marshal.dumps(
            {
                "code": request.code,
                "entrypoint": request.entrypoint,
                "params": request.params,
                "timeout_s": request.timeout_s,
                "memory_mb": request.memory_mb,
                "max_output_bytes": request.max_output_bytes,
                "nproc": nproc,
                "engine": engine,
                "bytecode": bytecode,
                # Only a call that may reach hosts gets the forwarder and the proxy variables (the
                # host decides: the worker's gate is bound to this call alone).
                "proxy": {"socket": SANDBOX_SOCKET, "port": SANDBOX_PROXY_PORT, "token": egress_token}
                if self.gate is not None and request.egress
                else None,
            }
        )
        budget = None
        if self.cgroup is not None:
            # The zygote (for an environment, with its pid 1) and its spare child are all that run now: a
            # few tasks on top of the call's own.
            budget = self.cgroup.arm(request.memory_mb * 1024 * 1024, _IDLE_ZYGOTE_TASKS + CALL_PIDS)
            self.idle_bytes = budget.baseline  # what the zygote holds idle: its share of the pools' cap
        hard_deadline = time.monotonic() + request.timeout_s + GRACE_S
        sent = self._send(
            request_frame(
                {
                    "id": seq,
                    "nonce": nonce,
                    "timeout_s": request.timeout_s,
                    "memory_mb": request.memory_mb,
                    "max_output_bytes": request.max_output_bytes,
                    "payload": len(payload),
                    "stream": request.on_output is not None,
                    # Host-made like the rest of the header: the zygote prepares its next spare by it.
                    "engine": engine,
                    "learn": list(learn),
                    "spare": next_spare,
                }
            )
            + payload,
            hard_deadline,
            cancel,
        )
        if not sent:
            self.signal_kill()  # it holds part of a request: nothing it says later could be trusted
            return None, "cancelled" if cancel is not None and cancel.is_set() else "timed_out", b"", b""
        relay = OutputDecoder(request.on_output) if request.on_output is not None else None
        cancelled_at: float | None = None
        decided: str | None = None
        doc: dict[str, Any] | None = None
        out = err = b""
        while True:
            now = time.monotonic()
            if now >= hard_deadline:
                decided = "cancelled" if cancelled_at is not None else "timed_out"
                break
            wait = hard_deadline - now
            if cancel is not None and cancelled_at is None:
                wait = min(wait, CANCEL_POLL_S)
            if select.select([self._out], [], [], wait)[0]:
                doc, out, err = self._read_result(seq, nonce, request.max_output_bytes, hard_deadline, relay)
                if doc is _STREAMED:
                    continue  # a stream frame: the result is still to come
                if doc is None:
                    decided = "cancelled" if cancelled_at is not None else "crashed"
                break
            if cancel is not None and cancelled_at is None and cancel.is_set():
                cancelled_at = time.monotonic()
                hard_deadline = min(hard_deadline, cancelled_at + GRACE_S)
                if not self._send(request_frame({"cancel": seq}), hard_deadline, None):
                    decided = "cancelled"
                    self.signal_kill()
                    break
        if self.cgroup is not None and budget is not None and not self.dead:
            peak_kb, oom = self.cgroup.settle(budget)
            if doc is not None:
                doc["max_rss_kb"] = max(peak_kb, int(doc.get("max_rss_kb") or 0))
                if oom and doc.get("status") != "succeeded" and "limit" not in doc:
                    doc.update(
                        status="killed",
                        limit="memory",
                        error={"type": "MemoryError", "message": f"memory limit of {request.memory_mb} MB exceeded"},
                    )
        return doc, decided, out, err

    def _read_result(
        self, seq: int, nonce: str, cap: int, deadline: float, relay: OutputDecoder | None = None
    ) -> tuple[dict[str, Any] | None, bytes, bytes]:
        """Read and verify one frame; a frame that does not match this call stops the worker.

        A stream frame (asked for by ``relay``) is handed to the relay and reported as ``_STREAMED``.
        """
        head = read_exact(self._out, 4, deadline)
        if head is None:
            return None, b"", b""
        size = struct.unpack(">I", head)[0]
        body = read_exact(self._out, size, deadline) if size <= _HEADER_CAP else None
        try:
            doc = json.loads(body) if body is not None else None
        except ValueError:
            doc = None
        if relay is not None and isinstance(doc, dict) and "stream" in doc:
            return self._read_stream(doc, seq, nonce, cap, deadline, relay)
        sizes = doc.get("sizes") if isinstance(doc, dict) else None
        caps = (max(cap, MIN_FRAME_CAP), cap, cap)
        valid = (
            isinstance(doc, dict)
            and doc.get("id") == seq
            and isinstance(doc.get("nonce"), str)
            and hmac.compare_digest(doc["nonce"], nonce)
            and isinstance(sizes, list)
            and len(sizes) == 3
            and all(
                isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= c for n, c in zip(sizes, caps, strict=True)
            )
        )
        if not valid:
            log.warning("sandbox worker sent a frame that does not match its call; stopping it", pid=self.pid)
            self.signal_kill()
            return dict(_PROTOCOL_ERROR), b"", b""
        assert isinstance(doc, dict) and isinstance(sizes, list)
        data = read_exact(self._out, sum(sizes), deadline) if sum(sizes) else b""
        if data is None:
            return None, b"", b""
        result, out, err = data[: sizes[0]], data[sizes[0] : sizes[0] + sizes[1]], data[sizes[0] + sizes[1] :]
        del doc["nonce"], doc["sizes"], doc["id"]
        if result:
            doc.update(parse_result(result.decode("utf-8", "replace")))
        return doc, out, err

    def _read_stream(
        self, doc: dict[str, Any], seq: int, nonce: str, cap: int, deadline: float, relay: OutputDecoder
    ) -> tuple[dict[str, Any] | None, bytes, bytes]:
        stream, size = doc.get("stream"), doc.get("size")
        valid = (
            doc.get("id") == seq
            and isinstance(doc.get("nonce"), str)
            and hmac.compare_digest(doc["nonce"], nonce)
            and (stream == 1 or stream == 2)
            and isinstance(size, int)
            and not isinstance(size, bool)
            and 0 < size <= cap - relay.received(stream)
        )
        if not valid:
            log.warning("sandbox worker sent a stream frame that does not match its call; stopping it", pid=self.pid)
            self.signal_kill()
            return dict(_PROTOCOL_ERROR), b"", b""
        assert isinstance(stream, int) and isinstance(size, int)
        data = read_exact(self._out, size, deadline)
        if data is None:
            return None, b"", b""
        relay.feed(stream, data)
        return _STREAMED, b"", b""


class OutputDecoder:
    """Turns a call's raw stdout (1) and stderr (2) bytes into text for the caller's ``on_output``.

    Multi-byte characters split between two reads are joined; a callback that raises is logged and
    not called again for this call (the call itself goes on).
    """

    def __init__(self, callback: Any) -> None:
        self._callback = callback
        self._decoders = {
            1: codecs.getincrementaldecoder("utf-8")("replace"),
            2: codecs.getincrementaldecoder("utf-8")("replace"),
        }
        self._received = {1: 0, 2: 0}

    def received(self, stream: int) -> int:
        """Bytes of ``stream`` taken so far."""
        return self._received[stream]

    def feed(self, stream: int, data: bytes) -> None:
        """Hand ``data`` of ``stream`` on as text."""
        self._received[stream] += len(data)
        text = self._decoders[stream].decode(data)
        if text and self._callback is not None:
            try:
                self._callback("stdout" if stream == 1 else "stderr", text)
            except Exception as exc:  # the caller's code: never let it break the call
                log.warning("on_output callback failed; not called again for this call", error=str(exc))
                self._callback = None


class NodeWorker(ProcessWorker):
    """A pre-started single-use Node process waiting for its one request on stdin."""

    def __init__(
        self, proc: subprocess.Popen[bytes], scratch: Path | None, result_fd: int, *, namespaced: bool
    ) -> None:
        super().__init__(proc, scratch, namespaced=namespaced)
        self.result_fd = result_fd

    def kill(self) -> None:
        super().kill()
        if self.result_fd >= 0:
            os.close(self.result_fd)
            self.result_fd = -1

    def call(
        self, request: SandboxRequest, cancel: CancelSignal | None
    ) -> tuple[dict[str, Any], str | None, bytes, bytes]:
        """Send the request, collect the result and the streams (each capped), and stop the worker."""
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        limit_cpu(self.proc.pid, request.timeout_s)
        body = json.dumps(
            {
                "code": request.code,
                "entrypoint": request.entrypoint,
                "params": request.params,
                "language": request.language.value,
            }
        ).encode()
        deadline = time.monotonic() + request.timeout_s
        outcome: str | None = None
        try:
            self.proc.stdin.write(body)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        out_fd, err_fd, res_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno(), self.result_fd
        cap = request.max_output_bytes
        caps = {out_fd: cap + 1, err_fd: cap + 1, res_fd: max(cap, MIN_FRAME_CAP) + 1}
        bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
        open_fds = set(caps)

        relay = OutputDecoder(request.on_output) if request.on_output is not None else None
        streams = {out_fd: 1, err_fd: 2}

        def take(fd: int, final: bool) -> None:
            """Read what ``fd`` has, kept up to its cap. While the tool runs, reading goes on past the
            cap (so it never blocks on a full pipe); once it has answered, a full stream is left."""
            chunk = os.read(fd, 65536)
            if not chunk or (final and len(bufs[fd]) >= caps[fd]):
                open_fds.discard(fd)  # the rest is dropped with the worker
            elif len(bufs[fd]) < caps[fd]:
                kept = chunk[: caps[fd] - len(bufs[fd])]
                bufs[fd] += kept
                if relay is not None and fd in streams:
                    relay.feed(streams[fd], kept[: max(0, cap - relay.received(streams[fd]))])

        while res_fd in open_fds:
            now = time.monotonic()
            if now >= deadline:
                outcome = "timed_out"
                break
            if cancel is not None and cancel.is_set():
                outcome = "cancelled"
                break
            wait = deadline - now if cancel is None else min(deadline - now, CANCEL_POLL_S)
            for fd in select.select(list(open_fds), [], [], wait)[0]:
                take(fd, final=False)
        if outcome is None:
            # Node writes to pipes synchronously, so what the tool printed is already in them.
            while open_fds - {res_fd}:
                ready = select.select(list(open_fds - {res_fd}), [], [], 0)[0]
                if not ready:
                    break
                for fd in ready:
                    take(fd, final=True)
        doc: dict[str, Any] = {}
        if outcome is None and 0 < len(bufs[res_fd]) < caps[res_fd]:
            try:
                parsed = json.loads(bytes(bufs[res_fd]))
            except ValueError:
                parsed = None
            # The tool can write to the result fd itself (it runs in the same process, used once):
            # keep only what a tool may say.
            doc = worker_fields(parsed) if isinstance(parsed, dict) else {}
        elif outcome is None and len(bufs[res_fd]) >= caps[res_fd]:
            doc = {
                "status": "killed",
                "limit": "output",
                "error": {
                    "type": "OutputLimitExceeded",
                    "message": f"the return value is larger than {caps[res_fd] - 1} bytes",
                },
            }
        # Measured here, never reported by the worker.
        doc["cpu_ms"], doc["max_rss_kb"] = tree_usage(self.proc.pid)
        if self.cgroup is not None:
            doc["max_rss_kb"] = max(doc["max_rss_kb"], self.cgroup.peak_kb())
            if self.cgroup.oom_killed() and doc.get("status") != "succeeded":
                doc.update(
                    status="killed",
                    limit="memory",
                    error={"type": "MemoryError", "message": f"memory limit of {request.memory_mb} MB exceeded"},
                )
        return doc, outcome, bytes(bufs[out_fd]), bytes(bufs[err_fd])
