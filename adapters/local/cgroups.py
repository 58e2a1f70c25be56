"""A memory and process budget per call: every process of one call, together, stays within ``memory_mb``.

Why cgroups: rlimits are per process, so a call with ``memory_mb=128`` that forks eight children could
hold a gigabyte. A memory cgroup counts every page the call's processes touch (their heaps, the files
they write to the sandbox's tmpfs, page tables) against one limit, and a pids cgroup caps how many
processes and threads it may have, so the kernel enforces the budget whatever the tool does.

How: each worker (a Python zygote with its sandbox, or a Node worker) gets a cgroup of its own when it
starts, before any tool code runs; every process it forks later inherits it. A zygote serves one call
at a time, so before each call the host sets the limit to what the idle zygote uses plus the call's
``memory_mb`` and resets the peak; after the call it reads the peak (the call's total, reported as
``metrics.max_rss_kb``) and the OOM-kill count (a call killed by the kernel is reported as
``killed``/``memory``). The forked child raises its own ``oom_score_adj`` so that the kernel picks the
call's processes, not the zygote.

Where: cgroup v2 (``memory.max``, ``pids.max``, ``memory.peak``, ``memory.events``) under a parent
created for this sandbox beside the root, or the cgroup v1 ``memory`` and ``pids`` hierarchies (as on
hosts that still mount them), nested under this process's own groups so that any limit placed on
toolrt itself still applies. Both need toolrt to run as root (or a delegated, writable hierarchy).
Where neither is available, :func:`detect` says why and the sandbox falls back to rlimits: a small
``RLIMIT_NPROC`` per call times ``RLIMIT_AS`` per process bounds the total (documented in docs/sandbox.md).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

__all__ = ["CallBudget", "Cgroups", "WorkerCgroup", "detect"]

from toolrt.logs import get_logger

log = get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_COUNTER = itertools.count(1)
_COUNTER_LOCK = threading.Lock()
_LIMIT_SLACK = 1 << 20  # a call's limit may sit up to 1 MiB above idle usage + memory_mb


# Plain os.open/read/write: file objects cost more than the syscalls (the files read on every call
# are kept open: see WorkerCgroup).
def _write(path: Path | str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # as a shell's `>` opens it
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path | str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _read_int(path: Path | str) -> int:
    return int(_read(path).split()[0])


def _rmdir(path: Path) -> None:
    # A memory cgroup can take a moment to go once its last process is reaped.
    for attempt in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.005 * (attempt + 1))
    log.debug("cgroup left behind", path=str(path))


class CallBudget:
    """What :meth:`WorkerCgroup.arm` measured before a call, to compare with after it."""

    __slots__ = ("baseline", "oom_kills", "own_peak")

    def __init__(self, baseline: int, oom_kills: int, own_peak: bool) -> None:
        self.baseline = baseline
        self.oom_kills = oom_kills
        self.own_peak = own_peak  # the kept memory.peak descriptor was reset: it reads the call's own peak


class WorkerCgroup:
    """One worker's cgroup (one directory on v2, a memory and a pids directory on v1).

    The files read on every call (usage, OOM events, peak) are opened once and read with
    ``pread``: a call's bookkeeping is a handful of syscalls, not an open and a close per file.
    """

    def __init__(self, version: int, memory_dir: Path, pids_dir: Path, owner: Cgroups | None = None) -> None:
        self.version = version
        self.memory_dir = memory_dir
        self.pids_dir = pids_dir
        self._owner = owner
        self._removed = False
        v2 = version == 2
        self._usage_file = str(memory_dir / ("memory.current" if v2 else "memory.usage_in_bytes"))
        self._limit_file = str(memory_dir / ("memory.max" if v2 else "memory.limit_in_bytes"))
        self._peak_file = str(memory_dir / ("memory.peak" if v2 else "memory.max_usage_in_bytes"))
        self._events_file = str(memory_dir / ("memory.events" if v2 else "memory.oom_control"))
        self._stat_file = str(memory_dir / "memory.stat")
        self._pids_max_file = str(pids_dir / "pids.max")
        self._limit: int | None = None
        self._pids_max: int | None = None
        self._fds: dict[str, int] = {}
        self._peak_resettable: bool | None = None  # v2: whether memory.peak takes a per-descriptor reset
        # OOM kills counted before the group's present worker had it (a kept group's count goes on).
        self._oom_base = 0

    def _fd(self, path: str, flags: int = os.O_RDONLY) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, flags)
        return fd

    def _pread(self, path: str) -> bytes:
        return os.pread(self._fd(path), 4096, 0)

    def _oom_kills(self) -> int:
        try:
            for line in self._pread(self._events_file).decode().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    # -- use -------------------------------------------------------------------------------------------

    def attach(self, pids: list[int]) -> None:
        """Move processes (whole thread groups) into this cgroup; a process already gone is skipped."""
        targets = [self.memory_dir] if self.version == 2 else [self.memory_dir, self.pids_dir]
        for pid in pids:
            for folder in targets:
                try:
                    _write(folder / "cgroup.procs", str(pid))
                except ProcessLookupError:
                    break
                except OSError as exc:
                    if exc.errno == 3:  # ESRCH: it exited meanwhile
                        break
                    raise

    def procs_files(self) -> list[int]:
        """Write-only descriptors of the cgroup's ``cgroup.procs`` (one per hierarchy), for a process
        that writes ``0`` to each to move itself in before it does anything else: the kernel checks
        the rights of whoever opened them (the host), not of the writer."""
        dirs = [self.memory_dir] if self.version == 2 else [self.memory_dir, self.pids_dir]
        fds: list[int] = []
        try:
            for folder in dirs:
                fds.append(os.open(folder / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def set_limits(self, memory_bytes: int, pids_max: int) -> None:
        """A fixed budget for the worker's whole life (Node workers serve one call each)."""
        _write(self._limit_file, str(memory_bytes))
        _write(self._pids_max_file, str(pids_max))
        self._limit, self._pids_max = memory_bytes, pids_max

    def usage(self) -> int:
        """Bytes charged to the cgroup now."""
        return int(self._pread(self._usage_file).split()[0])

    def reclaimable(self) -> int:
        """Bytes of page cache charged here (``active_file`` + ``inactive_file``: clean file pages the
        kernel reclaims under the limit; tmpfs pages are not among them)."""
        total = 0
        try:
            for line in self._pread(self._stat_file).splitlines():
                name, _, value = line.partition(b" ")
                if name in (b"active_file", b"inactive_file"):
                    total += int(value)
        except (OSError, ValueError):
            return 0
        return total

    def arm(self, memory_bytes: int, pids_max: int) -> CallBudget:
        """Before a call: limit = the idle zygote's memory + the call's budget; peak reset; OOM count noted.

        The idle memory is what is charged now less the page cache: files an earlier call read stay
        cached and charged here, but they are reclaimable, so counting them would hand the next call
        that much more than its budget (and let the limit creep up call after call). Whatever else a
        call held (its processes, its tmpfs files, its IPC objects) died with its namespaces."""
        usage = self.usage()
        baseline = max(0, usage - self.reclaimable())
        limit = baseline + memory_bytes
        # Rewritten only when it moves by more than a slack (the idle usage drifts by a few pages):
        # each write is a syscall on the call's path.
        if self._limit is None or abs(limit - self._limit) > _LIMIT_SLACK:
            try:
                _write(self._limit_file, str(limit))
            except OSError:
                # cgroup v1 refuses a limit below usage it cannot reclaim at once: the cache is then
                # left out of the budget's floor only as far as the kernel could drop it.
                limit = self.usage() + memory_bytes
                _write(self._limit_file, str(limit))
            self._limit = limit
        if pids_max != self._pids_max:
            _write(self._pids_max_file, str(pids_max))
            self._pids_max = pids_max
        own_peak = False
        if self.version == 1:
            _write(self._peak_file, "0")
        elif self._peak_resettable is not False:
            # memory.peak resets per open file on recent kernels: the kept descriptor, reset here,
            # then reads the call's own peak. Older kernels refuse the write: the whole peak is read.
            try:
                os.pwrite(self._fd(self._peak_file, os.O_RDWR), b"0", 0)
                own_peak = self._peak_resettable = True
            except OSError:
                self._peak_resettable = False
        return CallBudget(usage, self._oom_kills(), own_peak)

    def settle(self, budget: CallBudget) -> tuple[int, bool]:
        """After a call: the call's peak in kB (above the idle baseline) and whether the kernel OOM-killed."""
        try:
            if budget.own_peak:
                peak = int(os.pread(self._fd(self._peak_file, os.O_RDWR), 64, 0).split()[0])
            else:
                peak = _read_int(self._peak_file)
        except (OSError, ValueError, IndexError):
            peak = 0
        return max(0, peak - budget.baseline) // 1024, self._oom_kills() > budget.oom_kills

    def oom_killed(self) -> bool:
        """Whether the kernel has OOM-killed anything of this worker (Node workers: one call each)."""
        return self._oom_kills() > self._oom_base

    def peak_kb(self) -> int:
        """The whole worker's peak in kB (since it was handed this group: see ``restart``)."""
        try:
            if self._peak_resettable:
                return int(os.pread(self._fd(self._peak_file, os.O_RDWR), 64, 0).split()[0]) // 1024
            return _read_int(self._peak_file) // 1024
        except (OSError, ValueError, IndexError):
            return 0

    def empty(self) -> bool:
        """Whether no process is in the cgroup (in any of its hierarchies)."""
        folders = {self.memory_dir, self.pids_dir}
        try:
            return all(not _read(folder / "cgroup.procs").strip() for folder in folders)
        except OSError:
            return False

    def remove(self) -> None:
        """Hand the cgroup back to its sandbox for another worker once its processes are gone (it
        keeps a few empty ones: a memory cgroup is slow to create and to free), else delete it."""
        if self._removed:
            return
        self._removed = True
        if self._owner is not None and self.empty() and self._owner.keep(self):
            return
        self.delete()

    def restart(self) -> bool:
        """Make a kept group ready for another worker, possibly another agent's: its limits are set
        again before anything runs in it, and its peak and OOM count start from zero for that
        worker (else one worker's calls would report the memory and OOM kills of the last). False
        when the peak cannot be reset here (cgroup v2 without per-descriptor resets): such a group
        is not reused."""
        self._removed = False
        self._limit = self._pids_max = None
        self._oom_base = self._oom_kills()
        try:
            if self.version == 1:
                _write(self._peak_file, "0")
            else:
                os.pwrite(self._fd(self._peak_file, os.O_RDWR), b"0", 0)
                self._peak_resettable = True
        except OSError:
            return False
        return True

    def delete(self) -> None:
        """Delete the cgroup now (after its processes are gone)."""
        self._removed = True
        fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)
        _rmdir(self.memory_dir)
        if self.pids_dir != self.memory_dir:
            _rmdir(self.pids_dir)


# Empty worker cgroups a sandbox keeps for its next workers, rather than delete and create again.
KEPT_EMPTY = 16


class Cgroups:
    """The parent cgroup(s) of one sandbox; hands out one :class:`WorkerCgroup` per worker.

    A worker's cgroup, once empty, is kept (up to ``KEPT_EMPTY``) and handed to the next worker:
    its limits are set again for it, its peak and OOM count are measured from each call's start, and
    what it is still charged (page cache its last worker read) is no process's and reclaimable.
    """

    def __init__(self, version: int, memory_parent: Path, pids_parent: Path) -> None:
        self.version = version
        self.memory_parent = memory_parent
        self.pids_parent = pids_parent
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._kept: list[WorkerCgroup] = []
        self._closed = False

    def keep(self, group: WorkerCgroup) -> bool:
        """Take back an empty worker cgroup for a later worker; False when none is wanted."""
        with self._lock:
            if self._closed or len(self._kept) >= KEPT_EMPTY:
                return False
            self._kept.append(group)
            return True

    def describe(self) -> str:
        return f"cgroup v{self.version} at {self.memory_parent}"

    def worker(self) -> WorkerCgroup:
        """An empty cgroup for one worker: a kept one (see ``WorkerCgroup.restart``), or a new one."""
        with self._lock:
            kept = self._kept.pop() if self._kept else None
        if kept is not None:
            if kept.restart():
                return kept
            kept.delete()
        with self._lock:
            name = f"w{next(self._names)}"
        memory_dir = self.memory_parent / name
        pids_dir = self.pids_parent / name
        memory_dir.mkdir()
        if pids_dir != memory_dir:
            try:
                pids_dir.mkdir()
            except OSError:
                _rmdir(memory_dir)
                raise
        return WorkerCgroup(self.version, memory_dir, pids_dir, self)

    def close(self) -> None:
        """Remove the kept groups and the parent(s); the others must have been removed first."""
        with self._lock:
            self._closed = True
            kept, self._kept = self._kept, []
        for group in kept:
            group.delete()
        _rmdir(self.memory_parent)
        if self.pids_parent != self.memory_parent:
            _rmdir(self.pids_parent)


def _own_v1_path(controller: str, proc_cgroup: str) -> str | None:
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def detect(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> tuple[Cgroups | None, str]:
    """The cgroups this process can budget calls with, or None and why not.

    ``root`` and ``proc_cgroup`` (the text of ``/proc/self/cgroup``) are parameters for tests.
    """
    if os.environ.get("TOOLRT_CGROUPS", "").lower() in ("0", "off", "no", "false"):
        return None, "cgroups were switched off (TOOLRT_CGROUPS=0)"
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError as exc:
            return None, f"cannot read /proc/self/cgroup: {exc}"
    with _COUNTER_LOCK:
        name = f"toolrt-{os.getpid()}-{next(_COUNTER)}"
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
    except OSError:
        controllers = []
    if "memory" in controllers and "pids" in controllers:
        parent = root / name
        try:
            enabled = (root / "cgroup.subtree_control").read_text().split()
            missing = [c for c in ("memory", "pids") if c not in enabled]
            if missing:
                _write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            parent.mkdir()
            _write(parent / "cgroup.subtree_control", "+memory +pids")
        except OSError as exc:
            if parent.exists():
                _rmdir(parent)
            return None, f"cgroup v2 is not writable here ({exc.strerror or exc}); run as root or delegate a subtree"
        return Cgroups(2, parent, parent), "cgroup v2"
    memory_path = _own_v1_path("memory", proc_cgroup)
    pids_path = _own_v1_path("pids", proc_cgroup)
    if (root / "memory").is_dir() and (root / "pids").is_dir() and memory_path and pids_path:
        memory_parent = root / "memory" / memory_path.lstrip("/") / name
        pids_parent = root / "pids" / pids_path.lstrip("/") / name
        try:
            memory_parent.mkdir()
            pids_parent.mkdir()
        except OSError as exc:
            _rmdir(memory_parent)
            return None, f"cgroup v1 is not writable here ({exc.strerror or exc}); run as root"
        return Cgroups(1, memory_parent, pids_parent), "cgroup v1"
    return None, "no cgroup memory and pids controllers are available here"
