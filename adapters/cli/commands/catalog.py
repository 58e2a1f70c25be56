"""Commands that read tools and their history: list, show, versions, history."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from toolrt.adapters.cli.context import EXIT_USER_ERROR, current_cli
from toolrt.adapters.cli.lookup import resolve_tool
from toolrt.adapters.cli.output import inert
from toolrt.adapters.operations import run_on_tool
from toolrt.adapters.views import (
    execution_view,
    jsonable,
    registration_view,
    status_view,
    template_view,
    tool_view,
    usage_view,
)


def list_(
    ctx: typer.Context,
    mine: Annotated[bool, typer.Option("--mine", metavar="", help="Only the agent's own tools.")] = False,
    all_: Annotated[bool, typer.Option("--all", metavar="", help="Include deregistered (inactive) tools.")] = False,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only tools with this tag.")] = None,
    text: Annotated[
        Optional[str], typer.Option("--text", help="Only tools whose name or description contains this.")
    ] = None,
) -> None:
    """List the tools the agent can discover (its own and public ones)."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        tools = rt.list_tools(
            None if mine else cli.agent,
            owner=cli.agent if mine else None,
            status=None if all_ else "active",
            tag=tag,
            text=text,
        )
        usage = rt.tools_usage(cli.agent, [t.tool_id for t in tools]) if tools else {}
    views = [tool_view(t) | {"usage": usage_view(usage.get(t.tool_id))} for t in tools]
    if cli.json:
        cli.emit(views)
        return
    if not views:
        cli.out.print(
            f"no tools visible to {cli.agent} (toolrt examples copies sample tools to ./examples; "
            "then: toolrt register examples/python/add.py)",
            markup=False,
            highlight=False,
        )
        return
    if not cli.out.is_terminal and cli.out.width < 160:
        cli.out.width = 160  # piped: nothing to fit, and nothing should be cut
    table = Table(title=f"tools visible to {inert(cli.agent)}")
    table.add_column("name", min_width=min(24, max(len(v["name"]) for v in views)))
    table.add_column("tool id", no_wrap=True, min_width=max(len(v["tool_id"]) for v in views))  # never cut
    for header in ("owner", "lang", "ver", "visibility", "status", "calls", "ok"):
        table.add_column(header, no_wrap=True)
    table.add_column("description", overflow="fold", min_width=12)
    for v in views:
        calls, rate = _usage_cells(v["usage"])
        table.add_row(
            inert(v["name"]),
            inert(v["tool_id"]),
            inert(v["owner"]),
            v["language"],
            str(v["version"]),
            inert(v["visibility"]),
            v["status"],
            calls,
            rate,
            inert(_first_line(v["description"], 60)),
        )
    cli.out.print(table)


def _first_line(text: str, width: int) -> str:
    lines = text.splitlines()
    return lines[0][:width] if lines else ""


def _usage_cells(usage: dict[str, Any] | None) -> tuple[str, str]:
    # "calls" and "ok" columns: finished calls by anyone, and the share that succeeded.
    usage = usage or {}
    rate = usage.get("success_rate")
    return str(usage.get("executions", 0)), "-" if rate is None else f"{rate:.0%}"


def show(ctx: typer.Context, tool: Annotated[str, typer.Argument(help="Tool id or name.")]) -> None:
    """Show one tool: definition in force, status and version history."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
        status = rt.get_tool_status(found.tool_id, cli.agent)
    view = tool_view(found, with_definition=True)
    view["status_report"] = status_view(status)
    if found.definition.lock is not None:  # made by the runtime, so not part of the definition as written
        view["lock"] = jsonable(found.definition.lock)
    if cli.json:
        cli.emit(view)
        return
    d = view["definition"]
    cli.out.print(
        f"[bold]{inert(found.name)}[/]  {inert(found.tool_id)}  "
        f"(owner {inert(found.owner)}, {inert(found.visibility_label)}, {found.status.value})",
        highlight=False,
    )
    cli.out.print(d["description"], markup=False, highlight=False)
    cli.out.print(
        f"language {d['language']}, entrypoint {inert(d['entrypoint'])}, version {found.current_version} of "
        f"{found.latest_version}, code hash {view['code_hash'][:16]}",
        highlight=False,
    )
    cli.out.print(
        f"artifact stored: {status.artifact_stored}, shared by {status.shared_by} tool(s), published: {status.published}"
        + (f", JavaScript engine: {inert(status.js_engine)}" if status.js_engine else ""),
        highlight=False,
    )
    cli.out.print("input schema:", highlight=False)
    cli.out.print_json(json.dumps(d["input_schema"]))
    if cli.verbose:
        cli.out.print("code:")
        cli.out.print(found.definition.code, markup=False, highlight=False)


def versions(ctx: typer.Context, tool: Annotated[str, typer.Argument(help="Tool id or name.")]) -> None:
    """List a tool's versions, oldest first."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
        view = run_on_tool("list_versions", rt, cli.agent, found, {})
    if cli.json:
        cli.emit(view)
        return
    views = view["versions"]
    title = f"{inert(found.name)} ({inert(found.tool_id)})"
    table = Table("version", "", "code hash", "created", "description", title=title)
    for v in views:
        table.add_row(
            str(v["version"]),
            "in force" if v["current"] else "",
            v["code_hash"][:12],
            v["created_at"][:19],
            inert(_first_line(v["description"], 60)),
        )
    cli.out.print(table)


def history(
    ctx: typer.Context,
    tool: Annotated[Optional[str], typer.Option("--tool", help="Only calls of this tool (id or name).")] = None,
    status: Annotated[
        Optional[str], typer.Option("--status", help="Only calls that ended so (succeeded, failed, ...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 20,
    cursor: Annotated[
        Optional[str], typer.Option("--cursor", help="Continue after a previous page (its next_cursor).")
    ] = None,
) -> None:
    """List the executions the agent may see: its own calls and every call of its tools."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        page = rt.list_executions(cli.agent, tool=tool, status=status, limit=limit, cursor=cursor)
    if cli.json:
        cli.emit({"executions": [execution_view(e) for e in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        cli.out.print("no executions")
        return
    table = Table(
        "created",
        "execution id",
        "tool id",
        "v",
        "caller",
        "status",
        "ms",
        title=f"executions visible to {inert(cli.agent)}",
    )
    for e in page.items:
        table.add_row(
            e.created_at.isoformat()[:19],
            inert(e.execution_id),
            inert(e.tool_id),
            str(e.version),
            inert(e.caller),
            e.status.value,
            f"{e.metrics.wall_ms:.1f}",
        )
    cli.out.print(table)
    if page.next_cursor:
        cli.out.print(f"more: --cursor '{page.next_cursor}'", highlight=False, markup=False)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What the tool should do, e.g. 'convert miles to km'.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many results (1 to 100).")] = 10,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Only tools with this tag (repeatable).")] = None,
) -> None:
    """Find the tools the agent may use for a request, best first."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        results = rt.search_tools(cli.agent, query, limit=limit, tags=tag or (), with_usage=True)
    views = [
        {
            **tool_view(r.tool),
            "score": round(r.score, 6),
            "matched": list(r.matched),
            "usage": usage_view(r.usage),
        }
        for r in results
    ]
    if cli.json:
        cli.emit(views)
        return
    if not views:
        cli.out.print(f"no tool visible to {cli.agent} matches {query!r}", highlight=False, markup=False)
        return
    if not cli.out.is_terminal and cli.out.width < 160:
        cli.out.width = 160
    table = Table(
        "score",
        "name",
        "tool id",
        "owner",
        "matched",
        "calls",
        "ok",
        "description",
        title=f"tools for {inert(repr(query))}",
    )
    for v in views:
        table.add_row(
            f"{v['score']:.3f}",
            inert(v["name"]),
            inert(v["tool_id"]),
            inert(v["owner"]),
            ", ".join(v["matched"]),
            *_usage_cells(v["usage"]),
            inert(str(v.get("description", ""))[:80]),
        )
    cli.out.print(table)


def templates(
    ctx: typer.Context,
    show: Annotated[Optional[str], typer.Option("--show", help="Show one template's placeholders.")] = None,
) -> None:
    """List the tool templates an agent can start from (toolrt from-template NAME key=value ...)."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = [rt.templates.get(show)] if show else rt.list_templates()
    views = [template_view(t) for t in found]
    if cli.json:
        cli.emit(views[0] if show else views)
        return
    if show:
        view = views[0]
        cli.out.print(f"[bold]{inert(view['name'])}[/]: {inert(view['description'])}", highlight=False)
        for p in view["placeholders"]:
            default = f" (default {p['default']})" if p["default"] is not None else ""
            cli.out.print(f"  {p['name']}{default}: {p['description']}", markup=False, highlight=False)
        return
    table = Table("template", "placeholders", "description", title="tool templates")
    for view in views:
        table.add_row(
            inert(view["name"]), inert(", ".join(p["name"] for p in view["placeholders"])), inert(view["description"])
        )
    cli.out.print(table)


def from_template(
    ctx: typer.Context,
    template: Annotated[str, typer.Argument(help="The template's name (toolrt templates lists them).")],
    values: Annotated[Optional[list[str]], typer.Argument(help="key=value for each placeholder.")] = None,
    visibility: Annotated[
        Optional[str], typer.Option("--visibility", help="private (default), shared, public or team:NAME.")
    ] = None,
    on_duplicate: Annotated[str, typer.Option("--on-duplicate", help="warn, create, reuse or error.")] = "warn",
) -> None:
    """Register a tool of the agent's own from a template."""
    cli = current_cli(ctx)
    filled: dict[str, str] = {}
    for pair in values or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            cli.fail(EXIT_USER_ERROR, f"placeholder values are key=value, got {pair!r}")
        filled[key] = value
    with cli.runtime() as rt:
        reg = rt.create_from_template(cli.agent, template, filled, visibility or "private", on_duplicate=on_duplicate)
    view = registration_view(reg)
    if cli.json:
        cli.emit(view)
        return
    what = "reused" if reg.reused else "registered"
    cli.out.print(
        f"{what} [bold]{inert(reg.tool.name)}[/] as {inert(reg.tool_id)} from template {inert(template)}",
        highlight=False,
    )
