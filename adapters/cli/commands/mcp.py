"""Commands that connect MCP hosts: serve, and the ``mcp`` group (config)."""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from toolrt.adapters.cli.context import EXIT_USER_ERROR, command_group, current_cli
from toolrt.adapters.mcp.limits import (
    LISTENS_PER_AGENT,
    SESSION_IDLE_MINUTES,
    SESSIONS_PER_AGENT,
    check_agent_tokens,
)
from toolrt.domain import MissingDependencyError, ValidationError


def serve(
    ctx: typer.Context,
    transport: Annotated[str, typer.Option("--transport", help="stdio or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (http).")] = 8765,
    token: Annotated[
        Optional[list[str]],
        typer.Option(
            "--token",
            help="TOKEN=AGENT: a bearer token (at least 16 characters) and the agent it stands for (http; repeatable).",
        ),
    ] = None,
    new_token: Annotated[
        Optional[list[str]],
        typer.Option(
            "--new-token",
            help="AGENT: make a random bearer token for AGENT and print it once, on stderr (http; repeatable).",
        ),
    ] = None,
    sessions_per_agent: Annotated[
        int, typer.Option("--sessions-per-agent", min=1, help="Open MCP sessions one agent may hold (http).")
    ] = SESSIONS_PER_AGENT,
    listens_per_agent: Annotated[
        int, typer.Option("--listens-per-agent", min=1, help="Listen streams one agent may hold open.")
    ] = LISTENS_PER_AGENT,
    session_idle_minutes: Annotated[
        float,
        typer.Option("--session-idle-minutes", min=0.01, help="A session with no request for this long ends (http)."),
    ] = SESSION_IDLE_MINUTES,
    allowed_host: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allowed-host",
            help="Another name clients may use in the Host header, NAME or NAME:PORT (http; repeatable).",
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            metavar="",
            help="Serve beyond loopback without tokens: anyone who can connect acts as any agent.",
        ),
    ] = False,
    search_mode: Annotated[
        str,
        typer.Option(
            "--search-mode",
            help="auto: past --search-threshold visible tools, list only your own plus search_tools and manage_tools; "
            "always; never.",
        ),
    ] = "auto",
    search_threshold: Annotated[int, typer.Option("--search-threshold", min=0)] = 50,
    management_tools: Annotated[
        str,
        typer.Option(
            "--management-tools",
            help="compact: search_tools and manage_tools beside the agent's tools; full: each of toolrt's tools.",
        ),
    ] = "compact",
    printed: Annotated[
        str,
        typer.Option("--printed", help="Where a tool's printed output goes: meta (the result's _meta) or text."),
    ] = "meta",
    operator_token: Annotated[
        Optional[list[str]],
        typer.Option(
            "--operator-token",
            help="A bearer token for the operator views /metrics and /dashboard (http; repeatable). "
            "Agent tokens never read them.",
        ),
    ] = None,
) -> None:
    """Serve every tool over MCP (stdio or streamable HTTP).

    Over HTTP on loopback without --token, the X-Toolrt-Agent header names the agent (any local
    user can claim any agent); any other address needs --token TOKEN=AGENT or --new-token AGENT (or
    --insecure-no-auth). With tokens nothing is served without one, and a session is its agent's.
    Over HTTP, /metrics (Prometheus) and /dashboard are served too, to --operator-token holders.
    """
    cli = current_cli(ctx)
    if transport not in ("stdio", "http"):
        cli.fail(EXIT_USER_ERROR, f"--transport must be stdio or http, got {transport!r}")
    if search_mode not in ("auto", "always", "never"):
        cli.fail(EXIT_USER_ERROR, f"--search-mode must be auto, always or never, got {search_mode!r}")
    tokens: dict[str, str] = {}
    for pair in token or []:
        secret, sep, agent_id = pair.partition("=")
        if not sep or not secret or not agent_id:
            cli.fail(EXIT_USER_ERROR, f"--token takes TOKEN=AGENT, got {pair!r}")
        tokens[secret] = agent_id
    made = {agent_id: secrets.token_urlsafe(24) for agent_id in new_token or []}
    tokens.update({secret: agent_id for agent_id, secret in made.items()})
    front = None
    if transport == "stdio" and importlib.util.find_spec("mcp") is not None:
        # The host's initialize is answered (from the SDK's own answer, kept from an earlier start)
        # while the SDK loads and the store opens: see stdio_front. The console script started it
        # already; a program calling the CLI in process starts it here.
        from toolrt.adapters.mcp.stdio_front import EarlyInitialize, started

        front = started() or EarlyInitialize([cli.agent, str(cli.profile), search_mode, str(search_threshold)]).start()
    with cli.guard():
        check_agent_tokens(tokens)
        for module in ("mcp", "anyio", *(("uvicorn",) if transport == "http" else ())):
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError("toolrt serve (the MCP server)", module, "mcp")
        from toolrt.adapters.mcp.exposure import check_exposure
        from toolrt.adapters.mcp.server import ToolrtMcpServer

        if transport == "http":
            check_exposure(host, tokens, insecure_no_auth)  # before the store is opened
    with cli.runtime() as rt:
        server = ToolrtMcpServer(
            rt,
            default_agent=cli.agent,
            tokens=tokens,
            search_mode=search_mode,
            search_threshold=search_threshold,
            management_tools=management_tools,
            printed=printed,
            sessions_per_agent=sessions_per_agent,
            listens_per_agent=listens_per_agent,
            session_idle_minutes=session_idle_minutes,
        )
        try:
            if transport == "stdio":
                server.run_stdio(front.streams() if front is not None else None)
            else:
                who = "bearer tokens" if tokens else f"agent header X-Toolrt-Agent, default agent {cli.agent}"
                if insecure_no_auth and not tokens:
                    cli.err.print(
                        "WARNING: --insecure-no-auth: anyone who can connect acts as any agent", highlight=False
                    )
                for agent_id, secret in made.items():  # shown this once: toolrt keeps no copy
                    cli.err.print(f"token for agent {agent_id}: {secret}", highlight=False, markup=False)
                cli.err.print(f"toolrt MCP server on http://{host}:{port}/mcp ({who})", highlight=False, markup=False)
                cli.err.print(
                    f"operator views: http://{host}:{port}/dashboard and /metrics ({_operator_note(operator_token, tokens)})",
                    highlight=False,
                )
                server.run_http(
                    host,
                    port,
                    allowed_hosts=allowed_host or [],
                    insecure_no_auth=insecure_no_auth,
                    operator_tokens=_operator_tokens(cli, operator_token),
                )
        finally:
            server.close()


def _operator_tokens(cli: Any, given: list[str] | None) -> list[str]:
    tokens = [t for t in given or []]
    for token in tokens:
        if not token or "=" in token or len(token) < 16:
            cli.fail(EXIT_USER_ERROR, "--operator-token takes a secret of at least 16 characters (no '=')")
    return tokens


def _operator_note(operator: list[str] | None, agents: dict[str, str]) -> str:
    if operator:
        return "operator bearer tokens"
    if agents:
        return "off: agent tokens given without --operator-token"
    return "no token: loopback only"


def dashboard(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8766,
    operator_token: Annotated[
        Optional[list[str]],
        typer.Option("--operator-token", help="A bearer token the dashboard and /metrics answer (repeatable)."),
    ] = None,
    allowed_host: Annotated[
        Optional[list[str]],
        typer.Option("--allowed-host", help="Another name clients may use in the Host header (repeatable)."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", metavar="", help="Serve beyond loopback without a token."),
    ] = False,
) -> None:
    """Serve the read-only operator dashboard (and /metrics) of this store over HTTP.

    It shows every agent's tools and calls, so it is the runtime owner's: on loopback it answers
    without a token unless --operator-token is given; any other address needs --operator-token
    (or --insecure-no-auth). Open http://HOST:PORT/dashboard#token=TOKEN.
    """
    cli = current_cli(ctx)
    tokens = _operator_tokens(cli, operator_token)
    with cli.guard():
        for module in ("starlette", "uvicorn", "prometheus_client"):
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError("toolrt dashboard", module, "mcp")
        from toolrt.adapters.mcp.exposure import is_loopback
        from toolrt.adapters.mcp.operator_routes import dashboard_app

        if not tokens and not is_loopback(host) and not insecure_no_auth:
            raise ValidationError(
                f"serving the dashboard on {host} (not loopback) needs --operator-token TOKEN, "
                "or --insecure-no-auth to let anyone who can connect read every agent's calls"
            )
    with cli.runtime() as rt:
        import uvicorn

        app = dashboard_app(
            rt, host, operator_tokens=tokens, allowed_hosts=allowed_host or [], insecure_no_auth=insecure_no_auth
        )
        fragment = "#token=TOKEN" if tokens else ""
        cli.err.print(f"toolrt dashboard on http://{host}:{port}/dashboard{fragment}", highlight=False)
        # An open page holds an event stream: stopping waits for it at most 3 s.
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


def mcp_app() -> typer.Typer:
    """The ``toolrt mcp`` group."""
    return command_group("Connect MCP hosts (Claude Desktop, Cursor, VS Code) to toolrt.", config=mcp_config)


def mcp_config(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="claude, cursor or vscode: the shape of the entry.")] = "claude",
    name: Annotated[str, typer.Option("--name", help="The server's name in the host's list.")] = "toolrt",
) -> None:
    """Print a ready MCP server entry for a host: absolute paths, this store, this agent."""
    from toolrt.settings import Settings

    cli = current_cli(ctx)
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
