"""Commands about this machine and its store: doctor, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from toolrt.adapters.cli.context import EXIT_FAILURE, current_cli


def doctor(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", metavar="", help="Repair the store (orphan artifacts, half-written records).")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            help="Leave orphans and temp files younger than this many seconds (a registration may still be running).",
        ),
    ] = 600.0,
) -> None:
    """Check this machine and the data directory, and say what toolrt will do here."""
    from toolrt.adapters.cli.doctor import run_doctor

    cli = current_cli(ctx)
    with cli.guard():
        report = run_doctor(cli.connect, cli.profile, cli.settings(), repair=repair, grace_s=grace)
    if cli.json:
        cli.emit(report.as_dict())
    else:
        table = Table("check", "", "detail", title="toolrt doctor")
        for check in report.checks:
            mark = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}[check.state]
            table.add_row(escape(check.name), mark, escape(check.detail))
        cli.out.print(table)
        for line in report.plan:
            cli.out.print(f"- {line}", highlight=False)
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)


def demo(
    ctx: typer.Context,
    examples: Annotated[
        Optional[Path],
        typer.Option("--examples", help="Folder of sample tools (default: the examples/ folder shipped with toolrt)."),
    ] = None,
) -> None:
    """Register the sample tools, run them, show code reuse across agents and an update."""
    import shutil

    from toolrt.adapters.cli.demo import examples_folder, run_demo
    from toolrt.settings import Settings

    cli = current_cli(ctx)
    with cli.guard():
        folder = examples_folder(examples)  # before anything is created
        settings = Settings.load({"profile": cli.profile, **cli.settings()} if cli.profile else cli.settings())
    created = settings.backend("repository") == "local" and not settings.data_dir.exists()
    failed = True
    try:
        with cli.runtime() as rt:
            result = run_demo(rt, folder, console=None if cli.json else cli.out)
        failed = result.failed
    finally:
        if failed and created:
            # A demo that failed in a folder it created leaves nothing behind.
            shutil.rmtree(settings.data_dir, ignore_errors=True)
    if cli.json:
        cli.emit(result.as_dict())
    if result.failed:
        raise typer.Exit(EXIT_FAILURE)
