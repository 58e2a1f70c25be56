"""Start-up: what `import toolrt`, a CLI command and the MCP stdio server cost before doing anything.

Run: ``python -m benchmarks.startup [--runs 15]``. Every row is a fresh process of this
interpreter, run ``--runs`` times with the rows interleaved (so that load on the machine falls on
all of them alike); the baseline, measured in the same run, is a bare interpreter (``python -c
pass``). Printed per row: p50 and p95 wall time, and the p50 over the baseline's p50, which is what
toolrt adds:

- ``import toolrt`` (and ``toolrt.connect("memory")``, which loads the core and the adapters);
- CLI commands in an empty folder: ``toolrt --help`` and ``toolrt --json list`` on a local store;
- ``toolrt serve`` over stdio answering MCP ``initialize`` (from spawning the process to the
  response line), as an MCP host starting it sees it: on a first start, and on later ones (the
  answer kept from an earlier start is sent while the SDK loads; see ``stdio_front``); and the
  first ``tools/list`` answered after it (when the server is really ready);
- a CLI call that times out: ``toolrt invoke`` of a tool that sleeps, with a 1 s timeout, and what
  it takes beyond that second (the same command's cost for a tool that returns at once is shown
  beside it).

``--against BIN`` measures another installation in the same run, interleaved with this one (its
rows end in ``[before]``): for example a virtualenv of an earlier commit, to compare under the
same load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._stats import p

PYTHON = sys.executable
TOOLRT = str(Path(sys.executable).parent / "toolrt")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
SLEEPY = '''import time


def handler(seconds: float) -> float:
    """Sleep for a while.

    Args:
        seconds: how long.
    """
    time.sleep(seconds)
    return seconds
'''


def _env(data: Path) -> dict[str, str]:
    # Bytecode is written and read as an installed wheel's is (pip compiles it): a checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile toolrt's sources in every process.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLRT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"TOOLRT_PROFILE": "local", "TOOLRT_DATA_DIR": str(data)})
    return env


def _children_cpu_ms() -> float:
    """User and system time of every child process waited for so far (each row's process is)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def _serve(toolrt: str, cwd: Path, env: dict[str, str], *, until_tools: bool = False, cold: bool = False) -> float:
    """Spawn ``toolrt serve`` (stdio) and time the answer to ``initialize`` or, ``until_tools``, to the
    first ``tools/list`` after it; ``cold``: with no cached initialize answer (a first start)."""
    if cold:
        env = {**env, "XDG_CACHE_HOME": tempfile.mkdtemp(dir=cwd)}
    started = time.perf_counter()
    server = subprocess.Popen(
        [toolrt, "--agent", "bench", "serve"],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    server.stdin.flush()
    line = server.stdout.readline()
    if until_tools:
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode() + b"\n")
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode() + b"\n")
        server.stdin.flush()
        line = server.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    server.stdin.close()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    if b'"result"' not in line:
        raise RuntimeError(f"no result: {line[:300]!r}")
    return elapsed


Row = tuple[str, Callable[[], float]]


def _rows(python: str, toolrt: str, work: Path, env: dict[str, str], tag: str = "") -> tuple[list[Row], list[Row]]:
    """The start-up rows and the timed-out call rows for one installation (its python and toolrt)."""
    slow_env = {**env, "TOOLRT_DEFAULT_TIMEOUT_S": "1"}
    subprocess.run([toolrt, "register", "sleepy.py"], cwd=work, env=env, capture_output=True, check=True)
    rows: list[Row] = [
        ("bare interpreter (baseline)", lambda: _run([python, "-c", "pass"], work, env)),
        ("import toolrt", lambda: _run([python, "-c", "import toolrt"], work, env)),
        (
            'toolrt.connect("memory")',
            lambda: _run([python, "-c", "import toolrt; toolrt.connect('memory').close()"], work, env),
        ),
        ("toolrt --help", lambda: _run([toolrt, "--help"], work, env)),
        ("toolrt --json list (local store)", lambda: _run([toolrt, "--json", "list"], work, env)),
        ("toolrt serve: MCP initialize (first start)", lambda: _serve(toolrt, work, env, cold=True)),
        ("toolrt serve: MCP initialize (later starts)", lambda: _serve(toolrt, work, env)),
        ("toolrt serve: first tools/list answered", lambda: _serve(toolrt, work, env, until_tools=True)),
    ]
    timeouts: list[Row] = [
        (
            "toolrt invoke sleepy seconds=0 (returns)",
            lambda: _run([toolrt, "invoke", "sleepy", "seconds=0"], work, slow_env),
        ),
        (
            "toolrt invoke sleepy seconds=30, 1 s timeout",
            lambda: _run([toolrt, "invoke", "sleepy", "seconds=30"], work, slow_env),
        ),
    ]
    return [(label + tag, fn) for label, fn in rows], [(label + tag, fn) for label, fn in timeouts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each row (15)")
    parser.add_argument("--no-timeout", action="store_true", help="skip the timed-out CLI call rows")
    parser.add_argument(
        "--against",
        metavar="BIN",
        help="another installation's bin folder (python and toolrt), measured in the same run: 'before'",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sleepy.py").write_text(SLEEPY)
        env = _env(work / "store")
        rows, timeout_rows = _rows(PYTHON, TOOLRT, work, env)
        others: list[Row] = []
        if args.against:
            before_rows, before_timeouts = _rows(
                str(Path(args.against) / "python"),
                str(Path(args.against) / "toolrt"),
                work,
                _env(work / "before"),
                " [before]",
            )
            others = before_rows + ([] if args.no_timeout else before_timeouts)
        chosen = rows + ([] if args.no_timeout else timeout_rows) + others
        times: dict[str, list[float]] = {label: [] for label, _ in chosen}
        cpu: dict[str, list[float]] = {label: [] for label, _ in chosen}
        for _label, fn in chosen:  # warm the page cache and the store once, unmeasured
            fn()
        for _ in range(args.runs):
            for label, fn in chosen:
                before = _children_cpu_ms()
                times[label].append(fn())
                cpu[label].append(_children_cpu_ms() - before)

    print(f"{args.runs} runs each, interleaved; python {sys.version.split()[0]} at {PYTHON}")
    print("wall: p50 and p95 of each process; cpu: p50 of its user+system time (less moved by other load)")
    for label, _ in chosen:
        p50, cpu50 = statistics.median(times[label]), statistics.median(cpu[label])
        bare = others[0][0] if label.endswith(" [before]") else rows[0][0]
        over = (
            ""
            if label == bare
            else f"   +{p50 - statistics.median(times[bare]):7.1f} ms wall, "
            f"+{cpu50 - statistics.median(cpu[bare]):6.1f} ms cpu over bare"
        )
        print(f"{label:<46} p50 {p50:8.1f} ms   p95 {p(times[label], 95):8.1f} ms   cpu {cpu50:7.1f} ms{over}")
    if not args.no_timeout:
        pairs = [("", timeout_rows)] + ([(" [before]", others[-2:])] if others else [])
        for tag, (returns, times_out) in ((tag, (r[0][0], r[1][0])) for tag, r in pairs):
            slow, quick = statistics.median(times[times_out]), statistics.median(times[returns])
            print(
                f"timed-out call beyond its 1 s timeout{tag}: {slow - 1000:7.1f} ms (a call that returns: {quick:7.1f} ms)"
            )


if __name__ == "__main__":
    main()
