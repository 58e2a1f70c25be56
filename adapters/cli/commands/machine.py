"""Commands about this machine and its store: doctor, demo, examples, gc."""

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


def examples(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Where to copy them (created; default: ./examples).")] = Path(
        "examples"
    ),
) -> None:
    """Copy the sample tools shipped with toolrt into a folder, to read, change and register."""
    import shutil

    from toolrt.adapters.cli.demo import examples_folder
    from toolrt.domain import ConflictError

    cli = current_cli(ctx)
    with cli.guard():
        source = examples_folder(None)
        files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file() and p.suffix != ".pyc")
        files = [f for f in files if "__pycache__" not in f.parts]
        taken = [str(folder / f) for f in files if (folder / f).exists()]
        if taken:  # nothing is copied over a file the user may have changed
            raise ConflictError(
                f"{', '.join(taken[:5])}{' ...' if len(taken) > 5 else ''} exist already; choose another folder"
            )
        for relative in files:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, folder / relative)
    if cli.json:
        cli.emit({"folder": str(folder), "files": [str(folder / f) for f in files]})
        return
    cli.out.print(
        f"copied {len(files)} files to {escape(str(folder))}/ (see its README.md); for example:", highlight=False
    )
    cli.out.print(f"  toolrt register {escape(str(folder / 'python' / 'add.py'))}", highlight=False)
    cli.out.print("  toolrt invoke add a=2 b=3", highlight=False)


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


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run/--apply", help="Only report what would go (the default), or remove it (--apply)."),
    ] = True,
    older_than: Annotated[
        Optional[str],
        typer.Option("--older-than", help="Remove finished execution records older than this (30d, 12h, 90m)."),
    ] = None,
    keep_versions: Annotated[
        Optional[int],
        typer.Option("--keep-versions", help="Versions an inactive tool keeps, the current one included."),
    ] = None,
    grace: Annotated[
        Optional[float],
        typer.Option("--grace", help="Leave unreferenced artifacts younger than this many seconds."),
    ] = None,
    keep_executions: Annotated[
        Optional[int],
        typer.Option("--keep-executions", min=1, help="Keep at most this many finished execution records, the newest."),
    ] = None,
) -> None:
    """Remove unreferenced artifacts, old execution records and old versions of inactive tools.

    An operator's command (it acts on every agent's data): by default it only reports.
    """
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        result = rt.collect_garbage(
            older_than=older_than,
            keep_versions=keep_versions,
            grace_s=grace,
            dry_run=dry_run,
            keep_executions=keep_executions,
        )
    if cli.json:
        cli.emit(result.as_dict())
    else:
        verb = "would remove" if result.dry_run else "removed"
        table = Table("what", verb, "detail", title="toolrt gc" + (" (dry run: --apply to remove)" if dry_run else ""))
        table.add_row(
            "artifacts",
            str(len(result.artifacts)),
            f"{result.artifact_bytes} bytes of code; {result.young_artifacts} younger than the grace period kept",
        )
        before = result.executions_before.isoformat(timespec="seconds") if result.executions_before else ""
        kept = f", or beyond the newest {keep_executions}" if keep_executions else ""
        table.add_row("execution records", str(result.executions), f"finished before {before}{kept}")
        table.add_row("counter totals", str(result.counters), f"minutes before {before} (fleet metrics)")
        table.add_row("versions of inactive tools", str(result.versions), f"from {len(result.pruned)} tool(s)")
        cli.out.print(table)
        for code_hash in result.artifacts[:20]:
            cli.out.print(f"- artifact {code_hash}", highlight=False)
        for pruned in result.pruned[:20]:
            cli.out.print(f"- {pruned.tool_id}: versions {', '.join(map(str, pruned.versions))}", highlight=False)
        for problem in result.problems:
            cli.err.print(f"warning: {problem}", markup=False, highlight=False)
    if result.problems:
        raise typer.Exit(EXIT_FAILURE)
