"""The local sandbox: tool code runs in bubblewrap namespaces under rlimits, from pre-started workers.

Design, and why:

* **Python runs from a zygote.** Each worker is one ``python -I -S`` process inside its own
  bubblewrap sandbox (user, pid, net, ipc, uts, cgroup and mount namespaces; uid 65534; no
  capabilities; read-only minimal root; private size-capped ``/tmp``). It pre-imports common
  modules while idle and forks one child per call, ahead of the call (the child waits for its
  request on a pipe), so a call costs neither an interpreter start nor a fork on its path, and
  every call starts from the same clean state (nothing a call does flows back into the zygote).
* **A zygote serves one call at a time, so its pid namespace is the unit of killing.** The child
  calls ``setsid`` and gets its own rlimits (CPU, address space, processes, file size, open files)
  and a fresh work dir. When the call ends, times out or is cancelled, the zygote sends SIGKILL to
  every process in the namespace but pid 1 and itself (``kill(-1)``), then reaps them (it is their
  subreaper): a tool that forks, ignores SIGTERM or calls ``setsid`` cannot survive. It then wipes
  ``/tmp``, ``/dev/shm`` and System V IPC objects, so nothing leaks into the next call. A nested pid
  namespace per call would need privileges the zygote deliberately does not hold. The zygote is
  non-dumpable, so a call running as the same uid cannot ptrace it or reach its pipes.
* **JavaScript and TypeScript run in single-use Node workers**, pre-started per memory size inside
  their own sandbox and waiting on stdin; Node cannot fork, so each call takes a fresh process.
  TypeScript goes through ``module.stripTypeScriptTypes``; ``prlimit`` sets the rlimits.
* **The host side never trusts what comes back:** frames are size-capped, streams are cut at
  ``max_output_bytes`` (the worker drains the rest so the tool never blocks), statuses other than
  succeeded/failed/killed are decided by the host, and a worker that misses its deadline is killed
  from outside: killing bubblewrap kills its namespace's init, and with it every process inside.
* **As root, sandboxes start as the host's nobody** so that uid 65534 inside maps to an
  unprivileged host uid (mapped to root it would own every root file it can see).
* **Without bubblewrap** (``isolation="auto"`` only) the same workers run as plain processes as
  nobody (when root) with rlimits, a new session and process-tree killing: the Python zygote still
  reaps double-forked orphans as their subreaper, but Node descendants that detach and lose their
  parent can escape, files outside the work dir are visible, the network is reachable, and
  RLIMIT_NPROC is shared by every process of the user. ``metrics.isolation`` says ``process``.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import marshal
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from toolrt.adapters.local.sandbox_env import (
    NOBODY,
    bwrap_check,
    bytecode_magic,
    drop_to_nobody,
    find_bwrap,
    find_python,
    namespace_args,
    probe_environment,
)
from toolrt.adapters.node import find_node
from toolrt.domain import (
    ExecutionError,
    ExecutionFailure,
    ExecutionMetrics,
    ExecutionStatus,
    IsolationLevel,
    Language,
)
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

__all__ = ["SubprocessSandbox", "probe_environment"]

log = structlog.get_logger()

# Node pools kept at once (each holds `workers` pre-started processes): the most recently used sizes.
MAX_NODE_POOLS = 6

_ISOLATION_CHOICES = ("auto", "strict")
_TMP_SIZE_BYTES = 64 * 1024 * 1024
_NODE_VIRTUAL_RESERVE_MB = 2048  # V8 reserves address space up front; the heap itself is capped apart
_CANCEL_POLL_S = 0.05
_GRACE_S = 3.0  # past the deadline, a worker that has not answered is killed from outside
_MIN_FRAME_CAP = 1 << 20
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()
_STATUSES_FROM_WORKER = {"succeeded", "failed", "killed"}


def _harness(name: str) -> str:
    return resources.files("toolrt.adapters.local").joinpath("harness", name).read_text(encoding="utf-8")


def _zygote_boot(source: str, python: Path) -> list[str]:
    """``-c`` arguments that start the zygote: its bytecode when the sandbox's Python reads ours.

    Compiling the zygote costs a cold start about 3 ms; when both interpreters share a bytecode
    magic number, the code object is compiled here once and passed as hex (it is host-made, so
    ``marshal`` is safe), otherwise the source is passed.
    """
    if bytecode_magic(python) != importlib.util.MAGIC_NUMBER:
        return [source]
    code = marshal.dumps(compile(source, "python_zygote.py", "exec"))
    boot = "import marshal, sys\ncode = bytes.fromhex(sys.argv.pop(1))\nexec(marshal.loads(code))\n"
    return [boot, code.hex()]


def _cap_text(data: bytes, cap: int) -> tuple[str, bool]:
    """Decode at most ``cap`` bytes, never returning more than ``cap`` bytes of UTF-8."""
    text = data[:cap].decode("utf-8", "replace")
    encoded = text.encode()
    if len(encoded) > cap:
        text = encoded[:cap].decode("utf-8", "ignore")
    return text, len(data) > cap


class _Worker:
    """One sandboxed process (a bubblewrap instance, or a bare process without namespaces)."""

    def __init__(self, proc: subprocess.Popen[bytes], scratch: Path | None) -> None:
        self.proc = proc
        self.scratch = scratch
        self.dead = False

    def signal_kill(self) -> None:
        """Send SIGKILL to the whole tree without waiting: the session and, in bubblewrap, its namespace."""
        if not self.dead:
            self.dead = True
            # Find the tree before the group dies: detached processes would be re-parented away.
            tree = _descendants(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def kill(self) -> None:
        """Kill the whole tree and reap it; closes the pipes and removes the scratch dir."""
        self.signal_kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("sandbox worker did not exit after SIGKILL", pid=self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def _descendants(root: int) -> list[int]:
    """Host pids below ``root`` (read from /proc; used to kill detached processes without namespaces)."""
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _read_exact(fd: int, n: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class _PythonZygote(_Worker):
    """A pre-started Python zygote; one call at a time, each in a freshly forked child."""

    def __init__(self, proc: subprocess.Popen[bytes], scratch: Path | None) -> None:
        super().__init__(proc, scratch)
        assert proc.stdin is not None and proc.stdout is not None
        self._in = proc.stdin.fileno()
        self._out = proc.stdout.fileno()
        self._seq = 0

    def wait_ready(self, timeout: float) -> None:
        frame = self._read_frame(time.monotonic() + timeout, _MIN_FRAME_CAP)
        if not isinstance(frame, dict) or not frame.get("ready"):
            detail = self._stderr_tail()
            self.kill()
            raise ExecutionError(f"the Python sandbox worker did not start: {detail or 'no reason given'}")

    def _stderr_tail(self) -> str:
        if self.proc.stderr is None or not select.select([self.proc.stderr], [], [], 0.2)[0]:
            return ""
        return os.read(self.proc.stderr.fileno(), 4096).decode(errors="replace").strip()[-500:]

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view):]

    def _read_frame(self, deadline: float, cap: int) -> Any:
        head = _read_exact(self._out, 4, deadline)
        if head is None:
            return None
        size = struct.unpack(">I", head)[0]
        if size > cap:
            return None
        body = _read_exact(self._out, size, deadline)
        return None if body is None else json.loads(body)

    def call(self, request: SandboxRequest, cancel: CancelSignal | None) -> tuple[dict[str, Any] | None, str | None]:
        """Run one call; returns the worker's document, or None and the status the host decided."""
        self._seq += 1
        seq = self._seq
        self._write_all(_frame({
            "id": seq, "code": request.code, "entrypoint": request.entrypoint, "params": request.params,
            "timeout_s": request.timeout_s, "memory_mb": request.memory_mb,
            "max_output_bytes": request.max_output_bytes,
        }))
        hard_deadline = time.monotonic() + request.timeout_s + _GRACE_S
        cancelled_at: float | None = None
        cap = 4 * request.max_output_bytes + 2 * max(request.max_output_bytes, _MIN_FRAME_CAP) + 65536
        while True:
            now = time.monotonic()
            if now >= hard_deadline:
                return None, "cancelled" if cancelled_at is not None else "timed_out"
            wait = hard_deadline - now
            if cancel is not None and cancelled_at is None:
                wait = min(wait, _CANCEL_POLL_S)
            if select.select([self._out], [], [], wait)[0]:
                doc = self._read_frame(hard_deadline, cap)
                if not isinstance(doc, dict):
                    return None, "cancelled" if cancelled_at is not None else "crashed"
                return doc, None
            if cancel is not None and cancelled_at is None and cancel.is_set():
                cancelled_at = time.monotonic()
                self._write_all(_frame({"cancel": seq}))
                hard_deadline = min(hard_deadline, cancelled_at + _GRACE_S)


def _frame(doc: dict[str, Any]) -> bytes:
    """A request frame for the zygote: host-made, so ``marshal`` (cheap to load in a cold zygote) is safe."""
    body = marshal.dumps(doc)
    return struct.pack(">I", len(body)) + body


class _NodeWorker(_Worker):
    """A pre-started single-use Node process waiting for its one request on stdin."""

    def __init__(self, proc: subprocess.Popen[bytes], scratch: Path | None, result_fd: int) -> None:
        super().__init__(proc, scratch)
        self.result_fd = result_fd

    def kill(self) -> None:
        super().kill()
        if self.result_fd >= 0:
            os.close(self.result_fd)
            self.result_fd = -1

    def call(self, request: SandboxRequest, cancel: CancelSignal | None) -> tuple[dict[str, Any], str | None, bytes, bytes]:
        """Send the request, collect the result and the streams (each capped), and stop the worker."""
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        _limit_cpu(self.proc.pid, request.timeout_s)
        body = json.dumps({
            "code": request.code, "entrypoint": request.entrypoint, "params": request.params,
            "language": request.language.value,
        }).encode()
        deadline = time.monotonic() + request.timeout_s
        outcome: str | None = None
        try:
            self.proc.stdin.write(body)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        out_fd, err_fd, res_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno(), self.result_fd
        cap = request.max_output_bytes
        caps = {out_fd: cap + 1, err_fd: cap + 1, res_fd: max(cap, _MIN_FRAME_CAP) + 1}
        bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
        open_fds = set(caps)
        while res_fd in open_fds:
            now = time.monotonic()
            if now >= deadline:
                outcome = "timed_out"
                break
            if cancel is not None and cancel.is_set():
                outcome = "cancelled"
                break
            wait = deadline - now if cancel is None else min(deadline - now, _CANCEL_POLL_S)
            ready, _, _ = select.select(list(open_fds), [], [], wait)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                elif len(bufs[fd]) < caps[fd]:
                    bufs[fd] += chunk[: caps[fd] - len(bufs[fd])]
        if outcome is None:
            # Node writes to pipes synchronously, so what the tool printed is already in them.
            while open_fds - {res_fd}:
                ready, _, _ = select.select(list(open_fds - {res_fd}), [], [], 0)
                if not ready:
                    break
                for fd in ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        open_fds.discard(fd)
                    elif len(bufs[fd]) < caps[fd]:
                        bufs[fd] += chunk[: caps[fd] - len(bufs[fd])]
                    else:
                        open_fds.discard(fd)  # capped: the rest is dropped with the worker
        doc: dict[str, Any] = {}
        if outcome is None and 0 < len(bufs[res_fd]) < caps[res_fd]:
            try:
                parsed = json.loads(bytes(bufs[res_fd]))
            except ValueError:
                parsed = None
            # The tool can write to the result fd itself: keep only what a tool may say.
            doc = _worker_fields(parsed) if isinstance(parsed, dict) else {}
        elif outcome is None and len(bufs[res_fd]) >= caps[res_fd]:
            doc = {"status": "killed", "limit": "output", "error": {
                "type": "OutputLimitExceeded", "message": f"the return value is larger than {caps[res_fd] - 1} bytes"}}
        doc["cpu_ms"], doc["max_rss_kb"] = _tree_usage(self.proc.pid)  # measured here, never reported
        return doc, outcome, bytes(bufs[out_fd]), bytes(bufs[err_fd])


def _tree_usage(root: int) -> tuple[float, int]:
    """CPU ms and peak RSS (kB) of the processes below ``root``, read from /proc before they are killed."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    peak = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) * 1000.0 / ticks
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    return cpu, peak


def _limit_cpu(root: int, timeout_s: float) -> None:
    """Give a pre-started Node worker the CPU limit of the call it is about to serve."""
    import resource

    seconds = math.ceil(timeout_s) + 2
    for pid in [root, *_descendants(root)]:
        try:
            resource.prlimit(pid, resource.RLIMIT_CPU, (seconds, seconds + 1))
        except (ProcessLookupError, PermissionError, OSError):
            pass


class _Pool:
    """Idle workers of one kind, topped up in the background to ``size``."""

    def __init__(self, size: int, factory: Callable[[], _Worker], spawner: ThreadPoolExecutor) -> None:
        self._size = size
        self._factory = factory
        self._spawner = spawner
        self._idle: collections.deque[_Worker] = collections.deque()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False

    def take(self, refill: bool) -> _Worker:
        """An idle worker if there is one, else a freshly started one; ``refill`` tops the pool up."""
        with self._lock:
            worker = self._idle.popleft() if self._idle else None
        if refill:
            self.fill()
        return worker if worker is not None else self._factory()

    def give_back(self, worker: _Worker) -> bool:
        """Keep a still-usable worker (zygotes) when the pool has room; False means the caller kills it."""
        with self._lock:
            if not self._closed and len(self._idle) + self._pending < self._size:
                self._idle.append(worker)
                return True
        return False

    def fill(self) -> None:
        with self._lock:
            missing = self._size - len(self._idle) - self._pending
            if self._closed or missing <= 0:
                return
            self._pending += missing
        for _ in range(missing):
            try:
                self._spawner.submit(self._spawn_one)
            except RuntimeError:  # the executor is shutting down
                with self._lock:
                    self._pending -= 1

    def _spawn_one(self) -> None:
        try:
            worker = self._factory()
        except Exception as exc:  # a failed refill must not break callers; the next take() retries
            with self._lock:
                self._pending -= 1
                closed = self._closed
            if not closed:  # a pool closed while a worker was starting is not worth a warning
                log.warning("could not pre-start a sandbox worker", error=str(exc))
            return
        with self._lock:
            self._pending -= 1
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
        for worker in idle:
            worker.kill()


class SubprocessSandbox:
    """Runs Python, JavaScript and TypeScript tools in bubblewrap sandboxes from pre-started workers.

    ``isolation="strict"`` refuses to start without working bubblewrap namespaces (raises
    :class:`~toolrt.domain.ExecutionError`); ``"auto"`` falls back to process isolation, reports
    ``IsolationLevel.PROCESS`` in every result and logs one warning. ``workers`` idle workers are
    kept ready per pool (one Python pool, one Node pool per language and memory size). Thread-safe.
    """

    def __init__(
        self, isolation: str = "auto", workers: int = 2, *, bwrap: bool | None = None, tmp_size_mb: int = 64
    ) -> None:
        """``bwrap=None`` probes the machine; ``False`` forces process isolation (``strict`` then refuses)."""
        if isolation not in _ISOLATION_CHOICES:
            raise ExecutionError(f"isolation must be one of {', '.join(_ISOLATION_CHOICES)}, got {isolation!r}")
        if workers < 0:
            raise ExecutionError(f"workers must be zero or more, got {workers}")
        works, why = bwrap_check() if bwrap is not False else (False, "bubblewrap was switched off (bwrap=False)")
        if not works and isolation == "strict":
            raise ExecutionError(f"isolation='strict' needs bubblewrap namespaces, which are unavailable: {why}")
        if not works:
            with _WARN_LOCK:
                if why not in _WARNED:
                    _WARNED.add(why)
                    log.warning("sandbox running without namespaces: rlimits and process-group control only",
                                reason=why)
        self._namespaces = works
        self._workers = workers
        self._tmp_size = tmp_size_mb * 1024 * 1024
        self._python, self._python_prefix = find_python()
        self._node = find_node()
        self._bwrap = find_bwrap()
        self._prlimit = shutil.which("prlimit")
        self._python_src = _harness("python_zygote.py")
        self._python_boot = _zygote_boot(self._python_src, self._python)
        self._node_src = _harness("node_worker.js") if self._node else ""
        self._spawner = ThreadPoolExecutor(max_workers=2, thread_name_prefix="toolrt-sandbox-spawn")
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._closed = False
        self._python_pool = _Pool(workers, self._start_zygote, self._spawner)
        # Least recently used first: one pool per (language, memory size) would otherwise grow with
        # every memory size agents ask for, each holding pre-started Node processes.
        self._node_pools: collections.OrderedDict[tuple[Language, int], _Pool] = collections.OrderedDict()
        self._python_pool.fill()

    # -- the Sandbox port ---------------------------------------------------------------------------

    @property
    def isolation(self) -> IsolationLevel:
        return IsolationLevel.NAMESPACES if self._namespaces else IsolationLevel.PROCESS

    def supports(self, language: Language) -> bool:
        if language is Language.PYTHON:
            return True
        return self._node is not None

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        if self._closed:
            raise ExecutionError("the sandbox is closed")
        if not self.supports(request.language):
            raise ExecutionError(
                f"cannot run {request.language.value}: Node.js was not found (install toolrt[js] or set TOOLRT_NODE)"
            )
        bound = log.bind(execution_id=request.execution_id, language=request.language.value)
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return self._result({"status": "cancelled"}, None, started, b"", b"", request)
        if request.language is Language.PYTHON:
            result = self._run_python(request, cancel, started)
        else:
            result = self._run_node(request, cancel, started)
        bound.debug("sandbox run finished", status=result.status.value, wall_ms=result.metrics.wall_ms)
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = [self._python_pool, *self._node_pools.values()]
        for pool in pools:
            pool.close()
        self._spawner.shutdown(wait=True, cancel_futures=True)
        for pool in pools:
            pool.close()
        with self._lock:
            live, self._live = list(self._live), set()
        for worker in live:
            worker.kill()

    def __enter__(self) -> SubprocessSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Python -------------------------------------------------------------------------------------

    def _run_python(self, request: SandboxRequest, cancel: CancelSignal | None, started: float) -> SandboxResult:
        # Zygotes are reused: the pool is only refilled when one is retired.
        worker = self._python_pool.take(refill=False)
        assert isinstance(worker, _PythonZygote)
        try:
            doc, decided = worker.call(request, cancel)
        except OSError as exc:
            doc, decided = None, "crashed"
            log.warning("python sandbox worker failed", error=str(exc))
        if doc is None or worker.dead:
            self._retire(worker)
            self._python_pool.fill()
            doc = {"status": decided if decided in ("timed_out", "cancelled") else "failed"}
            if decided == "crashed":
                doc["error"] = {"type": "SandboxCrashed", "message": "the sandbox worker died during the call"}
        elif not self._python_pool.give_back(worker):
            self._retire_later(worker)
        if isinstance(doc.get("result"), str):
            doc.update(_parse_result(doc.pop("result")))
        out = str(doc.pop("stdout", "")).encode()
        err = str(doc.pop("stderr", "")).encode()
        return self._result(doc, decided, started, out, err, request)

    def _start_zygote(self) -> _Worker:
        scratch = None if self._namespaces else self._scratch_dir(workdir=False)
        base = "/tmp" if scratch is None else str(scratch)
        mode = "ns" if self._namespaces else "proc"
        cmd = [str(self._python), "-I", "-S", "-c", *self._python_boot, mode, base]
        try:
            proc = self._spawn(cmd, [self._python_prefix], scratch, pass_fds=())
        except BaseException:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        worker = _PythonZygote(proc, scratch)
        self._track(worker)
        worker.wait_ready(timeout=30)
        return worker

    # -- JavaScript / TypeScript -------------------------------------------------------------------

    def _node_pool(self, language: Language, memory_mb: int) -> _Pool:
        key = (language, memory_mb)
        evicted: list[_Pool] = []
        with self._lock:
            pool = self._node_pools.get(key)
            if pool is None:
                pool = _Pool(self._workers, lambda: self._start_node(language, memory_mb), self._spawner)
                self._node_pools[key] = pool
                while len(self._node_pools) > MAX_NODE_POOLS:
                    evicted.append(self._node_pools.popitem(last=False)[1])
            else:
                self._node_pools.move_to_end(key)
        for old in evicted:
            old.close()  # its idle workers are killed; a call holding one of its workers finishes
        return pool

    def _run_node(self, request: SandboxRequest, cancel: CancelSignal | None, started: float) -> SandboxResult:
        pool = self._node_pool(request.language, request.memory_mb)
        # Refill after the call, not during it: a Node start competes with the call for the CPU.
        worker = pool.take(refill=False)
        assert isinstance(worker, _NodeWorker)
        try:
            doc, decided, out, err = worker.call(request, cancel)
        except BaseException:
            self._retire(worker)
            raise
        if decided is None and "status" not in doc:
            # It died without a result: wait for its exit status to say why.
            self._retire(worker)
            doc.update(_node_death(worker.proc.returncode, err, request.memory_mb))
        else:
            self._retire_later(worker)
        pool.fill()
        return self._result(doc, decided, started, out, err, request, worker.proc.returncode)

    def _start_node(self, language: Language, memory_mb: int) -> _Worker:
        assert self._node is not None
        scratch = None if self._namespaces else self._scratch_dir(workdir=True)
        cmd = [
            str(self._node), f"--max-old-space-size={memory_mb}", "--disable-warning=ExperimentalWarning",
            "-e", self._node_src,
        ]
        read_fd, write_fd = os.pipe()
        cmd += [language.value, str(write_fd)]  # what to prepare for; the fd it writes its result to
        if self._prlimit:
            virtual = (memory_mb + _NODE_VIRTUAL_RESERVE_MB) * 1024 * 1024
            cmd = [self._prlimit, f"--as={virtual}", "--nproc=64", "--nofile=256", "--core=0",
                   f"--fsize={16 * 1024 * 1024}", "--cpu=600", "--", *cmd]
        try:
            proc = self._spawn(cmd, [self._node.parent.parent], scratch, pass_fds=(write_fd,), workdir=True)
        except BaseException:
            os.close(read_fd)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        finally:
            os.close(write_fd)
        worker = _NodeWorker(proc, scratch, read_fd)
        self._track(worker)
        ready = select.select([read_fd], [], [], 30)[0] and os.read(read_fd, 1) == b"\n"
        if not ready:
            assert proc.stderr is not None
            detail = ""
            if select.select([proc.stderr], [], [], 0.2)[0]:
                detail = os.read(proc.stderr.fileno(), 4096).decode(errors="replace").strip()[-500:]
            self._retire(worker)
            raise ExecutionError(f"the Node sandbox worker did not start: {detail or 'no reason given'}")
        return worker

    # -- shared -------------------------------------------------------------------------------------

    def _scratch_dir(self, workdir: bool) -> Path:
        """A private host directory for a worker without namespaces (``workdir``: with ``work/`` inside)."""
        path = Path(tempfile.mkdtemp(prefix="toolrt-sandbox-"))
        if drop_to_nobody():
            os.chown(path, NOBODY, NOBODY)
        if workdir:
            (path / "work").mkdir()
            if drop_to_nobody():
                os.chown(path / "work", NOBODY, NOBODY)
        return path

    def _spawn(self, cmd: list[str], ro: list[Path], scratch: Path | None, pass_fds: tuple[int, ...],
               workdir: bool = False) -> subprocess.Popen[bytes]:
        identity: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if drop_to_nobody() else {}
        if self._namespaces:
            assert self._bwrap is not None
            args = [str(self._bwrap), *namespace_args(ro, self._tmp_size, "/tmp/work" if workdir else "/tmp")]
            full = [*args, "--", *cmd]
            cwd = "/"
        else:
            assert scratch is not None
            full = cmd
            cwd = str(scratch / "work") if workdir else str(scratch)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        if not self._namespaces and scratch is not None:
            env.update(HOME=cwd, TMPDIR=str(scratch))
        with self._lock:
            if self._closed:
                raise ExecutionError("the sandbox is closed")
        return subprocess.Popen(
            full, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
            pass_fds=pass_fds, start_new_session=True, **identity,
        )

    def _track(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
                raise ExecutionError("the sandbox is closed")
            self._live.add(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)

    def _retire_later(self, worker: _Worker) -> None:
        """Kill a worker now but reap it off the caller's path (the SIGKILL itself is immediate)."""
        worker.signal_kill()
        try:
            self._spawner.submit(self._retire, worker)
        except RuntimeError:  # shutting down: reap here
            self._retire(worker)

    def _result(self, doc: dict[str, Any], decided: str | None, started: float, out: bytes, err: bytes,
                request: SandboxRequest, returncode: int | None = None) -> SandboxResult:
        wall_ms = (time.perf_counter() - started) * 1000.0
        stdout, out_cut = _cap_text(out, request.max_output_bytes)
        stderr, err_cut = _cap_text(err, request.max_output_bytes)
        status_text = decided if decided in ("timed_out", "cancelled") else str(doc.get("status", "failed"))
        if status_text not in _STATUSES_FROM_WORKER | {"timed_out", "cancelled"}:
            status_text = "failed"
        status = ExecutionStatus(status_text)
        output = None
        error = None
        if status is ExecutionStatus.SUCCEEDED:
            try:
                output = json.loads(doc.get("output", "null"))
            except (TypeError, ValueError):
                status = ExecutionStatus.FAILED
                error = ExecutionFailure("SandboxProtocolError", "the worker returned an unreadable value")
        elif status is ExecutionStatus.TIMED_OUT:
            error = ExecutionFailure("TimeoutError", f"the call ran longer than its {request.timeout_s:g} s timeout")
        elif status is ExecutionStatus.CANCELLED:
            error = ExecutionFailure("Cancelled", "the call was cancelled")
        if error is None and isinstance(doc.get("error"), dict):
            e = doc["error"]
            error = ExecutionFailure(str(e.get("type", "Error"))[:200], str(e.get("message", ""))[:4000],
                                     str(e.get("traceback", ""))[:16000])
        if error is None and status is not ExecutionStatus.SUCCEEDED:
            error = ExecutionFailure("Error", "the call did not complete")
        limit = doc.get("limit") if status is ExecutionStatus.KILLED else None
        exit_code = doc.get("exit_code", returncode)
        metrics = ExecutionMetrics(
            wall_ms=wall_ms,
            cpu_ms=_number(doc.get("cpu_ms"), float),
            max_rss_kb=int(_number(doc.get("max_rss_kb"), int)),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            isolation=self.isolation,
            limit=str(limit) if limit else None,
        )
        return SandboxResult(
            status=status, output=output, stdout=stdout, stderr=stderr,
            stdout_truncated=out_cut or bool(doc.get("stdout_truncated")),
            stderr_truncated=err_cut or bool(doc.get("stderr_truncated")),
            error=error, metrics=metrics,
        )


def _parse_result(text: str) -> dict[str, Any]:
    """The tool child's own result document (untrusted: the tool could have written it)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return {"status": "failed", "error": {"type": "SandboxProtocolError", "message": "the tool wrote an unreadable result"}}
    return _worker_fields(parsed)


def _number(value: Any, kind: Callable[[Any], Any]) -> Any:
    """``kind(value)``, or 0 when the value is missing or not a number (never an exception)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return kind(0)
    try:
        return kind(value)
    except (OverflowError, ValueError):
        return kind(0)


def _worker_fields(parsed: dict[str, Any]) -> dict[str, Any]:
    """Only status, output, error and limit: metrics and truncation flags are the host's to say."""
    keep = ("status", "output", "error", "limit")
    doc = {k: parsed[k] for k in keep if k in parsed}
    if doc.get("status") not in _STATUSES_FROM_WORKER:
        doc["status"] = "failed"  # timed_out and cancelled are for the host and the zygote to say
    return doc


def _node_death(returncode: int | None, err: bytes, memory_mb: int) -> dict[str, Any]:
    """Explain a Node worker that died without a result: memory, CPU, or a crash."""
    text = err.decode(errors="replace")
    if "heap out of memory" in text or "Fatal process out of memory" in text:
        return {"status": "killed", "limit": "memory", "error": {
            "type": "MemoryError", "message": f"memory limit of {memory_mb} MB exceeded"}}
    if returncode is not None and returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return {"status": "killed", "limit": "cpu", "error": {"type": "CpuLimitExceeded", "message": "CPU time limit exceeded"}}
    return {"status": "failed", "error": {
        "type": "NoResult", "message": f"the Node process ended (code {returncode}) before returning a value: {text[-500:]}"}}
