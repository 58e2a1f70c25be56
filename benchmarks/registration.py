"""Registration on the memory profile: cache hit and miss, next to a bare compile() baseline.

Run: ``python -m benchmarks.registration [N]``. The system toolrt replaces took 1-2 s for a cache
hit and 2-5 s for a miss on AWS; those figures are printed for comparison.
"""

from __future__ import annotations

import statistics
import sys

import toolrt
from benchmarks._stats import measure, quiet_logs, row

LINES = 100


def tool_code(variant: int) -> str:
    """A 100-line Python tool; ``variant`` changes one constant so each variant hashes apart."""
    body = [
        "import json",
        "import math",
        "from datetime import datetime, timezone",
        "",
        "",
        "def _score(values: list[float]) -> float:",
        "    total = 0.0",
        "    for v in values:",
        "        total += math.sqrt(abs(v))",
        "    return total",
        "",
    ]
    i = 0
    while len(body) < LINES - 8:
        body += [f"def _helper_{i}(x: float) -> float:", f"    return x * {i} + {variant}", ""]
        i += 1
    body += [
        "def handler(values: list[float], label: str = 'x') -> dict:",
        '    """Score values."""',
        "    score = _score(values)",
        "    stamp = datetime.now(timezone.utc).isoformat()",
        "    return json.loads(json.dumps({'label': label, 'score': score, 'at': stamp}))",
    ]
    return "\n".join(body) + "\n"


SCHEMA = {
    "type": "object",
    "properties": {"values": {"type": "array", "items": {"type": "number"}}, "label": {"type": "string"}},
    "required": ["values"],
}


def main(n: int = 200) -> None:
    quiet_logs()
    with toolrt.connect("memory") as rt:
        counter = iter(range(10**9))

        def miss(i: int) -> None:
            k = next(counter)
            reg = rt.register_tool(
                "bench-miss",
                {
                    "name": f"m{k}",
                    "description": "d",
                    "language": "python",
                    "code": tool_code(k),
                    "input_schema": SCHEMA,
                },
            )
            assert not reg.cache_hit

        shared = tool_code(-1)
        rt.register_tool(  # public: a hit is only granted through a tool the registering agent can see
            "bench-seed",
            {"name": "seed", "description": "d", "language": "python", "code": shared, "input_schema": SCHEMA},
            "public",
        )

        def hit(i: int, on_duplicate: str = "warn") -> None:
            k = next(counter)
            reg = rt.register_tool(
                f"bench-hit-{k}",
                {"name": "h", "description": "d", "language": "python", "code": shared, "input_schema": SCHEMA},
                on_duplicate=on_duplicate,
            )
            assert reg.cache_hit

        code = tool_code(0)
        baseline = measure(lambda i: compile(code, "<tool>", "exec"), n)
        hits = measure(hit, n)
        unchecked = measure(lambda i: hit(i, "create"), n)
        misses = measure(miss, n)

    b50 = statistics.median(baseline)
    print(f"registration, memory profile, {LINES}-line Python tool, {n} calls each")
    print(row("baseline: compile() of the code", baseline))
    print(row("register, cache hit (no validation)", hits, b50))
    print(row("  the same, on_duplicate='create'", unchecked, b50))
    print(row("register, cache miss (validate + store)", misses, b50))
    print(f"{'previous system on AWS (reported)':<44} hit 1000-2000 ms, miss 2000-5000 ms")
    print(
        f"speed-up vs previous system: hit x{1000 / statistics.median(hits):,.0f}-x{2000 / statistics.median(hits):,.0f}, "
        f"miss x{2000 / statistics.median(misses):,.0f}-x{5000 / statistics.median(misses):,.0f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
