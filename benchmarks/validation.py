"""Validation speed: p50/p95 per language next to baselines measured in the same run.

Run: ``python -m benchmarks.validation [--rounds N]``. Targets: a 100-line Python tool <= 5 ms p50;
a JavaScript or TypeScript tool <= 15 ms p50 with the Node checker warm. Baselines: bare
``ast.parse`` of the same Python code, and a cold ``node --check`` (what a checker started per
registration would cost). If Bandit is importable, one Bandit scan of the same Python code is
timed too, to show why it is not part of the validator.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._stats import quiet_logs
from toolrt.adapters.node import find_node
from toolrt.adapters.validation import build_validator
from toolrt.domain import Language, ToolDefinition

PY_HELPERS = "\n".join(
    f'''

def helper_{i}(values: list[float], scale: float = {i}.0) -> dict[str, float]:
    """Helper {i}: scaled statistics."""
    data = [v * scale for v in values if v is not None]
    if not data:
        return {{"mean": 0.0, "max": 0.0}}
    return {{"mean": statistics.fmean(data), "max": max(data), "n": float(len(data))}}'''
    for i in range(9)
)
PYTHON_TOOL = f'''"""A 100-line statistics tool."""
import json
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

PATTERN = re.compile(r"[a-z]+")


@dataclass
class Summary:
    count: int = 0
    words: list[str] = field(default_factory=list)
{PY_HELPERS}


def handler(values: list[float], text: str = "", label: Optional[str] = None) -> dict[str, Any]:
    """Summarise values and text.

    Args:
        values: the numbers.
        text: some words.
        label: an optional label.
    """
    words = PATTERN.findall(text.lower())
    parts = [helper_{{0}}(values)] if values else []
    summary = Summary(len(values), sorted(Counter(words)))
    return json.loads(json.dumps({{
        "label": label or "none",
        "sqrt": math.sqrt(abs(sum(values))),
        "summary": summary.count,
        "parts": parts,
        "at": datetime(2024, 1, 1, tzinfo=timezone.utc).isoformat(),
    }}))
'''.replace("helper_{0}", "helper_0")

JS_TOOL = "\n".join(
    ["'use strict';", "const crypto = require('node:crypto');", ""]
    + [
        f"function helper{i}(values, scale = {i}) {{\n  const data = values.map((v) => v * scale);\n"
        f"  return {{ mean: data.reduce((a, b) => a + b, 0) / (data.length || 1), max: Math.max(...data) }};\n}}\n"
        for i in range(12)
    ]
    + [
        "async function handler(params) {",
        "  const values = params.values || [];",
        "  const hash = crypto.createHash('sha256').update(JSON.stringify(values)).digest('hex');",
        "  return { hash, parts: [helper0(values), helper1(values)], at: new Date(0).toISOString() };",
        "}",
        "module.exports = { handler };",
    ]
)

TS_TOOL = "\n".join(
    ["interface Params { values: number[]; label?: string }", "type Stat = { mean: number; max: number };", ""]
    + [
        f"function helper{i}(values: number[], scale: number = {i}): Stat {{\n  const data: number[] = values.map((v: number): number => v * scale);\n"
        f"  return {{ mean: data.reduce((a, b) => a + b, 0) / (data.length || 1), max: Math.max(...data) }};\n}}\n"
        for i in range(12)
    ]
    + [
        "export async function handler(params: Params): Promise<Record<string, unknown>> {",
        "  const values: number[] = params.values ?? [];",
        "  return { label: params.label ?? 'none', parts: [helper0(values), helper1(values)] as Stat[] };",
        "}",
    ]
)

SCHEMA = {
    "type": "object",
    "properties": {
        "values": {"type": "array", "items": {"type": "number"}},
        "text": {"type": "string"},
        "label": {"type": ["string", "null"]},
    },
    "required": ["values"],
}


def measure(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over ``rounds`` calls (after a few warm-up calls)."""
    for _ in range(min(5, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1 if len(samples) > 1 else 0]


def row(name: str, p50: float, p95: float, baseline: float | None = None, target: float | None = None) -> None:
    ratio = f"{p50 / baseline:7.2f}x" if baseline else "        "
    goal = f"target <= {target:g} ms: {'ok' if p50 <= target else 'MISSED'}" if target else ""
    print(f"{name:44s} p50 {p50:8.3f} ms  p95 {p95:8.3f} ms  {ratio}  {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    quiet_logs()
    validator = build_validator()
    py = ToolDefinition(name="stats", description="d", language=Language.PYTHON, code=PYTHON_TOOL, input_schema=SCHEMA)
    js = ToolDefinition(name="stats", description="d", language=Language.JAVASCRIPT, code=JS_TOOL, input_schema=SCHEMA)
    ts = ToolDefinition(name="stats", description="d", language=Language.TYPESCRIPT, code=TS_TOOL, input_schema=SCHEMA)
    for definition in (py, js, ts):
        report = validator.validate(definition)
        assert report.findings == (), [str(f) for f in report.findings]
    print(
        f"policy {validator.policy_version}; Python tool {PYTHON_TOOL.count(chr(10)) + 1} lines, "
        f"JS {JS_TOOL.count(chr(10)) + 1} lines, TS {TS_TOOL.count(chr(10)) + 1} lines; {args.rounds} rounds"
    )

    base_p50, base_p95 = measure(lambda: ast.parse(PYTHON_TOOL), args.rounds)
    row("python: bare ast.parse (baseline)", base_p50, base_p95)
    p50, p95 = measure(lambda: validator.validate(py), args.rounds)
    row("python: validate (syntax+security+compliance)", p50, p95, base_p50, 5)

    node = find_node()
    if node is None:
        print("node: not installed; JS/TS rows skipped")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tool.js"
            path.write_text(JS_TOOL)
            cold_rounds = max(5, min(20, args.rounds // 15))
            cold_p50, cold_p95 = measure(
                lambda: subprocess.run([str(node), "--check", str(path)], check=True), cold_rounds
            )
        row(f"javascript: cold node --check ({cold_rounds} runs, baseline)", cold_p50, cold_p95)
        p50, p95 = measure(lambda: validator.validate(js), args.rounds)
        row("javascript: validate, checker warm", p50, p95, cold_p50, 15)
        p50, p95 = measure(lambda: validator.validate(ts), args.rounds)
        row("typescript: validate, checker warm", p50, p95, cold_p50, 15)
    validator.close()

    try:
        from bandit.core import config as bandit_config
        from bandit.core import manager as bandit_manager
    except ImportError:
        print("bandit: not installed (pip install bandit to compare)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tool.py"
        path.write_text(PYTHON_TOOL)

        def bandit_scan() -> None:
            manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file")
            manager.discover_files([str(path)])
            manager.run_tests()

        p50, p95 = measure(bandit_scan, max(10, args.rounds // 10))
        # Not part of toolrt's validation: shown to explain why Bandit is not used (see the package docs).
        row("python: bandit scan (not used by toolrt)", p50, p95, base_p50, None)


if __name__ == "__main__":
    main()
