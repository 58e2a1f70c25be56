"""The ``env`` group: the environments built for tools' requirements (the runtime owner's commands)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from toolrt.adapters.cli.context import command_group, current_cli


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def list_(ctx: typer.Context) -> None:
    """List environments, least recently used first: digest, packages, size, last use, whether a tool uses it."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        envs = rt.environments()
        used = rt.referenced_locks()
    views: list[dict[str, Any]] = [
        {
            "digest": e.digest,
            "language": e.language,
            "packages": list(e.packages),
            "size_bytes": e.size_bytes,
            "last_used": e.last_used.isoformat(timespec="seconds") if e.last_used else None,
            "referenced": e.digest in used,
            "location": e.location,
        }
        for e in envs
    ]
    if cli.json:
        cli.emit({"environments": views, "total_bytes": sum(e.size_bytes for e in envs)})
        return
    if not views:
        cli.out.print("no environments")
        return
    table = Table("digest", "packages", "size", "last used", "in use")
    for v in views:
        table.add_row(
            v["digest"][:12],
            escape(", ".join(v["packages"])),
            _mb(v["size_bytes"]),
            v["last_used"] or "",
            "yes" if v["referenced"] else "no",
        )
    cli.out.print(table)
    cli.out.print(f"{len(views)} environment(s), {_mb(sum(e.size_bytes for e in envs))}", highlight=False)


def prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--apply", help="Only report what would go, or remove it (--apply, the default).")
    ] = False,
    max_mb: Annotated[
        Optional[int],
        typer.Option(
            "--max-mb", help="Also remove the least recently used in-use ones until all fit (default: the cache limit)."
        ),
    ] = None,
) -> None:
    """Remove environments no stored tool runs with, then the least recently used past the cache size.

    A removed environment that a tool still uses is rebuilt from its lock when the tool next runs.
    """
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        report = rt.prune_environments(max_mb=max_mb, dry_run=dry_run)
    if cli.json:
        cli.emit({"removed": list(report.removed), "freed_bytes": report.freed_bytes, "dry_run": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    cli.out.print(f"{verb} {len(report.removed)} environment(s), {_mb(report.freed_bytes)}", highlight=False)
    for digest in report.removed:
        cli.out.print(f"- {digest}", highlight=False)


def env_app() -> typer.Typer:
    """``toolrt env``: list, prune."""
    return command_group(
        "Environments of tools' requirements (the runtime owner's): list, prune.", list=list_, prune=prune
    )
