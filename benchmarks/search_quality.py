"""Tool search on a public function-calling catalog: recall against Okapi BM25, and query latency.

Run: ``python -m benchmarks.search_quality [--queries N] [--large 100000]``.

The data set is the Berkeley Function Calling Leaderboard (BFCL v4, Apache-2.0), read from the
``bfcl-eval`` wheel on PyPI (downloaded once with pip into ``.cache/benchmarks``, never installed).
Every distinct function of its categories becomes a public tool on the local profile (SQLite FTS5);
every question whose answer is one known function becomes a query. Printed, in the same run:

- recall@1 and recall@5 of ``rt.search_tools`` and of Okapi BM25 (the ``rank-bm25`` package) over
  the same text (name, description, parameter names and descriptions), with the ratio;
- ``search_tools`` latency p50/p95 with the catalog (about 2,700 tools) and with ``--large`` tools
  (the catalog repeated under new names and owners, added in bulk), beside a plain listing of the
  same agent's first 10 tools as the baseline.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import toolrt
from benchmarks._stats import p, quiet_logs
from toolrt.domain import Tool, ToolDefinition, Visibility

BFCL = "bfcl-eval==2026.3.23"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "benchmarks"
CATEGORIES = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "irrelevance",
    "live_irrelevance",
    "live_relevance",
)
QUERY_CATEGORIES = ("simple_python", "simple_java", "simple_javascript", "multiple", "live_simple", "live_multiple")
CODE = "def handler(**params):\n    return params\n"
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "list": "array", "int": "integer"}


def _wheel() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob("bfcl_eval-*.whl"))
    if not found:
        print(f"downloading {BFCL} from PyPI into {CACHE} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), BFCL], check=True)
        found = sorted(CACHE.glob("bfcl_eval-*.whl"))
    return found[-1]


def _lines(wheel: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    try:
        text = wheel.read(f"bfcl_eval/data/{name}").decode()
    except KeyError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _schema(node: Any) -> Any:
    # BFCL's Python-flavoured types to JSON Schema, keeping names and descriptions.
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    kind = node.get("type")
    if isinstance(kind, str):
        out["type"] = _TYPES.get(kind, kind) if _TYPES.get(kind, kind) in _JSON_TYPES else "string"
    if isinstance(node.get("description"), str):
        out["description"] = node["description"]
    if isinstance(node.get("enum"), list):
        out["enum"] = node["enum"]
    if isinstance(node.get("properties"), dict):
        out["properties"] = {str(k): _schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _schema(node["items"])
    return out


_JSON_TYPES = {"object", "number", "integer", "string", "boolean", "array", "null"}


def _tool_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    base = ("f_" + base if not base[:1].isalpha() else base)[:60]
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base[:56]}_{n}"
    taken.add(candidate)
    return candidate


def load() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The catalog (distinct functions) and the queries (text, key of the one correct function)."""
    with zipfile.ZipFile(_wheel()) as wheel:
        functions: dict[str, dict[str, Any]] = {}
        queries: list[tuple[str, str]] = []
        for category in CATEGORIES:
            entries = _lines(wheel, f"BFCL_v4_{category}.json")
            answers = {a["id"]: a for a in _lines(wheel, f"possible_answer/BFCL_v4_{category}.json")}
            for entry in entries:
                by_name = {}
                for fn in entry.get("function") or []:
                    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                        key = f"{fn['name']}\0{fn.get('description', '')}"
                        functions.setdefault(key, fn)
                        by_name[fn["name"]] = key
                answer = answers.get(entry["id"])
                if category not in QUERY_CATEGORIES or answer is None or len(answer["ground_truth"]) != 1:
                    continue
                (called,) = answer["ground_truth"][0].keys()
                turns = [m["content"] for turn in entry["question"] for m in turn if m.get("role") == "user"]
                if called in by_name and turns:
                    queries.append((turns[-1][:1000], by_name[called]))
    catalog = []
    taken: set[str] = set()
    for key, fn in functions.items():
        catalog.append(
            {
                "key": key,
                "name": _tool_name(fn["name"], taken),
                "description": (fn.get("description") or fn["name"])[:4000],
                "language": "python",
                "code": CODE,
                "input_schema": {"type": "object", **_schema(fn.get("parameters"))} | {"type": "object"},
            }
        )
    return catalog, queries


def _bm25_baseline(catalog: list[dict[str, Any]]) -> Any:
    from rank_bm25 import BM25Okapi  # the reference Okapi BM25 (k1=1.5, b=0.75)

    def text(item: dict[str, Any]) -> str:
        params = item["input_schema"].get("properties", {})
        described = " ".join(f"{k} {v.get('description', '')}" for k, v in params.items())
        return f"{item['name']} {item['description']} {described}"

    corpus = [re.findall(r"\w+", text(item).lower()) for item in catalog]
    return BM25Okapi(corpus)


def _recall(ranked: list[list[str]], correct: list[str]) -> tuple[float, float]:
    at1 = sum(1 for r, c in zip(ranked, correct, strict=True) if r[:1] == [c]) / len(correct)
    at5 = sum(1 for r, c in zip(ranked, correct, strict=True) if c in r[:5]) / len(correct)
    return at1, at5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=0, help="use only the first N queries (0: all)")
    parser.add_argument("--large", type=int, default=100_000, help="tools in the latency run at scale")
    parser.add_argument(
        "--hybrid",
        choices=("auto", "yes", "no"),
        default="auto",
        help="also rank with search_embedder=minilm (auto: when toolrt[semantic] is installed)",
    )
    args = parser.parse_args()
    quiet_logs()
    catalog, queries = load()
    if args.queries:
        queries = queries[: args.queries]
    print(f"BFCL v4: {len(catalog)} distinct functions, {len(queries)} queries with one known answer")

    with tempfile.TemporaryDirectory(prefix="toolrt-bench-") as data:
        rt = toolrt.connect("local", data_dir=data)
        started = time.perf_counter()
        ids: dict[str, str] = {}
        for i, item in enumerate(catalog):
            definition = {k: v for k, v in item.items() if k != "key"}
            ids[item["key"]] = rt.register_tool(f"publisher-{i % 7}", definition, "public").tool_id
        took = time.perf_counter() - started
        print(f"registered {len(catalog)} tools one by one in {took:.1f} s ({len(catalog) / took:.0f} tools/s)")

        bm25 = _bm25_baseline(catalog)
        keys = [item["key"] for item in catalog]
        correct = [ids[key] for _, key in queries]
        ours: list[list[str]] = []
        times: list[float] = []
        for text, _ in queries:
            t0 = time.perf_counter()
            hits = rt.search_tools("agent-x", text, limit=5)
            times.append((time.perf_counter() - t0) * 1000)
            ours.append([h.tool.tool_id for h in hits])
        baseline: list[list[str]] = []
        for text, _ in queries:
            scores = bm25.get_scores(re.findall(r"\w+", text.lower()))
            best = sorted(range(len(scores)), key=lambda i: -scores[i])[:5]
            baseline.append([ids[keys[i]] for i in best])
        o1, o5 = _recall(ours, correct)
        b1, b5 = _recall(baseline, correct)
        print(f"{'':34}{'recall@1':>10}{'recall@5':>10}")
        print(f"{'Okapi BM25 (rank-bm25), baseline':34}{b1:>10.3f}{b5:>10.3f}")
        print(f"{'search_tools, lexical (default)':34}{o1:>10.3f}{o5:>10.3f}{o1 / b1:>9.2f}x{o5 / b5:>9.2f}x")
        hybrid = args.hybrid == "yes" or (args.hybrid == "auto" and importlib.util.find_spec("sentence_transformers"))
        if hybrid:
            _hybrid(data, queries, correct, b1, b5)
        else:
            print("(hybrid ranking not measured: pip install 'toolrt[semantic]', or --hybrid yes)")
        _latency(rt, f"{len(catalog)} tools", times)

        # The same catalog many times over, under new names and owners, added in bulk.
        repo = rt.ports.repository
        extra = max(0, args.large - len(catalog))
        started = time.perf_counter()
        batch: list[Tool] = []
        for n in range(extra):
            item = catalog[n % len(catalog)]
            definition = ToolDefinition(
                name=f"{item['name'][:50]}_{n}",
                description=item["description"],
                language="python",
                code=CODE,
                input_schema=item["input_schema"],
            )
            batch.append(
                Tool.create(
                    tool_id=f"bulk-{n}",
                    owner=f"bulk-{n % 97}",
                    definition=definition,
                    visibility=Visibility.PUBLIC if n % 2 else Visibility.PRIVATE,
                    now=rt.ports.clock.now(),
                )
            )
            if len(batch) == 5000:
                repo.add_many(batch)  # type: ignore[attr-defined]
                batch = []
        if batch:
            repo.add_many(batch)  # type: ignore[attr-defined]
        print(f"added {extra} more tools in bulk in {time.perf_counter() - started:.1f} s")
        large: list[float] = []
        for text, _ in queries[:500]:
            t0 = time.perf_counter()
            rt.search_tools("bulk-3", text, limit=10)
            large.append((time.perf_counter() - t0) * 1000)
        _latency(rt, f"{len(catalog) + extra} tools", large, agent="bulk-3")
        rt.close()


def _hybrid(data: str, queries: list[tuple[str, str]], correct: list[str], b1: float, b5: float) -> None:
    # The same store, opened with the packaged MiniLM embedder: lexical and semantic rankings fused.
    with toolrt.connect("local", data_dir=data, search_embedder="minilm") as rt:
        started = time.perf_counter()
        rt.search_tools("agent-x", "warm up: embeds every visible tool once", limit=1)
        print(f"embedded the catalog in {time.perf_counter() - started:.1f} s (once per process)")
        ranked: list[list[str]] = []
        times: list[float] = []
        for text, _ in queries:
            t0 = time.perf_counter()
            ranked.append([h.tool.tool_id for h in rt.search_tools("agent-x", text, limit=5)])
            times.append((time.perf_counter() - t0) * 1000)
        h1, h5 = _recall(ranked, correct)
        print(f"{'search_tools, hybrid (minilm)':34}{h1:>10.3f}{h5:>10.3f}{h1 / b1:>9.2f}x{h5 / b5:>9.2f}x")
        print(f"hybrid search_tools p50 {p(times, 50):.2f} ms, p95 {p(times, 95):.2f} ms")


def _latency(rt: toolrt.ToolRuntime, label: str, times: list[float], agent: str = "agent-x") -> None:
    listing: list[float] = []
    for _ in range(200):
        t0 = time.perf_counter()
        rt.list_tools(agent, limit=10)
        listing.append((time.perf_counter() - t0) * 1000)
    print(
        f"{label}: search_tools p50 {p(times, 50):.2f} ms, p95 {p(times, 95):.2f} ms;"
        f" baseline list_tools(limit=10) p50 {p(listing, 50):.2f} ms"
        f" (search / listing {p(times, 50) / p(listing, 50):.1f}x)"
    )


if __name__ == "__main__":
    main()
