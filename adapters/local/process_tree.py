"""Host-side views of a worker's process tree, read from /proc: descendants, CPU and memory used."""

from __future__ import annotations

import math
import os
import resource
import select
import time

__all__ = ["descendants", "limit_cpu", "read_exact", "tree_usage"]


def processes_of_user(uid: int) -> int:
    """How many processes (and threads, as RLIMIT_NPROC counts them) the user ``uid`` runs now."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def children(pid: int) -> list[int]:
    """Host pids of the processes ``pid`` started (of any of its threads), read from /proc."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(k) for k in f.read().split()]
        except OSError:
            continue
    return found


def descendants(root: int) -> list[int]:
    """Host pids below ``root`` (read from /proc; used to kill detached processes without namespaces)."""
    found: list[int] = []
    todo = [root]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def tree_usage(root: int) -> tuple[float, int]:
    """CPU ms and the summed peak RSS (kB) of the processes below ``root``, read before they are killed.

    The peaks are added up: the call's processes together are what the memory budget bounds.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    total = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) * 1000.0 / ticks
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return cpu, total


def limit_cpu(root: int, timeout_s: float) -> None:
    """Give a pre-started worker the CPU limit of the call it is about to serve."""
    seconds = math.ceil(timeout_s) + 2
    for pid in [root, *descendants(root)]:
        try:
            resource.prlimit(pid, resource.RLIMIT_CPU, (seconds, seconds + 1))
        except (ProcessLookupError, PermissionError, OSError):
            pass


def read_exact(fd: int, n: int, deadline: float) -> bytes | None:
    """Exactly ``n`` bytes from ``fd`` before ``deadline`` (monotonic), or None."""
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
