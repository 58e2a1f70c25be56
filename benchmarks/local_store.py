"""The local store at scale: list one agent's tools and find by code hash among N tools (default 100,000).

Run: ``python -m benchmarks.local_store [N] [--agents A] [--codes C] [--dir PATH] [--samples S]``.

Setup fills one SQLite file with ``add_many`` (one transaction per chunk) and writes the distinct
artifacts with ``FileArtifactStore.put``; then the real repository methods are timed next to a raw
``SELECT`` of the same rows on the same file (no decoding), the baseline printed as a ratio. The target
is at most 10 ms p50 for listing one agent's tools and for ``find_by_code_hash``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._stats import quiet_logs
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.domain import Artifact, CodeHash, Language, Tool, ToolDefinition, ValidationReport, normalize_code
from toolrt.ports import ToolQuery

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 10_000
TARGET_MS = 10.0


def code_of(variant: int) -> str:
    """A 30-line Python tool; ``variant`` makes each one hash apart."""
    lines = [f"def _helper_{i}(x: float) -> float:\n    return x * {i} + {variant}\n" for i in range(14)]
    return "\n".join(lines) + f"\ndef handler(a: float, b: float) -> float:\n    return _helper_1(a) + b + {variant}\n"


def definition(name: str, variant: int) -> ToolDefinition:
    return ToolDefinition(
        name=name,
        description=f"{name}: combines two numbers (variant {variant})",
        language=Language.PYTHON,
        code=code_of(variant),
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        tags=("bench", f"v{variant % 10}"),
    )


def measure(fn: Callable[[int], object], n: int, warmup: int = 20) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times unmeasured, then ``n`` times; milliseconds per call."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[94]


def row(label: str, times: list[float], baseline: list[float] | None = None) -> str:
    p50 = statistics.median(times)
    ratio = f"   x{p50 / statistics.median(baseline):5.2f} of raw SELECT" if baseline else ""
    return f"  {label:<40} p50 {p50:8.3f} ms   p95 {p95(times):8.3f} ms{ratio}"


def directory_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def populate(repo: SqliteToolRepository, store: FileArtifactStore, n: int, agents: int, codes: int) -> None:
    started = time.perf_counter()
    definitions: dict[int, ToolDefinition] = {}
    for variant in range(codes):
        d = definition("shared", variant)
        store.put(
            Artifact(
                d.code_hash,
                d.language,
                normalize_code(d.code),
                d.entrypoint,
                ValidationReport(policy_version="bench"),
                T0,
            )
        )
        definitions[variant] = d
    artifacts_s = time.perf_counter() - started

    def tools(start: int, stop: int) -> Iterator[Tool]:
        for i in range(start, stop):
            d = definitions[i % codes]
            yield Tool.create(
                tool_id=f"tool-{i:07d}",
                owner=f"agent-{i % agents:06d}",
                definition=ToolDefinition(
                    name=f"tool_{i // agents}",
                    description=d.description,
                    language=d.language,
                    code=d.code,
                    input_schema=d.input_schema,
                    tags=d.tags,
                ),
                now=T0,
            )

    for start in range(0, n, CHUNK):
        repo.add_many(tools(start, min(n, start + CHUNK)))
    print(
        f"setup: {codes} artifacts in {artifacts_s:.1f} s, {n} tools in "
        f"{time.perf_counter() - started - artifacts_s:.1f} s (bulk add_many)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local_store", description=__doc__)
    parser.add_argument("tools", nargs="?", type=int, default=100_000, help="tools to register (100000)")
    parser.add_argument("--agents", type=int, default=0, help="owning agents (default tools/10)")
    parser.add_argument("--codes", type=int, default=0, help="distinct code artifacts (default tools/20)")
    parser.add_argument("--samples", type=int, default=1000, help="timed calls per operation")
    parser.add_argument("--dir", type=Path, default=None, help="data directory (default: a temp dir, removed)")
    args = parser.parse_args([] if argv is None else argv)
    quiet_logs()
    n = args.tools
    agents = args.agents or max(1, n // 10)
    codes = args.codes or max(1, n // 20)
    data = args.dir or Path(tempfile.mkdtemp(prefix="toolrt-bench-"))
    db, root = data / "tools.sqlite", data / "artifacts"
    rng = random.Random(7)
    print(
        f"local store: {n} tools, {agents} agents ({n / agents:.0f} tools each), "
        f"{codes} distinct codes ({n / codes:.0f} tools each), data in {data}"
    )
    try:
        repo = SqliteToolRepository(db)
        store = FileArtifactStore(root)
        populate(repo, store, n, agents, codes)
        raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        agent_ids = [f"agent-{rng.randrange(agents):06d}" for _ in range(args.samples + 50)]
        hashes = [str(definition("shared", rng.randrange(codes)).code_hash) for _ in range(args.samples + 50)]
        tool_ids = [f"tool-{rng.randrange(n):07d}" for _ in range(args.samples + 50)]

        list_sql = (
            "SELECT tool_id, body FROM tools WHERE owner = ? AND status = 'active' ORDER BY name, tool_id LIMIT 1000"
        )
        hash_sql = (
            "SELECT t.tool_id, t.body FROM code_refs r JOIN tools t ON t.tool_id = r.tool_id"
            " WHERE r.code_hash = ? ORDER BY r.tool_id"
        )
        for label, sql, arg in (("list by owner", list_sql, agent_ids[0]), ("find by code hash", hash_sql, hashes[0])):
            plan = "; ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, (arg,)))
            print(f"  plan ({label}): {plan}")

        s = args.samples
        raw_list = measure(lambda i: raw.execute(list_sql, (agent_ids[i],)).fetchall(), s)
        repo_list = measure(lambda i: repo.list(ToolQuery(owner=agent_ids[i])), s)
        raw_hash = measure(lambda i: raw.execute(hash_sql, (hashes[i],)).fetchall(), s)
        repo_hash = measure(lambda i: repo.find_by_code_hash(CodeHash(hashes[i])), s)
        get_sql = "SELECT body FROM tools WHERE tool_id = ?"
        raw_get = measure(lambda i: raw.execute(get_sql, (tool_ids[i],)).fetchone(), s)
        repo_get = measure(lambda i: repo.get(tool_ids[i]), s)
        writes = max(20, s // 10)
        repo_add = measure(
            lambda i: repo.add(
                Tool.create(tool_id=f"extra-{i}", owner="agent-extra", definition=definition(f"extra_{i}", i), now=T0)
            ),
            writes,
            warmup=0,
        )
        repo_save = measure(lambda i: repo.save(repo.get("extra-0").with_gateway_ref(f"g{i}", T0)), writes, warmup=0)

        print("\nreads (real repository methods vs a raw SELECT of the same rows, no decoding):")
        print(row("raw SELECT one agent's tools", raw_list))
        print(row("list(ToolQuery(owner=agent))", repo_list, raw_list))
        print(row("raw SELECT tools by code hash", raw_hash))
        print(row("find_by_code_hash", repo_hash, raw_hash))
        print(row("raw SELECT one tool", raw_get))
        print(row("get(tool_id)", repo_get, raw_get))
        print("writes (one transaction each, synchronous=FULL):")
        print(row("add (single tool)", repo_add))
        print(row("get + save (optimistic update)", repo_save))

        raw.close()
        repo.close()
        sqlite_bytes = sum(p.stat().st_size for p in data.glob("tools.sqlite*"))
        artifact_bytes = directory_bytes(root)
        total = sqlite_bytes + artifact_bytes
        print(
            f"\ndata directory: {total / 1e6:.1f} MB = {total / n:.0f} bytes per tool "
            f"(SQLite {sqlite_bytes / n:.0f} B/tool incl. WAL, artifacts {artifact_bytes / codes:.0f} B each, "
            f"{artifact_bytes / n:.0f} B/tool at {n / codes:.0f} tools per artifact)"
        )
        for label, times in (("list by owner", repo_list), ("find_by_code_hash", repo_hash)):
            p50 = statistics.median(times)
            verdict = "meets" if p50 <= TARGET_MS else "MISSES"
            print(f"target: {label} p50 {p50:.2f} ms {verdict} the {TARGET_MS:.0f} ms target")
    finally:
        if args.dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
