"""Commands that change tools: register, update, deregister, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from toolrt.adapters import views
from toolrt.adapters.cli.context import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USER_ERROR,
    Cli,
    VisibilityOption,
    about,
    current_cli,
    exit_code_for,
)
from toolrt.adapters.cli.lookup import parse_weights, resolve_tool
from toolrt.adapters.cli.tool_files import (
    DATA_SUFFIXES,
    PYTHON_SUFFIXES,
    ToolFile,
    code_file_named,
    load_tool_file,
)
from toolrt.adapters.operations import run_on_tool
from toolrt.application import ToolRuntime
from toolrt.domain import ConflictError, Finding, Severity, ValidationError, Visibility


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for the tool files directly in it, sorted by name. A code file
    that a tool.yaml/.json beside it points to (code_file) is registered through that file only."""
    expanded: list[Path] = []
    for path in paths:
        if not path.is_dir():
            expanded.append(path)
            continue
        found = sorted(filter(_is_tool_file, path.iterdir()))
        described: set[Path] = set()
        for data in (p for p in found if p.suffix.lower() in DATA_SUFFIXES):
            try:
                code_file = code_file_named(data)
            except ValidationError:
                continue  # registering it reports what is wrong with it
            if code_file is not None:
                described.add(code_file)
        expanded += [p for p in found if p.resolve() not in described]
    return expanded


def register(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Python files with a typed, documented entrypoint, tool.yaml / tool.json files, or folders of them."
        ),
    ],
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="The tool's name (one file only; default: the file's stem or its name field)."),
    ] = None,
    entrypoint: Annotated[
        Optional[str], typer.Option("--entrypoint", help="The function to call (default: handler).")
    ] = None,
    description: Annotated[
        Optional[str],
        typer.Option(
            "--description",
            help="What the tool does (one file only; default: the entrypoint's docstring or the file's description).",
        ),
    ] = None,
    visibility: VisibilityOption = None,
    on_duplicate: Annotated[
        str,
        typer.Option(
            "--on-duplicate",
            help="When a visible tool already does the same: warn (default), create, reuse (use it instead) or error; "
            "update: this agent's tool of the same name gets a new version when the file changed.",
        ),
    ] = "warn",
) -> None:
    """Register tools from files (several at once with a progress bar)."""
    cli = current_cli(ctx)
    given, files = files, _expand(files)
    if not files:
        cli.fail(EXIT_USER_ERROR, _nothing_found(given))
    if (name or description) and len(files) > 1:
        cli.fail(EXIT_USER_ERROR, "--name and --description need exactly one file")
    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    with cli.runtime() as rt:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=cli.err,
            # Off a terminal the bar would leave only a blank line behind.
            disable=cli.json or len(files) < 2 or not cli.err.is_terminal,
            transient=True,
        )
        with progress:
            task = progress.add_task("registering", total=len(files))
            for path in files:
                progress.update(task, description=f"registering {path.name}")
                tool_file: ToolFile | None = None
                try:
                    tool_file = load_tool_file(path, name=name, entrypoint=entrypoint, description=description)
                    chosen = visibility or tool_file.visibility or Visibility.PRIVATE
                    reg = rt.register_tool(cli.agent, tool_file.definition, chosen, on_duplicate=on_duplicate)
                    results.append({"file": str(path), "ok": True, **views.registration_view(reg)})
                except Exception as exc:
                    code = exit_code_for(exc)
                    # A failure (1) outranks a user error (2): scripts retry on 1, fix input on 2.
                    worst = EXIT_FAILURE if EXIT_FAILURE in (worst, code) else code
                    error = views.error_view(exc)
                    hint = _name_taken_hint(rt, cli.agent, path, tool_file, name, exc)
                    if hint:
                        error["hint"] = hint
                    results.append({"file": str(path), "ok": False, "exit_code": code, "error": error})
                    if len(files) == 1:
                        cli.fail(code, about(path, exc) + (f"; {hint}" if hint else ""), exc)
                progress.advance(task)
    if cli.json:
        cli.emit(results if len(files) > 1 else results[0])
    else:
        _print_registrations(cli, results)
    if worst:
        raise typer.Exit(worst)


def _is_tool_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (*PYTHON_SUFFIXES, *DATA_SUFFIXES)


def _holds_tool_files(folder: Path) -> bool:
    try:
        return any(map(_is_tool_file, folder.iterdir()))
    except OSError:  # a subfolder we may not read: not one to suggest
        return False


def _nothing_found(given: list[Path]) -> str:
    """Why no tool file came of the folders given, and where some are: folders are read one level
    deep, so ``toolrt register examples`` finds nothing in the folder the samples are copied to."""
    folders = [p for p in given if p.is_dir()]
    below = [d for f in folders for d in sorted(f.iterdir()) if d.is_dir() and _holds_tool_files(d)]
    where = f" in {', '.join(map(str, folders))}" if folders else ""
    if below:
        return f"no tool files found{where}; subfolders are not searched: give {' '.join(map(str, below))}"
    return f"no tool files found{where}: give .py, .yaml, .yml or .json files, or folders holding them"


def _name_taken_hint(
    rt: ToolRuntime, agent: str, path: Path, tool_file: ToolFile | None, name: str | None, exc: Exception
) -> str:
    """The next step when registering failed because ``agent`` already has an active tool of that
    name (the file registered before, by the README or an earlier run): update it instead."""
    if not isinstance(exc, ConflictError) or tool_file is None:
        return ""
    if not rt.list_tools(agent, owner=agent, name=tool_file.name):
        return ""  # another conflict (a concurrent change): retrying is the step
    again = f"toolrt update {path}" + (f" --name {name}" if name else "")
    return f"to give it a new version: {again}, or register with --on-duplicate update"


def _failure_line(result: dict[str, Any]) -> str:
    """A file's error in one line that names the file once and says the problem once: a validation
    error with a single error finding is that finding (rule, place, hint), else the message."""
    error, file = result["error"], result["file"]
    errors = [f for f in error.get("findings", []) if f["severity"] == Severity.ERROR.value]
    if len(errors) == 1:
        text = str(Finding(**{**errors[0], "severity": Severity.ERROR}))
    else:
        text = error["message"].splitlines()[0].removeprefix(f"{file}: ")
    return f"{file}: {text}" + (f"; {error['hint']}" if "hint" in error else "")


def _print_registrations(cli: Cli, results: list[dict[str, Any]]) -> None:
    """One line per file: registered, reused or the error (naming the file once, with its next step)."""
    for r in results:
        if r["ok"] and r["reused"]:
            cli.out.print(
                f"reused [bold]{escape(r['name'])}[/] ({r['tool_id']}) instead of registering {escape(r['file'])}",
                highlight=False,
            )
        elif r["ok"]:
            cache = "reused stored code (cache hit)" if r["cache_hit"] else "new code validated"
            for similar in r["similar"]:
                cli.err.print(
                    f"  note: {similar['kind']} match: {similar['name']} ({similar['tool_id']}, owner {similar['owner']})",
                    markup=False,
                    highlight=False,
                )
            cli.out.print(
                f"registered [bold]{r['name']}[/] as {r['tool_id']} (v{r['version']}, {cache}, hash {r['code_hash'][:12]})",
                highlight=False,
            )
            for finding in r["report"]["findings"]:
                cli.out.print(
                    f"  [{finding['severity']}] {finding['rule_id']}: {finding['message']}",
                    markup=False,
                    highlight=False,
                )
        else:
            cli.err.print(
                f"[bold red]error[/] ({r['error']['type']}): {escape(_failure_line(r))}",
                highlight=False,
                soft_wrap=True,
            )
            if cli.verbose:
                for finding in r["error"].get("findings", []):
                    cli.err.print(
                        f"  [{finding['severity']}] {finding['rule_id']}: {finding['message']}",
                        markup=False,
                        highlight=False,
                    )


def update(
    ctx: typer.Context,
    file: Annotated[Optional[Path], typer.Argument(help="The tool file with the new definition.")] = None,
    tool: Annotated[
        Optional[str], typer.Option("--tool", help="Tool id or name to update (default: the name in the file).")
    ] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The tool's name, overriding the file.")] = None,
    entrypoint: Annotated[Optional[str], typer.Option("--entrypoint", help="The function to call.")] = None,
    visibility: VisibilityOption = None,
) -> None:
    """Give a tool a new version from a file, and/or a new visibility."""
    cli = current_cli(ctx)
    if file is None and (tool is None or visibility is None):
        cli.fail(EXIT_USER_ERROR, "give a tool file, or --tool with --visibility")
    with cli.runtime() as rt:
        tool_file: ToolFile | None = None
        if file is not None:
            tool_file = load_tool_file(file, name=name, entrypoint=entrypoint)
        ref = tool or (tool_file.name if tool_file else "")
        found = resolve_tool(rt, cli.agent, ref)
        new_visibility = visibility or (tool_file.visibility if tool_file else None)
        try:
            result = rt.update_tool(
                cli.agent, found.tool_id, tool_file.definition if tool_file else None, new_visibility
            )
        except ValidationError as exc:
            if file is None:
                raise
            cli.fail(EXIT_USER_ERROR, about(file, exc), exc)
    view = views.update_view(result)
    if cli.json:
        cli.emit(view)
    elif result.new_version:
        code = "new code" if result.new_code else "same code, new interface or description"
        cli.out.print(f"updated [bold]{view['name']}[/] to version {result.version} ({code})", highlight=False)
    else:
        cli.out.print(
            f"{view['name']} unchanged: version {result.version} already holds this definition (visibility {view['visibility']})",
            highlight=False,
        )


def deregister(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    purge: Annotated[
        bool,
        typer.Option("--purge", metavar="", help="Delete the record and history too (default: keep it, inactive)."),
    ] = False,
) -> None:
    """Withdraw a tool (and free code no other tool uses)."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
        view = run_on_tool("deregister_tool", rt, cli.agent, found, {"purge": purge})
    if cli.json:
        cli.emit(view)
    else:
        what = "deleted" if view["purged"] else "deregistered (kept inactive)"
        freed = f", freed {len(view['deleted_artifacts'])} artifact(s)" if view["deleted_artifacts"] else ""
        cli.out.print(f"{found.name} ({found.tool_id}) {what}{freed}", highlight=False)
        for problem in view["problems"]:
            cli.err.print(f"warning: {problem}", markup=False, highlight=False)
    if view["problems"]:
        raise typer.Exit(EXIT_FAILURE)


def traffic(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    weights: Annotated[
        Optional[list[str]], typer.Argument(help="VERSION=PERCENT pairs summing to 100, e.g. 1=90 2=10.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", metavar="", help="Send every call to the version in force.")
    ] = False,
    guard_margin: Annotated[
        Optional[float],
        typer.Option("--guard-margin", help="End the split if a candidate's error rate is this much higher."),
    ] = None,
    guard_min_calls: Annotated[
        Optional[int], typer.Option("--guard-min-calls", help="...once it has this many calls since the split began.")
    ] = None,
) -> None:
    """Route un-pinned calls of a tool between its versions by weight (or show the split)."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool)
        if weights or clear:
            if weights and clear:
                cli.fail(EXIT_USER_ERROR, "give weights or --clear, not both")
            args: dict[str, Any] = {"weights": None if clear else parse_weights(weights or [])}
            if guard_margin is not None:
                args["guard_margin"] = guard_margin
            if guard_min_calls is not None:
                args["guard_min_calls"] = guard_min_calls
            view = run_on_tool("set_traffic", rt, cli.agent, found, args)
        else:
            split = {str(v): w for v, w in found.traffic.weights} if found.traffic else {}
            view = views.tool_view(found) | {"traffic": split, "traffic_note": found.traffic_note}
    if cli.json:
        cli.emit(view)
        return
    if view["traffic"]:
        shares = ", ".join(f"v{v} {w}%" for v, w in view["traffic"].items())
        cli.out.print(f"{found.name} ({found.tool_id}): {shares}", highlight=False)
    else:
        note = f" ({view['traffic_note']})" if view["traffic_note"] else ""
        cli.out.print(f"{found.name}: every call to version {view['version']}{note}", highlight=False)


def promote(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    version: Annotated[int, typer.Argument(help="The version to put in force.")],
) -> None:
    """Put a version in force and end any traffic split."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        view = run_on_tool("promote", rt, cli.agent, resolve_tool(rt, cli.agent, tool), {"version": version})
    _in_force(cli, view)


def metrics(ctx: typer.Context, tool: Annotated[str, typer.Argument(help="Tool id or name.")]) -> None:
    """Per-version calls, outcomes and wall time of a tool."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
        view = run_on_tool("tool_metrics", rt, cli.agent, found, {})
    if cli.json:
        cli.emit(view)
        return
    headers = ("version", "", "calls", "ok", "failed", "timeout", "killed", "p50 ms", "p95 ms", "errors")
    table = Table(*headers, title=found.name)
    table.columns[1].no_wrap = True
    for v in view["versions"]:
        table.add_row(
            str(v["version"]),
            "in force" if v["version"] == view["current_version"] else "",
            str(v["executions"]),
            str(v["succeeded"]),
            str(v["failed"]),
            str(v["timed_out"]),
            str(v["killed"]),
            "-" if v["p50_ms"] is None else f"{v['p50_ms']:.1f}",
            "-" if v["p95_ms"] is None else f"{v['p95_ms']:.1f}",
            escape(", ".join(f"{k} {n}" for k, n in v["errors"].items())),
        )
    cli.out.print(table)


def rollback(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    version: Annotated[int, typer.Argument(help="The version to put back in force.")],
) -> None:
    """Put an earlier version of a tool back in force."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        view = run_on_tool("rollback_tool", rt, cli.agent, resolve_tool(rt, cli.agent, tool), {"version": version})
    _in_force(cli, view)


def _in_force(cli: Cli, view: dict[str, Any]) -> None:
    """What a rollback or a promotion left in force."""
    if cli.json:
        cli.emit(view)
    else:
        cli.out.print(f"{view['name']} ({view['tool_id']}): version {view['version']} in force", highlight=False)
