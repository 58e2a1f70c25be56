"""Registering many tools: ``register_tools`` (one batch) against ``register_tool`` one by one.

Run: ``python -m benchmarks.batch_registration [--tools 1000]``. On the local profile (SQLite and the
file artifact store in a temporary folder), ``--tools`` definitions sharing one code are registered
one by one (the baseline, same run, ``on_duplicate="create"`` like the batch) and then as one batch
by another agent; then the same with every definition's code distinct. Printed: seconds, tools per
second and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import toolrt
from benchmarks._stats import quiet_logs


def _definitions(n: int, distinct: bool, prefix: str) -> list[dict[str, Any]]:
    def code(i: int) -> str:
        return f"def handler(a: int, b: int) -> int:\n    return a + b + {i if distinct else 0}\n"

    return [
        {"name": f"{prefix}_{i}", "description": "Add two numbers", "language": "python", "code": code(i)}
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=1000)
    args = parser.parse_args()
    quiet_logs()
    for distinct in (False, True):
        with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data, toolrt.connect("local", data_dir=data) as rt:
            started = time.perf_counter()
            for definition in _definitions(args.tools, distinct, "one"):
                rt.register_tool("agent-one", definition, on_duplicate="create")
            single = time.perf_counter() - started
            started = time.perf_counter()
            items = rt.register_tools("agent-batch", _definitions(args.tools, distinct, "batch"))
            batch = time.perf_counter() - started
            assert all(item.ok for item in items)
        what = "distinct code each" if distinct else "one shared code"
        print(
            f"{args.tools} tools, {what}: one by one {single:.2f} s ({args.tools / single:.0f}/s, baseline); "
            f"register_tools {batch:.2f} s ({args.tools / batch:.0f}/s), {single / batch:.1f}x faster"
        )


if __name__ == "__main__":
    main()
