"""The ``toolrt`` command line: register, run and manage tools, serve them over MCP, check the machine."""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

import toolrt
from toolrt.adapters.cli import logs as cli_logs
from toolrt.adapters.cli.argv import command_named
from toolrt.adapters.cli.commands import catalog, environments, executions, machine, mcp, teams, tools
from toolrt.adapters.cli.commands.aws import aws_app
from toolrt.adapters.cli.context import Cli, RuntimeFactory

if TYPE_CHECKING:
    from toolrt.application import ToolRuntime


def _configure_logging(verbose: int) -> None:
    if verbose == 0:
        named = logging.getLevelName(os.environ.get("TOOLRT_LOG_LEVEL", "warning").upper())
        level = named if isinstance(named, int) else logging.WARNING
    else:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    try:
        fmt = cli_logs.log_format()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    cli_logs.configure(level, fmt)


def _connect(profile: str | None = None, **settings: Any) -> ToolRuntime:
    """``toolrt.connect``, imported when a command first needs a runtime (``--help`` never does)."""
    return toolrt.connect(profile, **settings)


# dependency-injector imports the web frameworks it can integrate with when they are installed
# (pydantic-settings, starlette, werkzeug, ...: about 0.15 s with the [mcp] extra), for features
# toolrt does not use (wiring, Configuration.from_pydantic). The command owns its process, so it
# imports dependency-injector with them hidden; each is importable again right after.
_DI_INTEGRATIONS = ("pydantic_settings", "pydantic", "starlette", "werkzeug", "flask", "fastapi", "fast_depends")


class _Hidden(importlib.abc.MetaPathFinder):
    """A finder that makes ``import name`` fail for the given top-level names."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is hidden while dependency-injector loads", name=fullname)
        return None


def _import_dependency_injector_alone() -> None:
    hidden = _Hidden(frozenset(name for name in _DI_INTEGRATIONS if name not in sys.modules))
    sys.meta_path.insert(0, hidden)
    try:
        import dependency_injector.containers  # noqa: F401
        import dependency_injector.providers  # noqa: F401
    except ImportError:
        pass  # reported where the container is built
    finally:
        sys.meta_path.remove(hidden)


def _name_the_values(command: Any) -> None:
    """Help shows each option's value by what it is (``--timeout SECONDS``, ``--agent AGENT``) and
    flags alone, not typer's ``<bool>`` / ``<int>`` placeholders: every parameter without a metavar
    of its own gets one, at every level of the command tree (typer's commands are click's)."""
    for param in command.params:
        if param.metavar is None:
            flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
            param.metavar = "" if flag else (param.name or "value").upper()
        if param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None  # its name (TOOL, PARAMS) already says it
    help_option = command.get_help_option

    def quiet_help(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = quiet_help
    for sub in getattr(command, "commands", {}).values():
        _name_the_values(sub)


class _Toolrt(TyperGroup):
    """The ``toolrt`` group, whose help names values (see :func:`_name_the_values`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_the_values(self)


def build_app(
    connect: RuntimeFactory | None = None, *, configure_logging: bool = False, only: str | None = None
) -> typer.Typer:
    """The typer application; ``connect`` builds runtimes (``toolrt.connect`` when not given).
    ``only``: the command about to run, the one of them typer then needs to build (about 2 ms each)."""
    app = typer.Typer(
        name="toolrt",
        help="A dynamic tool runtime for AI agents: register, run and publish tools written by agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        cls=_Toolrt,
    )
    factory: RuntimeFactory = connect if connect is not None else _connect

    @app.callback()
    def main(
        ctx: typer.Context,
        profile: Annotated[
            Optional[str], typer.Option("--profile", help="memory, local or aws (default: TOOLRT_PROFILE or local).")
        ] = None,
        data_dir: Annotated[
            Optional[Path],
            typer.Option(
                "--data-dir", help="Where the local profile keeps its data (default: TOOLRT_DATA_DIR or ./.toolrt)."
            ),
        ] = None,
        agent: Annotated[
            str, typer.Option("--agent", envvar="TOOLRT_AGENT", help="The agent id commands act as.")
        ] = "cli",
        json_output: Annotated[
            bool, typer.Option("--json", metavar="", help="Print results as JSON, for scripts.")
        ] = False,
        verbose: Annotated[
            int, typer.Option("--verbose", "-v", count=True, help="More detail (repeat for debug logs).")
        ] = 0,
    ) -> None:
        """toolrt: validate, store, publish and sandbox tools that agents write."""
        if configure_logging:
            _configure_logging(verbose)
        ctx.obj = Cli(
            connect=factory, profile=profile, data_dir=data_dir, agent=agent, json=json_output, verbose=verbose
        )

    commands: dict[str, Any] = {
        "register": tools.register,
        "list": catalog.list_,
        "show": catalog.show,
        "versions": catalog.versions,
        "history": catalog.history,
        "search": catalog.search,
        "templates": catalog.templates,
        "from-template": catalog.from_template,
        "invoke": executions.invoke,
        "test": executions.test,
        "update": tools.update,
        "deregister": tools.deregister,
        "rollback": tools.rollback,
        "traffic": tools.traffic,
        "promote": tools.promote,
        "metrics": tools.metrics,
        "serve": mcp.serve,
        "dashboard": mcp.dashboard,
        "doctor": machine.doctor,
        "demo": machine.demo,
        "examples": machine.examples,
        "gc": machine.gc,
    }
    groups: dict[str, Callable[[], typer.Typer]] = {
        "mcp": mcp.mcp_app,
        "aws": aws_app,
        "teams": teams.teams_app,
        "env": environments.env_app,
    }
    if only not in commands and only not in groups:
        only = None  # help, or a misspelt command that typer should name the choices for
    for name, command in commands.items():
        if only in (None, name):
            app.command(name)(command)
    for name, group in groups.items():
        if only in (None, name):
            app.add_typer(group(), name=name)
    return app


app = build_app()


# Global flags a user may also write after the subcommand (`toolrt list --json`).
_HOISTED_FLAGS = ("--json",)


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Move global flags found after the subcommand in front of it (never past a ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _HOISTED_FLAGS]
    rest = [a for a in argv[:end] if a not in _HOISTED_FLAGS]
    return [*flags, *rest, *argv[end:]]


def run() -> None:
    """The ``toolrt`` console script."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    _import_dependency_injector_alone()
    args = hoist_global_flags(sys.argv[1:])
    build_app(configure_logging=True, only=command_named(args))(args=args, prog_name="toolrt")
