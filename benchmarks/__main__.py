"""Run every benchmark in turn: ``python -m benchmarks`` (each is also runnable on its own)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    wanted = set(sys.argv[1:])
    failed = []
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.perf_counter()
        sys.argv = [f"benchmarks.{name}"]  # each benchmark parses its own options: give it none
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except (Exception, SystemExit) as exc:  # one broken benchmark should not hide the others' figures
            print(f"benchmarks.{name} failed: {type(exc).__name__}: {exc}")
            failed.append(name)
        print(f"({time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
