"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def measure(fn: Callable[[int], object], n: int, warmup: int = 3) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times unmeasured, then ``n`` times; milliseconds per call."""
    for i in range(warmup):
        fn(-1 - i)
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def p(times: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``times``."""
    if len(times) == 1:
        return times[0]
    return statistics.quantiles(times, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def row(label: str, times: list[float], baseline_p50: float | None = None) -> str:
    """One aligned line: p50, p95, calls per second, and the ratio to a baseline's p50."""
    p50 = statistics.median(times)
    ratio = f"  x{p50 / baseline_p50:6.2f} of baseline" if baseline_p50 else ""
    return f"{label:<44} p50 {p50:9.3f} ms   p95 {p(times, 95):9.3f} ms   {1000 / p50 if p50 else 0:9.1f}/s{ratio}"


def quiet_logs() -> None:
    """Keep structlog to warnings: a benchmark is an application and measures toolrt, not printing."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of process ``root`` and every process below it, reaped children's
    included (``cutime``/``cstime``): a server's own time and its sandboxes', read from ``/proc``."""
    import os

    parents: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone while listing
        parents.setdefault(int(fields[1]), []).append(int(name))
        times[int(name)] = sum(int(x) for x in fields[11:15]) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(parents.get(pid, ()))
    return total


class CpuMeter:
    """CPU seconds used by this process and every process it starts, by cgroup accounting when possible."""

    def __init__(self) -> None:
        self.how = "process tree (/proc)"
        self._file: Path | None = None
        self._group: Path | None = None
        self._scale = 1.0
        v1 = Path("/sys/fs/cgroup/cpuacct")
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        name = f"toolrt-bench-{os.getpid()}"
        with contextlib.suppress(OSError):
            if (v1 / "cpuacct.usage").exists():
                group = v1 / name
                group.mkdir()
                (group / "cgroup.procs").write_text(str(os.getpid()))
                self._group, self._file, self._scale, self.how = (
                    group,
                    group / "cpuacct.usage",
                    1e-9,
                    "cgroup v1 cpuacct",
                )
            elif v2.exists():
                group = v2.parent / name
                group.mkdir()
                (group / "cgroup.procs").write_text(str(os.getpid()))
                self._group, self._file, self.how = group, group / "cpu.stat", "cgroup v2 cpu.stat"

    def seconds(self) -> float:
        if self._file is None:
            return tree_cpu_s(os.getpid())
        text = self._file.read_text()
        if self._file.name == "cpu.stat":
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(text.split()[0]) * self._scale

    def close(self) -> None:
        if self._group is None:
            return
        parent = self._group.parent
        with contextlib.suppress(OSError):
            (parent / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(50):
            try:
                self._group.rmdir()
                return
            except OSError:
                time.sleep(0.05)
