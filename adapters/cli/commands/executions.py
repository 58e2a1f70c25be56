"""The command that runs a tool: invoke."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Annotated, Optional

import typer
from rich.console import Console

from toolrt.adapters import views
from toolrt.adapters.cli import output
from toolrt.adapters.cli.context import EXIT_FAILURE, current_cli
from toolrt.adapters.cli.lookup import parse_params, resolve_tool
from toolrt.adapters.cli.output import inert
from toolrt.domain import Execution


def invoke(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    params: Annotated[
        Optional[list[str]],
        typer.Argument(help="One JSON object, or key=value pairs (values parsed as JSON when they parse)."),
    ] = None,
    version: Annotated[
        Optional[int],
        typer.Option("--version", metavar="N", help="Run this version instead of the one in force."),
    ] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="This call's time limit (default: the tool's, within the configured maximum).",
        ),
    ] = None,
    memory: Annotated[
        Optional[int],
        typer.Option(
            "--memory", metavar="MB", help="This call's memory limit (default: the tool's, within the maximum)."
        ),
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Show what the tool prints (on stderr) while it runs.")
    ] = False,
    progress: Annotated[
        Optional[bool],
        typer.Option(
            "--progress/--no-progress",
            help="A spinner with the elapsed time on stderr while the tool runs (default: when stderr is a terminal).",
        ),
    ] = None,
) -> None:
    """Run a tool and print its output."""
    cli = current_cli(ctx)
    spinning = progress if progress is not None else (cli.err.is_terminal and not cli.json)

    def show(_stream: str, text: str) -> None:
        if spinning:  # printed above the spinner, which stays at the bottom
            cli.err.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(output.strip_controls(text))  # the tool's text, never its terminal codes
            sys.stderr.flush()

    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool)

        def run() -> Execution:
            return rt.execute_tool(
                cli.agent,
                found.tool_id,
                parse_params(params or []),
                version,
                timeout_s=timeout,
                memory_mb=memory,
                on_output=show if stream else None,
            )

        execution = _with_spinner(cli.err, found.name, run) if spinning else run()
    view = views.execution_view(execution)
    if cli.json:
        cli.emit(view)
    else:
        if execution.ok:
            cli.out.print_json(json.dumps(view["output"]))
        if cli.verbose and not stream:
            if execution.stdout:
                cli.err.print(f"stdout:\n{execution.stdout}", markup=False, highlight=False)
            if execution.stderr:
                cli.err.print(f"stderr:\n{execution.stderr}", markup=False, highlight=False)
            m = execution.metrics
            cli.err.print(
                f"{execution.status.value} in {m.wall_ms:.1f} ms (cpu {m.cpu_ms:.1f} ms, rss {m.max_rss_kb} kB, isolation {m.isolation.value})",
                highlight=False,
            )
    if not execution.ok:
        reason = f"{execution.error.type}: {execution.error.message}" if execution.error else "no detail"
        if not cli.json:
            cli.err.print(
                f"[bold red]error[/] (execution {execution.status.value}): {inert(found.name)}: "
                f"{inert(reason.splitlines()[0]) if reason.strip() else ''}",
                highlight=False,
                soft_wrap=True,
            )
            if cli.verbose and execution.error and execution.error.traceback:
                cli.err.print(execution.error.traceback, markup=False, highlight=False)
        raise typer.Exit(EXIT_FAILURE)


def _with_spinner(console: Console, name: str, run: Callable[[], Execution]) -> Execution:
    """``run()`` under a spinner that shows the tool's name and the seconds elapsed (10 times a second)."""
    started = time.monotonic()
    done = threading.Event()
    with console.status(f"running {inert(name)}") as status:

        def tick() -> None:
            while not done.wait(0.1):
                status.update(f"running {inert(name)}: {time.monotonic() - started:.1f} s")

        ticker = threading.Thread(target=tick, name="toolrt-spinner", daemon=True)
        ticker.start()
        try:
            return run()
        finally:
            done.set()
            ticker.join()


def test(
    ctx: typer.Context,
    tool: Annotated[str, typer.Argument(help="Tool id or name.")],
    version: Annotated[
        Optional[int], typer.Option("--version", help="Test this version instead of the one in force.")
    ] = None,
) -> None:
    """Run a tool's examples in the sandbox and report each; exit 1 when one fails."""
    cli = current_cli(ctx)
    with cli.runtime() as rt:
        found = resolve_tool(rt, cli.agent, tool)
        results = rt.test_tool(cli.agent, found.tool_id, version)
    if cli.json:
        cli.emit(
            {
                "tool_id": found.tool_id,
                "passed": all(r.passed for r in results),
                "examples": [{"index": r.index, "passed": r.passed, "detail": r.describe()} for r in results],
            }
        )
    else:
        if not results:
            cli.out.print(f"{found.name} has no examples", highlight=False, markup=False)
        for r in results:
            mark = "pass" if r.passed else "FAIL"
            text = f"example {r.index}" if r.passed else r.describe()
            cli.out.print(f"{mark}  {text}", highlight=False, markup=False, soft_wrap=True)
    if not all(r.passed for r in results):
        raise typer.Exit(EXIT_FAILURE)
