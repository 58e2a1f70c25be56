"""Tools with requirements: registration cold and warm, and warm call latency with packages vs without.

Run: ``python -m benchmarks.requirements [--quick]``. Needs the package index (pip) and bubblewrap.
Figures, each against a baseline measured in the same run:

* registration of a tool with new requirements (resolve with pip, install, validate; pip's own
  download cache may already hold the wheels) vs a tool without requirements;
* registration of another tool with the same requirements: in the same runtime (the resolution is
  remembered) and in a new runtime over the same environments (pip resolves again; nothing installs);
* warm call latency of a tool importing numpy and of one importing python-dateutil vs one importing
  nothing (all three from warm zygotes: a zygote for an environment imports its packages while idle);
* the cost of confining pip and npm to the index hosts (bubblewrap and the egress proxy, see
  ``adapters/local/resolver_jail.py``): a new lock resolved and installed into an empty environments
  folder, confined vs run straight on the host as before (the baseline), alternated, medians; one
  ``pip --version`` run each way (the fixed cost per process); reading pip's and npm's index
  configuration (once a minute per process).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

import toolrt
from toolrt.adapters.local import resolver_jail
from toolrt.adapters.local.environments import NpmEnvironments, PipEnvironments, npm_cli
from toolrt.adapters.local.resolver_jail import IndexAccess, ResolverJail
from toolrt.adapters.node import find_node
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus, Language

NOTHING = 'def handler(n: int) -> int:\n    """Add one."""\n    return n + 1\n'
NUMPY = (
    "import numpy as np\n\n\ndef handler(n: int) -> float:\n"
    '    """Sum of 0..n-1."""\n    return float(np.arange(n).sum())\n'
)
DATEUTIL = (
    "from dateutil import parser\n\n\ndef handler(n: int) -> str:\n"
    '    """A parsed date."""\n    return parser.parse(f"2024-01-{n:02d}").isoformat()\n'
)


def _definition(name: str, code: str, requirements: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "description": name, "language": "python", "code": code, "requirements": requirements or []}


def _ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _latency(rt: ToolRuntime, agent: str, tool_id: str, n: int) -> tuple[float, float]:
    def call() -> None:
        result = rt.execute_tool(agent, tool_id, {"n": 5})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error

    for _ in range(3):  # warm the zygote pool of this environment
        call()
    samples = sorted(_ms(call) for _ in range(n))
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def _connect(data: Path, envs: Path) -> ToolRuntime:
    return toolrt.connect("local", data_dir=data, environments_dir=envs, sandbox_workers=1)


class _Unconfined(ResolverJail):
    """The baseline: pip and npm run on the host, with the host's network and files, as before."""

    def run(
        self,
        cmd: Any,
        *,
        access: IndexAccess,
        python: str,
        env: Any,
        cwd: Path,
        read_only: Any = (),
        read_write: Any = (),
        timeout: float,
        what: str,
        max_file_bytes: int | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], tuple[str, ...]]:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=dict(env), cwd=cwd)
        return done, ()


def _cold_lock(
    builder: type[PipEnvironments], work: Path, jail: ResolverJail, language: Language, reqs: list[str]
) -> float:
    root = Path(tempfile.mkdtemp(prefix="envs-", dir=work))
    root.chmod(0o755)
    return _ms(lambda: builder(root, jail=jail).lock(language, tuple(reqs), max_bytes=1 << 30))


def _confinement(work: Path, rounds: int) -> None:
    """Cold lock (resolve + download + install) confined vs unconfined, alternated; medians."""
    confined, unconfined = ResolverJail(), _Unconfined()
    print(f"confining pip and npm to the index hosts ({resolver_jail.ResolverJail.namespaces()[1]})")
    cases: list[tuple[str, type[PipEnvironments], Language, list[str]]] = [
        ("python-dateutil", PipEnvironments, Language.PYTHON, ["python-dateutil>=2.8"]),
        ("numpy", PipEnvironments, Language.PYTHON, ["numpy>=1.26,<3"]),
    ]
    if npm_cli() is not None:
        cases.append(("is-odd (npm)", NpmEnvironments, Language.JAVASCRIPT, ["is-odd@3"]))
    print(f"  new lock into empty environments, median of {rounds} (ms)   host    confined   ratio")
    for label, builder, language, reqs in cases:
        for jail in (unconfined, confined):  # warm pip's and npm's download caches, read the configuration
            _cold_lock(builder, work, jail, language, reqs)
        plain: list[float] = []
        jailed: list[float] = []
        for _ in range(rounds):
            plain.append(_cold_lock(builder, work, unconfined, language, reqs))
            jailed.append(_cold_lock(builder, work, confined, language, reqs))
        host, inside = statistics.median(plain), statistics.median(jailed)
        print(f"  {label:<56}{host:7.0f}  {inside:9.0f}   x{inside / host:.2f}")
    pip = PipEnvironments(work / "envs-version", jail=unconfined)
    host = statistics.median(_ms(lambda: pip._pip(["--version"])) for _ in range(rounds))
    pip = PipEnvironments(work / "envs-version", jail=confined)
    inside = statistics.median(_ms(lambda: pip._pip(["--version"])) for _ in range(rounds))
    print(f"  one pip --version process{'':<31}{host:7.0f}  {inside:9.0f}   x{inside / host:.2f}")
    started = time.perf_counter()
    resolver_jail._PIP_MEMO = resolver_jail._Memo()
    resolver_jail.pip_index_access(pip._python, os.environ)
    config_ms = (time.perf_counter() - started) * 1000
    line = f"  reading the index configuration (once a minute): pip {config_ms:.0f} ms"
    node, cli = find_node(), npm_cli()
    if node is not None and cli is not None:
        resolver_jail._NPM_MEMO = resolver_jail._Memo()
        line += f", npm {_ms(lambda: resolver_jail.npm_index_access(node, cli, os.environ)):.0f} ms"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (for a smoke run)")
    parser.add_argument("--confinement-only", action="store_true", help="only the cost of confining pip and npm")
    args = parser.parse_args()
    calls = 20 if args.quick else 100
    logging.getLogger("toolrt").setLevel(logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    work = Path(tempfile.mkdtemp(prefix="toolrt-bench-req-"))
    work.chmod(0o755)  # as root the sandbox runs as nobody, which must reach the environments
    try:
        if args.confinement_only:
            _confinement(work, 3)
            return
        envs = work / "envs"
        rt = _connect(work / "data", envs)
        plain = _ms(lambda: rt.register_tool("bench", _definition("plain", NOTHING)))
        cold = _ms(lambda: rt.register_tool("bench", _definition("dates", DATEUTIL, ["python-dateutil>=2.8"])))
        numpy_cold = _ms(lambda: rt.register_tool("bench", _definition("numbers", NUMPY, ["numpy>=1.26,<3"])))
        same_runtime = _ms(
            lambda: rt.register_tool("bench", _definition("dates2", DATEUTIL + "\n# 2", ["python-dateutil>=2.8"]))
        )
        rt.close()
        rt = _connect(work / "data", envs)
        new_runtime = _ms(
            lambda: rt.register_tool("bench", _definition("dates3", DATEUTIL + "\n# 3", ["python-dateutil>=2.8"]))
        )
        print("registration (ms)")
        print(f"  without requirements (baseline)              {plain:9.1f}")
        print(f"  python-dateutil, new lock (resolve+install)   {cold:9.1f}   x{cold / plain:.0f}")
        print(f"  numpy, new lock (resolve+install)             {numpy_cold:9.1f}   x{numpy_cold / plain:.0f}")
        print(f"  same requirements, same runtime (warm)        {same_runtime:9.1f}   x{same_runtime / plain:.1f}")
        print(f"  same requirements, new runtime (resolve only) {new_runtime:9.1f}   x{new_runtime / plain:.0f}")
        print(
            f"  environments on disk: {len(rt.environments())}, "
            f"{sum(e.size_bytes for e in rt.environments()) / 2**20:.1f} MB"
        )

        tools = {t.name: t.tool_id for t in rt.list_tools("bench")}
        base_p50, base_p95 = _latency(rt, "bench", tools["plain"], calls)
        np_p50, np_p95 = _latency(rt, "bench", tools["numbers"], calls)
        du_p50, du_p95 = _latency(rt, "bench", tools["dates"], calls)
        print(f"warm call latency over {calls} calls (ms)        p50      p95   p50 ratio")
        print(f"  importing nothing (baseline)               {base_p50:7.1f}  {base_p95:7.1f}")
        print(f"  importing numpy                            {np_p50:7.1f}  {np_p95:7.1f}   x{np_p50 / base_p50:.2f}")
        print(f"  importing python-dateutil                  {du_p50:7.1f}  {du_p95:7.1f}   x{du_p50 / base_p50:.2f}")
        rt.close()
        _confinement(work, 2 if args.quick else 3)
    finally:
        for folder, _, _ in os.walk(work):
            os.chmod(folder, 0o755)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
