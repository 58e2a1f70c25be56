"""Local sandbox speed: warm and cold latency and throughput per language, against same-run baselines.

Run: ``python -m benchmarks.sandbox [--quick]``. Baselines measured in the same run: a plain
``subprocess.run([python, "-c", code])`` and the same interpreter started cold inside bare bubblewrap.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.local.sandbox_env import bwrap_check, drop_to_nobody, find_bwrap, find_python, namespace_args
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest

CODE = {
    Language.PYTHON: "def handler(n):\n    return n + 1\n",
    Language.JAVASCRIPT: "function handler(p) { return p.n + 1; }\n",
    Language.TYPESCRIPT: "export function handler(p: { n: number }): number { return p.n + 1; }\n",
}


def _request(language: Language) -> SandboxRequest:
    return SandboxRequest("bench", language, CODE[language], "handler", {"n": 1}, 10.0, 256, 65536)


def _pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _timed(fn: Callable[[], object], n: int, before: Callable[[], None] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _throughput(sb: SubprocessSandbox, language: Language, seconds: float, threads: int = 2) -> float:
    req = _request(language)
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            assert sb.run(req).status is ExecutionStatus.SUCCEEDED
            counts[i] += 1

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return sum(counts) / (time.perf_counter() - t)


def _wait_for_pool(sb: SubprocessSandbox, language: Language, size: int) -> Callable[[], None]:
    def wait() -> None:
        deadline = time.monotonic() + 5
        pool = sb._node_pool("", language, 256, False)  # noqa: SLF001 - the benchmark waits for pre-started workers
        while pool.idle_count() < size and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.01)  # let the refill's own start-up settle, as between an agent's calls

    return wait


def _fork_and_reap() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    scale = 0.3 if args.quick else 1.0

    def n(base: int) -> int:
        return max(5, int(base * scale))

    rows: list[tuple[str, float, float, str]] = []

    py_code = "print(2)"
    base = _timed(lambda: subprocess.run([sys.executable, "-c", py_code], check=True, capture_output=True), n(40))
    base_p50, base_p95 = _pcts(base)
    rows.append(("baseline subprocess.run([python, -c])", base_p50, base_p95, ""))
    fork = _timed(_fork_and_reap, n(200))
    rows.append(("floor: fork + reap of this warm process", *_pcts(fork), ""))
    works, _ = bwrap_check()
    floor_p50 = None
    if works:
        python, prefix = find_python()
        cmd = [str(find_bwrap()), *namespace_args([prefix], 1 << 20), "--", str(python), "-I", "-S", "-c", py_code]
        ident: dict[str, Any] = {"user": 65534, "group": 65534, "extra_groups": []} if drop_to_nobody() else {}
        floor = _timed(lambda: subprocess.run(cmd, check=True, capture_output=True, env={}, **ident), n(40))
        floor_p50, floor_p95 = _pcts(floor)
        rows.append(("bare bwrap + python -I -S (cold floor)", floor_p50, floor_p95, ""))

    warm = SubprocessSandbox(workers=2)
    try:
        time.sleep(0.5)
        for lang in Language:
            if not warm.supports(lang):
                continue
            req = _request(lang)
            assert warm.run(req).status is ExecutionStatus.SUCCEEDED
            before = None if lang is Language.PYTHON else _wait_for_pool(warm, lang, 2)
            samples = _timed(lambda req=req: warm.run(req), n(400 if lang is Language.PYTHON else 40), before)
            p50, p95 = _pcts(samples)
            rate = _throughput(warm, lang, 5.0 * scale if lang is Language.PYTHON else 3.0 * scale)
            rows.append((f"{lang.value} warm", p50, p95, f"{rate:.0f} exec/s on 2 threads"))
    finally:
        warm.close()

    cold = SubprocessSandbox(workers=0)
    try:
        for lang in Language:
            if not cold.supports(lang):
                continue
            req = _request(lang)
            samples = _timed(lambda req=req: cold.run(req), n(30 if lang is Language.PYTHON else 12))
            p50, p95 = _pcts(samples)
            note = f"{p50 / floor_p50:.2f}x bare bwrap floor" if floor_p50 and lang is Language.PYTHON else ""
            rows.append((f"{lang.value} cold (empty pool)", p50, p95, note))
    finally:
        cold.close()

    print(f"isolation: {'namespaces (bubblewrap)' if works else 'process (no bubblewrap)'}")
    print(f"{'case':42} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}  notes")
    for name, p50, p95, note in rows:
        print(f"{name:42} {p50:8.2f} {p95:8.2f} {p50 / base_p50:12.2f}x  {note}")


if __name__ == "__main__":
    main()
