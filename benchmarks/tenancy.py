"""Many agents on one runtime: a new agent's first call, and 300 agents round-robin, against one agent warm.

Run: ``python -m benchmarks tenancy [--agents 300] [--rounds 2] [--tenancy agent|shared] [--max-zygotes N]``
(on a runtime that knows no ``sandbox_max_zygotes``, leave that out). Everything goes
through ``rt.execute_tool`` on the local profile, as agents call tools. Measured in one run:

* **warm**: one agent calling its own private tool and one public tool in turn (p50, p95);
* **first call**: agents that never called before, each calling its own tool once, a moment apart (as
  agents arrive), against the warm p50;
* **many agents**: ``--agents`` agents round-robin, each calling its own private tool and the public
  one, against the warm p50: p50, p95, and the memory of the sandbox's processes (the largest
  sample while the agents run and the last): their proportional set size (PSS, shared pages split
  between the processes that share them), their resident size (RSS, shared pages counted in each),
  and what the sandbox's memory cgroups are charged (page tables and kernel objects included).

CPU per call is counted by cgroup accounting: this process moves into a ``cpuacct`` (cgroup v1) or v2
cgroup of its own before anything starts, and every process the runtime starts is charged there,
exited or not. Without a writable cgroup it falls back to the process tree's counters (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._stats import CpuMeter, p, quiet_logs

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
FIRST_CALL_AGENTS = 20
FIRST_CALL_PAUSE_S = 0.25  # agents arrive apart: the pause lets the runtime do what it does between them


def _tool(name: str, body: str) -> dict[str, Any]:
    return {"name": name, "description": f"{name}.", "language": "python", "code": body, "input_schema": SCHEMA}


def _private(i: int) -> dict[str, Any]:
    # Each agent's own code: distinct, as real agents' tools are.
    return _tool(f"own{i}", f"def handler(n):\n    return n + {i}\n")


PUBLIC = _tool("shared", "import json\n\ndef handler(n):\n    return json.dumps({'n': n})\n")


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    parents.setdefault(int(f.read().rsplit(b")", 1)[1].split()[1]), []).append(int(name))
            except OSError:
                continue
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def sandbox_memory_mb() -> tuple[float, float, float]:
    """PSS and RSS of every process below this one, and what the sandbox's memory cgroups are charged, in MB."""
    pss = rss = 0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
    charged = 0
    for root in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        if not root.is_dir():
            continue
        for group in root.rglob(f"toolrt-{os.getpid()}-*"):
            for name in ("memory.usage_in_bytes", "memory.current"):
                with contextlib.suppress(OSError):
                    charged += int((group / name).read_text())
        if charged:
            break
    return pss / 1024, rss / 1024, charged / (1 << 20)


def _pct(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), p(times, 95)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    result = call()
    elapsed = (time.perf_counter() - started) * 1000
    assert result.ok, result.error
    return elapsed


@contextlib.contextmanager
def _runtime(tenancy: str | None, max_zygotes: int | None) -> Iterator[Any]:
    import toolrt

    settings: dict[str, Any] = {} if tenancy is None else {"sandbox_tenancy": tenancy}
    if max_zygotes is not None:
        # Room for every pool: each zygote holds about 2 MB of its own.
        settings.update(sandbox_max_zygotes=max_zygotes, sandbox_zygote_memory_mb=max(512, 4 * max_zygotes))
    with (
        tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data,
        toolrt.connect("local", data_dir=data, **settings) as rt,
    ):
        yield rt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tenancy", default=None, help="sandbox_tenancy (default: the runtime's default)")
    parser.add_argument("--max-zygotes", type=int, default=None, help="sandbox_max_zygotes (default: the runtime's)")
    parser.add_argument("--quick", action="store_true", help="fewer agents and calls")
    args = parser.parse_args()
    quiet_logs()
    agents = min(args.agents, 60) if args.quick else args.agents
    warm_n = 60 if args.quick else 200
    meter = CpuMeter()
    try:
        with _runtime(args.tenancy, args.max_zygotes) as rt:
            public = rt.register_tool("publisher", PUBLIC, "public").tool_id
            names = [f"agent-{i}" for i in range(agents + FIRST_CALL_AGENTS + 1)]
            own = {name: rt.register_tool(name, _private(i)).tool_id for i, name in enumerate(names)}
            guards = getattr(rt, "sandbox_guards", None)
            solo, newcomers, crowd = names[0], names[1 : 1 + FIRST_CALL_AGENTS], names[1 + FIRST_CALL_AGENTS :]

            # One agent, warm: its own tool and the public one in turn.
            for _ in range(10):
                _timed(lambda: rt.execute_tool(solo, own[solo], {"n": 1}))
                _timed(lambda: rt.execute_tool(solo, public, {"n": 1}))
            cpu = meter.seconds()
            warm: list[float] = []
            for k in range(warm_n):
                tool = own[solo] if k % 2 == 0 else public
                warm.append(_timed(lambda tool=tool: rt.execute_tool(solo, tool, {"n": 1})))
            warm_cpu_ms = (meter.seconds() - cpu) / warm_n * 1000
            warm_p50, warm_p95 = _pct(warm)

            # New agents: the first call each makes, a moment apart.
            first: list[float] = []
            for name in newcomers:
                time.sleep(FIRST_CALL_PAUSE_S)
                first.append(_timed(lambda name=name: rt.execute_tool(name, own[name], {"n": 1})))
            first_p50, first_p95 = _pct(first)

            # Many agents round-robin, each its own tool then the public one.
            crowd_times: list[float] = []
            peak = (0.0, 0.0, 0.0)
            cpu = meter.seconds()
            started = time.perf_counter()
            for _ in range(args.rounds):
                for k, name in enumerate(crowd):
                    crowd_times.append(_timed(lambda name=name: rt.execute_tool(name, own[name], {"n": 1})))
                    crowd_times.append(_timed(lambda name=name: rt.execute_tool(name, public, {"n": 1})))
                    if k % 25 == 0:
                        sample = sandbox_memory_mb()
                        peak = tuple(max(a, b) for a, b in zip(peak, sample, strict=True))  # type: ignore[assignment]
            elapsed = time.perf_counter() - started
            crowd_cpu_ms = (meter.seconds() - cpu) / len(crowd_times) * 1000
            last = sandbox_memory_mb()
            crowd_p50, crowd_p95 = _pct(crowd_times)
            per_round = 2 * len(crowd)
            later = crowd_times[per_round:] or crowd_times
    finally:
        meter.close()

    cap = args.max_zygotes or "default"
    print(
        f"tenancy: {args.tenancy or 'default'}; max zygotes: {cap}; CPU counted by {meter.how}; {os.cpu_count()} cores"
    )
    if guards is not None:
        print(f"sandbox: {guards}")
    print(f"{'case':58} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>8}  notes")
    print(
        f"{'one agent warm (own tool, public tool in turn)':58} {warm_p50:8.2f} {warm_p95:8.2f} {1.0:7.2f}x  {warm_cpu_ms:.2f} ms CPU per call"
    )
    print(
        f"{f'a new agent first call ({len(newcomers)} agents, {FIRST_CALL_PAUSE_S:g} s apart)':58} "
        f"{first_p50:8.2f} {first_p95:8.2f} {first_p50 / warm_p50:7.2f}x  goal: at most 3x warm"
    )
    print(
        f"{f'{len(crowd)} agents round-robin, {args.rounds} rounds ({len(crowd_times)} calls)':58} "
        f"{crowd_p50:8.2f} {crowd_p95:8.2f} {crowd_p50 / warm_p50:7.2f}x  goal: at most 2x warm; "
        f"{len(crowd_times) / elapsed:.0f} calls/s, {crowd_cpu_ms:.2f} ms CPU per call"
    )
    print(
        f"{'  of which round 1 (each pool new) / rounds 2+':58} "
        f"{statistics.median(crowd_times[:per_round]):8.2f} {statistics.median(later):8.2f} "
        f"{statistics.median(later) / warm_p50:7.2f}x  p50s; ratio: rounds 2+ against warm"
    )
    print(
        f"sandbox memory while {len(crowd)} agents ran: largest PSS {peak[0]:.0f} MB, RSS {peak[1]:.0f} MB, "
        f"cgroups {peak[2]:.0f} MB; at the end PSS {last[0]:.0f} MB, RSS {last[1]:.0f} MB, cgroups {last[2]:.0f} MB"
    )


if __name__ == "__main__":
    main()
