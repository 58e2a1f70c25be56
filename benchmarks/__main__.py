"""Run every benchmark in turn: ``python -m benchmarks`` (each is also runnable on its own).

``python -m benchmarks sandbox requirements`` runs those two; options after the names go to the
one benchmark named (``python -m benchmarks mcp_serving --servers 1 2``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    args = sys.argv[1:]
    split = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    wanted, options = set(args[:split]), args[split:]
    if options and len(wanted) != 1:
        print("options go to one benchmark: name exactly one before them (python -m benchmarks NAME --option ...)")
        return 2
    failed = []
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.perf_counter()
        sys.argv = [f"benchmarks.{name}", *options]  # each benchmark parses its own options
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except (Exception, SystemExit) as exc:  # one broken benchmark should not hide the others' figures
            print(f"benchmarks.{name} failed: {type(exc).__name__}: {exc}")
            failed.append(name)
        print(f"({time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
