"""Tools with requirements: registration cold and warm, and warm call latency with packages vs without.

Run: ``python -m benchmarks.requirements [--quick]``. Needs the package index (pip) and bubblewrap.
Figures, each against a baseline measured in the same run:

* registration of a tool with new requirements (resolve with pip, install, validate; pip's own
  download cache may already hold the wheels) vs a tool without requirements;
* registration of another tool with the same requirements: in the same runtime (the resolution is
  remembered) and in a new runtime over the same environments (pip resolves again; nothing installs);
* warm call latency of a tool importing numpy and of one importing python-dateutil vs one importing
  nothing (all three from warm zygotes: a zygote for an environment imports its packages while idle).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

import toolrt
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (for a smoke run)")
    args = parser.parse_args()
    calls = 20 if args.quick else 100
    logging.getLogger("toolrt").setLevel(logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    work = Path(tempfile.mkdtemp(prefix="toolrt-bench-req-"))
    work.chmod(0o755)  # as root the sandbox runs as nobody, which must reach the environments
    try:
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
    finally:
        for folder, _, _ in os.walk(work):
            os.chmod(folder, 0o755)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
