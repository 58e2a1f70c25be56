"""``toolrt demo``: register the sample tools, run them, show code reuse across agents and an update."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from toolrt.adapters.cli.tool_files import ToolFile, load_tool_file
from toolrt.adapters.node import node_usable
from toolrt.adapters.views import jsonable
from toolrt.application import ToolRuntime
from toolrt.domain import NotFoundError, Tool, ToolDefinition, Visibility

ALICE = "demo-alice"
BOB = "demo-bob"

# (file under examples/, parameters the demo calls it with)
SAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("python/add.py", {"a": 2, "b": 3.5}),
    ("python/word_stats.py", {"text": "The quick brown fox jumps over the lazy dog. The dog sleeps!"}),
    ("javascript/slugify.yaml", {"title": "Hello, Wörld: toolrt demo"}),
    ("typescript/temperature.json", {"value": 100, "from": "C", "to": "F"}),
)
UPDATE_FILE = ("python/word_stats_v2.py", "word_stats")
SHARED_FILE = "python/add.py"


@attrs.define
class DemoResult:
    """What the demo did, step by step, and the runtime's metrics afterwards."""

    steps: list[dict[str, Any]] = attrs.field(factory=list)
    metrics: dict[str, Any] = attrs.field(factory=dict)
    failed: bool = False
    skipped: list[str] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.failed, "steps": self.steps, "metrics": self.metrics, "skipped": self.skipped}


def default_examples_dir() -> Path | None:
    """The sample tools shipped with toolrt (package data), else examples/ next to the source, else ./examples."""
    candidates = []
    try:
        candidates.append(Path(str(resources.files("toolrt.examples"))))
    except (ModuleNotFoundError, TypeError):
        pass
    candidates += [Path(__file__).resolve().parents[2] / "examples", Path.cwd() / "examples"]
    for candidate in candidates:
        if (candidate / SAMPLES[0][0]).is_file():
            return candidate
    return None


def examples_folder(examples: Path | None) -> Path:
    """The folder the demo reads, or NotFoundError saying how to point at one."""
    folder = examples or default_examples_dir()
    if folder is None or not (folder / SAMPLES[0][0]).is_file():
        raise NotFoundError("examples folder", str(folder or "examples/"), hint="pass --examples DIR")
    return folder


def run_demo(rt: ToolRuntime, examples: Path | None = None, console: Console | None = None) -> DemoResult:
    """Run the demo on ``rt``; a second run on the same store finds and reuses the first run's tools."""
    folder = examples_folder(examples)
    result = DemoResult()
    update_file = load_tool_file(folder / UPDATE_FILE[0], name=UPDATE_FILE[1])
    updated_definition = rt.definition(update_file.definition)

    samples = SAMPLES
    if not node_usable():
        # A base install has no Node.js 24: the demo shows what it can and says what to add.
        samples = tuple(s for s in SAMPLES if s[0].startswith("python/"))
        result.skipped.append("the JavaScript and TypeScript samples need Node.js 24: pip install 'toolrt[js]'")
    tools: dict[str, Tool] = {}
    for relative, _ in samples:
        tool_file = load_tool_file(folder / relative)
        also_ok = (updated_definition,) if tool_file.name == UPDATE_FILE[1] else ()
        tools[tool_file.name] = _ensure(rt, result, ALICE, tool_file, also_ok)

    # Bob writes the same code as Alice: stored once, validated once.
    shared = load_tool_file(folder / SHARED_FILE)
    bob_tool = _ensure(rt, result, BOB, shared, ())

    for relative, params in samples:
        name = load_tool_file(folder / relative).name
        _execute(rt, result, ALICE, tools[name], params)
    _execute(rt, result, BOB, bob_tool, dict(SAMPLES[0][1]))

    # Alice ships version 2 of word_stats; executions now use it.
    target = tools[UPDATE_FILE[1]]
    update = rt.update_tool(ALICE, target.tool_id, update_file.definition)
    result.steps.append(
        _step(
            "update",
            ALICE,
            update.tool,
            cache_hit=update.cache_hit if update.new_version else None,
            note=f"version {update.version} created ({'new code' if update.new_code else 'same code'})"
            if update.new_version
            else f"version {update.version} already holds this code",
        )
    )
    _execute(rt, result, ALICE, update.tool, dict(SAMPLES[1][1]))

    shared_by = rt.get_tool_status(bob_tool.tool_id).shared_by
    result.steps.append(
        _step(
            "share", BOB, bob_tool, note=f"code {bob_tool.code_hash.short} is stored once and used by {shared_by} tools"
        )
    )
    result.metrics = _highlights(rt.metrics())
    if console is not None:
        _print(console, result)
    return result


def _ensure(
    rt: ToolRuntime, result: DemoResult, agent: str, tool_file: ToolFile, also_ok: tuple[ToolDefinition, ...]
) -> Tool:
    """The agent's tool of this name: found (from an earlier run), updated if its code moved on, or registered."""
    definition = rt.definition(tool_file.definition)
    existing = [t for t in rt.list_tools(owner=agent, name=definition.name) if t.name == definition.name]
    if existing:
        tool = existing[0]
        if tool.definition == definition or tool.definition in also_ok:
            result.steps.append(_step("found", agent, tool, note="registered by an earlier run; reused"))
            return tool
        update = rt.update_tool(agent, tool.tool_id, definition)
        result.steps.append(
            _step(
                "update",
                agent,
                update.tool,
                cache_hit=update.cache_hit,
                note=f"brought up to date: version {update.version}",
            )
        )
        return update.tool
    # Alice publishes her tools so that Bob's identical code is a visible cache hit: the code of a
    # tool Bob could not see would be validated again, so as not to tell him it exists.
    visibility = tool_file.visibility or (Visibility.PUBLIC if agent == ALICE else Visibility.PRIVATE)
    registration = rt.register_tool(agent, definition, visibility, on_duplicate="create")
    note = (
        "same code as a tool it can see: validation skipped, stored once"
        if registration.cache_hit
        else "new code: validated and stored"
    )
    result.steps.append(_step("register", agent, registration.tool, cache_hit=registration.cache_hit, note=note))
    return registration.tool


def _execute(rt: ToolRuntime, result: DemoResult, agent: str, tool: Tool, params: dict[str, Any]) -> None:
    execution = rt.execute_tool(agent, tool.tool_id, params)
    if execution.ok:
        note = _short(jsonable(execution.output))
    else:
        result.failed = True
        error = execution.error
        note = f"{execution.status.value}: {error.type}: {error.message}" if error else execution.status.value
    step = _step("run", agent, tool, note=note)
    step.update(
        status=execution.status.value,
        wall_ms=round(execution.metrics.wall_ms, 1),
        isolation=execution.metrics.isolation.value,
        params=params,
        output=jsonable(execution.output),
    )
    result.steps.append(step)


def _step(action: str, agent: str, tool: Tool, *, cache_hit: bool | None = None, note: str = "") -> dict[str, Any]:
    return {
        "action": action,
        "agent": agent,
        "tool": tool.name,
        "tool_id": tool.tool_id,
        "language": tool.definition.language.value,
        "version": tool.current_version,
        "code_hash": tool.code_hash.short,
        "cache_hit": cache_hit,
        "note": note,
    }


def _short(value: Any, limit: int = 70) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _highlights(snapshot: dict[str, Any]) -> dict[str, Any]:
    counters: dict[str, int] = snapshot.get("counters", {})
    timings: dict[str, dict[str, float]] = snapshot.get("timings", {})

    def total(prefix: str, **dims: str) -> int:
        wanted = [f"{k}={v}" for k, v in dims.items()]
        return sum(n for key, n in counters.items() if key.split("|")[0] == prefix and all(w in key for w in wanted))

    def mean(name: str, **dims: str) -> float | None:
        wanted = [f"{k}={v}" for k, v in dims.items()]
        picked = [s for key, s in timings.items() if key.split("|")[0] == name and all(w in key for w in wanted)]
        count = sum(s["count"] for s in picked)
        return round(sum(s["sum"] for s in picked) / count, 2) if count else None

    return {
        "registrations": total("registrations", outcome="success"),
        "artifact_cache_hits": total("artifact_cache", result="hit"),
        "artifact_cache_misses": total("artifact_cache", result="miss"),
        "updates": total("updates", outcome="success"),
        "executions": total("executions"),
        "executions_succeeded": total("executions", status="succeeded"),
        "registration_ms_mean_hit": mean("registration_ms", cache="hit"),
        "registration_ms_mean_miss": mean("registration_ms", cache="miss"),
        "execution_ms_mean": mean("execution_ms"),
    }


def _print(console: Console, result: DemoResult) -> None:
    if not console.is_terminal and console.width < 120:
        console.width = 120  # logs and CI: rich would otherwise squeeze the table into 80 columns
    table = Table(title="toolrt demo", expand=False)
    for header in ("step", "agent", "tool", "lang", "ver", "code", "cache"):
        table.add_column(header, no_wrap=True)
    table.add_column("what happened", overflow="fold", min_width=30)
    for s in result.steps:
        cache = "" if s["cache_hit"] is None else ("hit" if s["cache_hit"] else "miss")
        what = (
            s["note"] if s["action"] != "run" else f"{s['status']} in {s['wall_ms']} ms ({s['isolation']}): {s['note']}"
        )
        table.add_row(
            s["action"],
            s["agent"].removeprefix("demo-"),
            s["tool"],
            {"python": "py", "javascript": "js", "typescript": "ts"}.get(s["language"], s["language"]),
            str(s["version"]),
            s["code_hash"][:8],
            cache,
            what,
        )
    console.print(table)
    metrics = Table("metric", "value", title="metrics")
    for key, value in result.metrics.items():
        metrics.add_row(key.replace("_", " "), "-" if value is None else str(value))
    console.print(metrics)
    for note in result.skipped:
        console.print(f"skipped: {note}", markup=False)
    if result.failed:
        console.print("[bold red]some executions failed[/] (see the table; `toolrt doctor` checks the machine)")
    else:
        console.print(
            "Run [bold]toolrt demo[/] again: it finds these tools and reuses them. [bold]toolrt --agent demo-alice list[/] shows them."
        )
