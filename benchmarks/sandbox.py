"""Local sandbox speed: warm and cold latency and throughput per language, against same-run baselines.

Run: ``python -m benchmarks.sandbox [--quick]``. Baselines measured in the same run: a plain
``subprocess.run([python, "-c", code])``, the same interpreter started cold inside bare bubblewrap,
and the tool's code compiled, executed and called in this process with no isolation at all (and
by smolagents' ``LocalPythonExecutor`` when smolagents is installed). Throughput rows give the CPU
time a call costs in all (host and sandbox processes) and the rate that allows on this machine's
cores: on a small machine, that is the bound. A row
runs the same tool through ``rt.execute_tool`` on the local profile, as an agent calls it.
JavaScript and TypeScript are measured on each engine (Node workers, QuickJS zygotes),
with ratios to Python warm and cold; TypeScript as users run it, stripped once at registration.
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

from benchmarks._stats import CpuMeter
from toolrt.adapters.local.quickjs_engine import TypeScriptStripper, find_quickjs
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.local.sandbox_env import bwrap_check, drop_to_nobody, find_bwrap, find_python, namespace_args
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest

CODE = {
    Language.PYTHON: "def handler(n):\n    return n + 1\n",
    Language.JAVASCRIPT: "function handler(p) { return p.n + 1; }\n",
    Language.TYPESCRIPT: "export function handler(p: { n: number }): number { return p.n + 1; }\n",
}

# (label, language as written, engine). TypeScript rows run what users get: the form stripped once
# at registration, sent as JavaScript (the runtime never sends raw TypeScript to the sandbox).
JS_CASES = [
    ("javascript on node", Language.JAVASCRIPT, "node"),
    ("typescript on node", Language.TYPESCRIPT, "node"),
    ("javascript on quickjs", Language.JAVASCRIPT, "quickjs"),
    ("typescript on quickjs", Language.TYPESCRIPT, "quickjs"),
]


def _big_tool(functions: int = 60) -> str:
    """A Python tool of a few hundred lines (helpers and a handler), to show what compiling costs."""
    lines = ["import json, math", ""]
    for i in range(functions):
        lines += [
            f"def helper_{i}(x, y=1):",
            f'    """Helper {i}."""',
            "    total = 0",
            "    for k in range(3):",
            f"        total += (x * {i} + k) % (y + 7)",
            f"    return {{'i': {i}, 'v': total, 's': str(total) * 2}}",
            "",
        ]
    return "\n".join([*lines, "def handler(n):", "    return helper_0(n)['v']", ""])


def _runnable(language: Language) -> str:
    """The code as registration stores it to run: TypeScript with its types stripped."""
    if language is Language.TYPESCRIPT:
        return TypeScriptStripper().strip(CODE[language])
    return CODE[language]


def _request(language: Language, engine: str | None = None, code: str | None = None) -> SandboxRequest:
    run_as = Language.PYTHON if language is Language.PYTHON else Language.JAVASCRIPT
    body = code if code is not None else CODE[language]
    return SandboxRequest("bench", run_as, body, "handler", {"n": 1}, 10.0, 256, 65536, engine=engine)


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


def _throughput(
    sb: SubprocessSandbox, req: SandboxRequest, seconds: float, meter: CpuMeter, threads: int = 2
) -> tuple[float, float]:
    """Calls per second on ``threads`` threads, and the CPU milliseconds each call cost in all: this
    process (the host side) and the sandbox's processes (zygotes and the calls' children), by cgroup
    accounting (``CpuMeter``)."""
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            assert sb.run(req).status is ExecutionStatus.SUCCEEDED
            counts[i] += 1

    cpu = meter.seconds()
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    elapsed = time.perf_counter() - t
    calls = max(sum(counts), 1)
    return sum(counts) / elapsed, (meter.seconds() - cpu) / calls * 1000


def _cpu_note(cpu_ms: float) -> str:
    cores = os.cpu_count() or 1
    return f"{cpu_ms:.2f} ms CPU per call, so at most {cores * 1000 / cpu_ms:.0f}/s on {cores} cores"


def _smolagents() -> Callable[[], object] | None:
    """smolagents' in-process executor (an AST interpreter, no process isolation) running the tool,
    when smolagents is installed (``pip install smolagents``): a second in-process baseline."""
    try:
        from smolagents.local_python_executor import LocalPythonExecutor  # type: ignore[import-not-found]
    except ImportError:
        return None
    executor = LocalPythonExecutor(additional_authorized_imports=[])
    executor.send_tools({})
    code = CODE[Language.PYTHON] + "handler(1)\n"
    return lambda: executor(code)


def _in_process(code: str) -> None:
    """What the zygote's child does with a call, without any isolation: compile, exec, call."""
    namespace: dict[str, Any] = {"__name__": "__tool__"}
    exec(compile(code, "tool.py", "exec"), namespace)
    namespace["handler"](n=1)


def _wait_for_pool(sb: SubprocessSandbox, language: Language, size: int) -> Callable[[], None]:
    def wait() -> None:
        deadline = time.monotonic() + 5
        pool = sb._node_pool(language, 256, False)  # noqa: SLF001 - the benchmark waits for pre-started workers
        while pool.idle_count() < size and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.01)  # let the refill's own start-up settle, as between an agent's calls

    return wait


def _through_runtime(count: int, seconds: float) -> tuple[float, float, float]:
    """What an agent waits for: rt.execute_tool on the local profile (a real SQLite store), the
    same tool as the "python warm" row; p50, p95 and calls/s on 2 threads."""
    import tempfile

    import toolrt

    definition = {
        "name": "inc",
        "description": "Add one.",
        "language": "python",
        "code": CODE[Language.PYTHON],
        "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    }
    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data, toolrt.connect("local", data_dir=data) as rt:
        tool_id = rt.register_tool("agent-a", definition, "public").tool_id
        time.sleep(0.5)  # the pool's zygotes start
        assert rt.execute_tool("agent-b", tool_id, {"n": 1}).ok
        p50, p95 = _pcts(_timed(lambda: rt.execute_tool("agent-b", tool_id, {"n": 1}), count))
        stop = time.monotonic() + seconds
        counts = [0, 0]

        def loop(i: int) -> None:
            while time.monotonic() < stop:
                assert rt.execute_tool("agent-b", tool_id, {"n": 1}).ok
                counts[i] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(loop, range(2)))
        return p50, p95, sum(counts) / (time.perf_counter() - started)


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
    meter = CpuMeter()  # before anything starts: every process after this is charged to it

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

    inproc = _timed(lambda: _in_process(CODE[Language.PYTHON]), n(2000))
    inproc_p50, inproc_p95 = _pcts(inproc)
    rows.append(("in-process exec of the tool (no isolation)", inproc_p50, inproc_p95, ""))
    smol = _smolagents()
    smol_p50 = None
    if smol is not None:
        smol_p50, smol_p95 = _pcts(_timed(smol, n(2000)))
        rows.append(("in-process smolagents LocalPythonExecutor", smol_p50, smol_p95, "an AST interpreter, no process"))

    quickjs = find_quickjs() is not None
    cases = [case for case in JS_CASES if quickjs or case[2] != "quickjs"]
    runnable = {lang: _runnable(lang) for lang in (Language.JAVASCRIPT, Language.TYPESCRIPT)}
    warm = SubprocessSandbox(workers=2, js_engine="auto")
    py_warm = py_rate = 1.0
    try:
        time.sleep(0.5)
        req = _request(Language.PYTHON)
        assert warm.run(req).status is ExecutionStatus.SUCCEEDED
        py_warm, py_p95 = _pcts(_timed(lambda: warm.run(req), n(400)))
        py_rate, py_cpu = _throughput(warm, req, 5.0 * scale, meter)
        versus = f"{py_warm / inproc_p50:.1f}x in-process exec"
        if smol_p50:
            versus += f", {py_warm / smol_p50:.1f}x smolagents"
        rows.append(
            (
                "python warm",
                py_warm,
                py_p95,
                f"{py_rate:.0f} exec/s on 2 threads; {versus}; {_cpu_note(py_cpu)}",
            )
        )
        big = _big_tool()
        lines = len(big.splitlines())
        req = _request(Language.PYTHON, code=big)
        assert warm.run(req).status is ExecutionStatus.SUCCEEDED
        same, same_p95 = _pcts(_timed(lambda: warm.run(req), n(200)))
        counter = iter(range(1 << 30))
        fresh, fresh_p95 = _pcts(
            _timed(lambda: warm.run(_request(Language.PYTHON, code=f"{big}# {next(counter)}\n")), n(100))
        )
        rows.append((f"python warm, {lines}-line tool, new code per call", fresh, fresh_p95, "compiled on each call"))
        rows.append(
            (
                f"python warm, {lines}-line tool, same code",
                same,
                same_p95,
                f"bytecode compiled once on the host: {fresh / same:.1f}x faster than compiling",
            )
        )
        if warm.supports(Language.JAVASCRIPT):
            for label, lang, engine in cases:
                req = _request(lang, engine, runnable[lang])
                first = warm.run(req)
                assert first.status is ExecutionStatus.SUCCEEDED, first.error
                before = _wait_for_pool(warm, Language.JAVASCRIPT, 2) if engine == "node" else None
                count = n(40) if engine == "node" else n(400)
                p50, p95 = _pcts(_timed(lambda req=req: warm.run(req), count, before))
                rate, cpu = _throughput(warm, req, (3.0 if engine == "node" else 5.0) * scale, meter)
                note = (
                    f"{rate:.0f} exec/s on 2 threads ({rate / py_rate:.2f}x python); {p50 / py_warm:.2f}x python warm p50;"
                    f" {_cpu_note(cpu)}"
                )
                rows.append((f"{label} warm", p50, p95, note))
    finally:
        warm.close()

    rt_p50, rt_p95, rt_rate = _through_runtime(n(300), 5.0 * scale)
    rows.append(
        (
            "python warm through rt.execute_tool (local)",
            rt_p50,
            rt_p95,
            f"{rt_rate:.0f} exec/s on 2 threads; {rt_p50 / py_warm:.2f}x the sandbox call alone "
            "(checks, SQLite record, events)",
        )
    )

    cold = SubprocessSandbox(workers=0, js_engine="auto")
    try:
        req = _request(Language.PYTHON)
        py_cold, py_cold_p95 = _pcts(_timed(lambda: cold.run(req), n(30)))
        note = f"{py_cold / floor_p50:.2f}x bare bwrap floor" if floor_p50 else ""
        rows.append(("python, a zygote forked per call (workers=0)", py_cold, py_cold_p95, note))
        if cold.supports(Language.JAVASCRIPT):
            for label, lang, engine in cases:
                req = _request(lang, engine, runnable[lang])
                p50, p95 = _pcts(_timed(lambda req=req: cold.run(req), n(12 if engine == "node" else 30)))
                rows.append((f"{label} cold (empty pool)", p50, p95, f"{p50 / py_cold:.2f}x python cold p50"))
    finally:
        cold.close()

    meter.close()
    print(f"isolation: {'namespaces (bubblewrap)' if works else 'process (no bubblewrap)'}; CPU counted by {meter.how}")
    print(f"quickjs: {'quickjs-ng ' + str(find_quickjs()) if quickjs else 'not installed (pip install toolrt[js])'}")
    print(f"{'case':44} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}  notes")
    for name, p50, p95, note in rows:
        print(f"{name:44} {p50:8.2f} {p95:8.2f} {p50 / base_p50:12.2f}x  {note}")


if __name__ == "__main__":
    main()
