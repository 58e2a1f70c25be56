"""The toolrt MCP server: every tool an agent can see becomes an MCP tool, plus tools to manage them.

Tool names. A tool is listed under its own name. When two visible tools share a name (an agent's own
``add`` and another agent's public ``add``), the agent's own tool keeps the plain name and the
others are listed as ``<owner>__<name>``, the owner part derived from the owner's id alone (see
``toolrt.domain.naming``: no tool's own name may hold ``__``, so no agent can register a name
another agent's tool is listed as); a tool named like a management tool is always listed
qualified. The mapping depends only on the tools visible to the caller. A name shown to a session
(by ``tools/list`` or ``search_tools``) resolves to that same tool until the session is shown the
name again (it lists again after ``list_changed``): a tool it no longer may see is then an unknown
tool, never another one that has taken the name meanwhile.

Agent identity. Over stdio the configured agent (``toolrt --agent``) is the caller. Over HTTP,
when bearer tokens are configured (``toolrt serve --token TOKEN=AGENT``, tokens of at least 16
characters), every request to ``/mcp`` must carry ``Authorization: Bearer TOKEN``: the SDK's bearer
authentication answers 401 to any other before a session, a stream or a method is reached (see
``front_door``). A session belongs to the agent whose token opened it; another agent's token gets
the answer an unknown session gets (404), and the ``X-Toolrt-Agent`` header is ignored. Each
agent holds at most ``sessions_per_agent`` sessions and ``listens_per_agent`` listen streams, and
sessions idle for ``session_idle_minutes`` end. Without tokens a request names its agent in that
header, falling back to the configured agent: anyone who can connect can claim any agent, which is
why that mode is allowed only on a loopback address (where only this machine's users can connect).
A server bound to any other address refuses to start without tokens unless
``insecure_no_auth=True`` (``--insecure-no-auth``) says otherwise, and then logs a warning.

Host and Origin. Every HTTP request's ``Host`` and (when present) ``Origin`` headers are checked
against the addresses the server answers for (the SDK's DNS-rebinding protection, on every
interface): loopback names for a loopback bind, the bound address and any ``allowed_hosts`` for
another, so a web page elsewhere cannot drive the server through a visitor's browser.

toolrt's own tools. Beside the agent's tools a model sees two of toolrt's: ``search_tools`` and
``manage_tools``, whose ``action`` calls a tool by name or manages the agent's tools (see
``management``); ``management_tools="full"`` (``toolrt serve --management-tools full``) lists each of
them instead (``register_tool``, ``update_tool``, ...), and their names are answered in either mode.
Each carries MCP annotations (read-only, destructive, idempotent).

Results. A call's result is the tool's value: ``structuredContent`` (an object as it is, anything
else as ``{"result": value}``) and one text block with the value; what the tool printed is in the
result's ``_meta`` (``toolrt/stdout``), or in that block with ``printed="text"`` (see ``results``).
Errors, on every path (with a progress token or without), are toolrt's own message in one block.

Search mode. Past ``search_threshold`` visible tools (50 by default), or always with
``search_mode="always"`` (``toolrt mcp --search-mode always``), ``tools/list`` returns toolrt's
tools and only the caller's own: a model then finds what it needs with ``search_tools`` (whose
results carry full input schemas and the name to call) and calls it through ``manage_tools``
(``action: call``; ``call_tool`` in the full set) or directly by name, without listing thousands of
tools. ``search_mode="never"`` always lists everything. Both answer in every mode.

Changes. When the set of tools an agent may see changes (a tool registered, updated, rolled back,
deregistered or made visible or private, a team membership), that agent is sent
``notifications/tools/list_changed``: on each of its open connections of the handshake era, and as
a ``tools_list_changed`` event on its ``subscriptions/listen`` streams (2026-era clients). Nobody
else is: another agent's changes to tools one may not see are never heard of. The server hears
changes as the runtime's domain events, and other processes' through ``rt.change_marker()``.

Progress. A ``tools/call`` that carries a progress token (``_meta.progressToken``) hears
``notifications/progress`` while the tool runs: the elapsed seconds as progress, the call's timeout
as the total, and the last line the tool printed in the message; at least every
``progress_interval_s`` (1 s) and, on new output, at most every 0.2 s. Only the caller hears them.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Hashable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.datastructures import Headers

from toolrt.adapters.mcp import compat, management, results
from toolrt.adapters.mcp.compat import MODERN_PROTOCOL_VERSIONS, RequestContext, types
from toolrt.adapters.mcp.exposure import check_exposure, is_loopback, transport_security
from toolrt.adapters.mcp.front_door import (
    REQUEST_AGENT,
    AgentListens,
    AgentSessionManager,
    AgentTokens,
    authenticated_agent,
    mcp_endpoint,
)
from toolrt.adapters.mcp.limits import (
    LISTENS_PER_AGENT,
    LISTENS_WITHOUT_TOKENS,
    SESSION_IDLE_MINUTES,
    SESSIONS_PER_AGENT,
)
from toolrt.adapters.operations import OPERATIONS, ToolOperation
from toolrt.adapters.views import (
    usage_view,
)
from toolrt.application import ToolRuntime, check_params
from toolrt.application.tool_names import exported_names
from toolrt.domain import (
    Execution,
    NotFoundError,
    TeamMembershipChanged,
    Tool,
    ToolDeregistered,
    ToolRegistered,
    ToolRolledBack,
    ToolRuntimeError,
    ToolUpdated,
    TrafficChanged,
    ValidationError,
)
from toolrt.logs import get_logger

log = get_logger(__name__)

AGENT_HEADER = "x-toolrt-agent"
# How many agents' visible tool lists are kept between changes (see ToolrtMcpServer._visible).
VISIBLE_CACHE_AGENTS = 1024
# The longest an agent's visible tool list is served from the cache when no change is heard.
VISIBLE_CACHE_TTL_S = 2.0
# Past this many sessions' listings (what each was shown), 2026-era agents' listings are dropped.
LISTINGS_KEPT = 4096
# Past this many agents' thread limiters, those of agents with nothing running are dropped.
AGENT_LIMITERS = 1024
# Worker threads all agents' requests may hold at once (each agent within its own share).
ALL_THREADS = 128
_T = TypeVar("_T")


MANAGEMENT_NAMES = management.ALL_NAMES
_MANAGEMENT_SCHEMAS = management.SCHEMAS
SEARCH_MODES = ("auto", "always", "never")
# Progress while a tool runs: at least every PROGRESS_INTERVAL_S, and on new output no more often
# than every PROGRESS_MIN_GAP_S; the message carries at most PROGRESS_LINE_CHARS of the last line.
PROGRESS_INTERVAL_S = 1.0
PROGRESS_MIN_GAP_S = 0.2
PROGRESS_LINE_CHARS = 200


def mcp_names(tools: list[Tool] | tuple[Tool, ...], agent_id: str) -> dict[str, Tool]:
    """The MCP name of each tool visible to ``agent_id`` (see the module docstring for the rule):
    the names ``tool_schemas`` gives, a management tool's name never given to a tool unqualified."""
    return exported_names(tools, agent_id, reserved=MANAGEMENT_NAMES)


def _fingerprint(named: Mapping[str, Tool]) -> frozenset[tuple[str, str, int]]:
    """What an agent's tool list shows, compared to tell whether it changed: each name, the tool it
    stands for and the version in force (a new definition is a new version)."""
    return frozenset((name, tool.tool_id, tool.current_version) for name, tool in named.items())


def _describe(exc: ToolRuntimeError) -> str:
    # The message quotes the first findings: describe() lists each of them, and the rest, once.
    text = f"{type(exc).__name__}: {exc.describe() if isinstance(exc, ValidationError) else exc}"
    # What the caller can do, as the error itself says (the same rule as the CLI's exit codes).
    if exc.retryable:
        text += "\n(temporary: call again later)"
    elif exc.user_error:
        text += "\n(change the request and call again)"
    return text


class ToolrtMcpServer:
    """Serves a ToolRuntime's tools over MCP (stdio or streamable HTTP); see the module docstring."""

    def __init__(
        self,
        runtime: ToolRuntime,
        *,
        default_agent: str = "mcp",
        tokens: Mapping[str, str] | None = None,
        name: str = "toolrt",
        watch_interval_s: float = 2.0,
        search_mode: str = "auto",
        search_threshold: int = 50,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        management_tools: str = "compact",
        printed: str = "meta",
        sessions_per_agent: int = SESSIONS_PER_AGENT,
        listens_per_agent: int = LISTENS_PER_AGENT,
        session_idle_minutes: float = SESSION_IDLE_MINUTES,
    ) -> None:
        if search_mode not in SEARCH_MODES:
            raise ValidationError(f"search_mode must be one of {', '.join(SEARCH_MODES)}, got {search_mode!r}")
        if isinstance(search_threshold, bool) or not isinstance(search_threshold, int) or search_threshold < 0:
            raise ValidationError(f"search_threshold must be a non-negative integer, got {search_threshold!r}")
        for option, value in (("sessions_per_agent", sessions_per_agent), ("listens_per_agent", listens_per_agent)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{option} must be a positive integer, got {value!r}")
        if isinstance(session_idle_minutes, bool) or not (
            isinstance(session_idle_minutes, (int, float)) and 0 < session_idle_minutes < float("inf")
        ):
            raise ValidationError(f"session_idle_minutes must be a positive number, got {session_idle_minutes!r}")
        self.search_mode = search_mode
        if management_tools not in management.MANAGEMENT_MODES:
            raise ValidationError(
                f"management_tools must be one of {', '.join(management.MANAGEMENT_MODES)}, got {management_tools!r}"
            )
        if printed not in results.PRINTED_MODES:
            raise ValidationError(f"printed must be one of {', '.join(results.PRINTED_MODES)}, got {printed!r}")
        self.progress_interval_s = progress_interval_s
        # compact: search_tools and manage_tools beside the agent's tools; full: each of toolrt's tools.
        self.management = management_tools
        self.printed = printed  # meta: printed output in the result's _meta; text: in its text block
        self.search_threshold = search_threshold
        self.runtime = runtime
        self.default_agent = default_agent
        self.tokens = dict(tokens or {})
        self._verifier = AgentTokens(self.tokens) if self.tokens else None  # refuses weak tokens
        self.sessions_per_agent = sessions_per_agent
        self.sessions: AgentSessionManager | None = None  # set by http_app
        self.session_idle_minutes = float(session_idle_minutes)
        # Whether X-Toolrt-Agent names the caller (no tokens): set by http_app from where it listens.
        self._header_identity = True
        # Each agent's visible tools by MCP name, valid while no change has been heard since
        # (``_generation`` counts the changes; see _visible).
        self._generation = 0
        self._visible_cache: dict[str, tuple[int, float, dict[str, Tool]]] = {}
        # What each agent's tool list last showed (the generation it was read at, its fingerprint):
        # a read that finds it changed tells that agent, and no one else (see _visible).
        self._shown: dict[str, tuple[int, frozenset[tuple[str, str, int]]]] = {}
        self._shown_lock = threading.Lock()
        # What each session was shown: name -> tool id, until it is shown the name again (the key: a
        # handshake-era connection's, or ("agent", AGENT) for 2026-era requests, which have no session).
        self._listings: dict[Hashable, dict[str, str]] = {}
        # Agents whose list is being read again after a change, and those to read once more after.
        self._refreshing: set[str] = set()
        self._refresh_again: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Each agent's share of worker threads (see _threads): one agent's slow calls never hold
        # the threads every other agent's calls need.
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._handed: dict[str, int] = {}  # requests per agent holding (or about to hold) its limiter
        self._all_threads: anyio.CapacityLimiter | None = None  # made on the event loop (see _in_thread)
        # How long an entry stands without any change heard: a store with no change marker (AWS)
        # tells of other processes' changes no other way.
        self._visible_ttl_s = watch_interval_s if watch_interval_s > 0 else VISIBLE_CACHE_TTL_S
        # Handshake-era connections (key -> agent, session, connection), to push list_changed on
        # their standalone stream.
        self._connections: dict[Hashable, tuple[str, Any, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listens = AgentListens(
            self.agent_for,
            listens_per_agent,
            total=None if self.tokens else LISTENS_WITHOUT_TOKENS,
            before_listen=self._before_listen,
        )
        self.server = compat.build_server(
            name,
            version=_version(),
            instructions="Tools registered in toolrt. search_tools finds more by what they do; manage_tools calls "
            "them by name and adds your own (action 'register'). The list changes as tools come and go.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
            on_subscriptions_listen=self.listens if compat.HAS_LISTEN else None,
        )
        # Every change made through this runtime is a domain event, published once it is stored; a
        # membership change alters what an agent may list without any tool changing.
        self._unsubscribers = [
            runtime.subscribe(kind, lambda _event: self._on_change())
            for kind in (
                ToolRegistered,
                ToolUpdated,
                ToolRolledBack,
                ToolDeregistered,
                TeamMembershipChanged,
                TrafficChanged,
            )
        ]
        # Changes made by other processes (a `toolrt register` next to a running server) are no
        # events here: a store that offers a change marker is watched instead.
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if watch_interval_s > 0 and runtime.change_marker() is not None:
            self._watcher = threading.Thread(
                target=self._watch, args=(watch_interval_s,), name="toolrt-mcp-watch", daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        """Stop watching the store and end the listen streams."""
        self.listens.close()
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)

    def _watch(self, interval: float) -> None:
        marker = self.runtime.change_marker
        try:
            last = marker()
        except Exception as exc:
            log.warning("cannot watch the store for tool changes", error=str(exc))
            return
        while not self._stop.wait(interval):
            try:
                current = marker()
            except Exception as exc:  # a busy or closed store: try again next time
                log.debug("reading the store's change marker failed", error=str(exc))
                continue
            if current != last:
                last = current
                self._on_change()

    # -- transports ----------------------------------------------------------------------------
    def run_stdio(self, streams: tuple[Any, Any] | None = None) -> None:
        """Serve one client over stdin/stdout until it disconnects; ``streams``: the (stdin, stdout)
        async files to use instead (see ``stdio_front``)."""
        anyio.run(self.serve_stdio, streams)

    async def serve_stdio(self, streams: tuple[Any, Any] | None = None) -> None:
        """Serve one client over stdin/stdout (async)."""
        from mcp.server.stdio import stdio_server

        async with stdio_server(*(streams or ())) as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())

    def http_app(
        self,
        host: str = "127.0.0.1",
        *,
        allowed_hosts: list[str] | tuple[str, ...] = (),
        insecure_no_auth: bool = False,
        operator_tokens: list[str] | tuple[str, ...] = (),
    ) -> Any:
        """The streamable HTTP ASGI app (served at ``/mcp``) for a server bound to ``host``.

        Raises :class:`ValidationError` for a non-loopback ``host`` without tokens unless
        ``insecure_no_auth``; ``allowed_hosts`` adds names (``name`` or ``name:port``) that clients
        may use in the Host header (a DNS name in front of the bound address, say). With tokens,
        ``/mcp`` answers nothing without one (see ``front_door``). The operator views
        (``/metrics``, ``/dashboard``, ``/api/...``: see ``operator_routes``) are served next to it;
        ``operator_tokens`` are the bearer tokens they answer.
        """
        from starlette.applications import Starlette
        from starlette.routing import Route

        from toolrt.adapters.mcp.operator_routes import OperatorAccess, operator_routes

        check_exposure(host, self.tokens, insecure_no_auth)
        self._header_identity = is_loopback(host) or insecure_no_auth
        security = transport_security(host, allowed_hosts)
        access = OperatorAccess(
            operator_tokens,
            self.tokens,
            open_without_token=self._header_identity,
            allowed_hosts=security.allowed_hosts,
        )
        manager = AgentSessionManager(
            self.server,
            sessions_per_agent=self.sessions_per_agent,
            security_settings=security,
            session_idle_timeout=self.session_idle_minutes * 60,
            # With tokens every session has an agent and each agent its limit; without, any caller
            # names any agent, and the SDK's overall limit is what there is.
            **({"max_sessions": None} if self.tokens else {}),
        )
        self.sessions = manager
        routes = [Route("/mcp", endpoint=mcp_endpoint(manager, self._scope_agent, self._verifier))]
        return Starlette(
            routes=[*routes, *operator_routes(self.runtime, access)],
            lifespan=lambda _app: manager.run(),
        )

    def run_http(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        allowed_hosts: list[str] | tuple[str, ...] = (),
        insecure_no_auth: bool = False,
        operator_tokens: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Serve streamable HTTP on ``host:port`` until interrupted (see :meth:`http_app`)."""
        import uvicorn

        app = self.http_app(
            host, allowed_hosts=allowed_hosts, insecure_no_auth=insecure_no_auth, operator_tokens=operator_tokens
        )
        # An open dashboard holds an event stream: stopping waits for it at most 3 s.
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)

    # -- identity ------------------------------------------------------------------------------
    def agent_for(self, ctx: RequestContext) -> str:
        """The agent a request acts for: its token's, else the header's or the configured agent."""
        request = getattr(ctx, "request", None)
        scope = getattr(request, "scope", None)
        if scope is None:  # stdio: no HTTP request
            return self.default_agent
        agent = self._scope_agent(scope)
        if agent is None:
            raise ValidationError(
                "this server requires 'Authorization: Bearer <token>' with one of its configured tokens"
            )
        return agent

    def _scope_agent(self, scope: Any) -> str | None:
        """The agent of the HTTP request ``scope``: with tokens, the one the SDK's authentication
        found (None when it found none); without, the X-Toolrt-Agent header where it is believed."""
        if self.tokens:
            return authenticated_agent(scope)
        if not self._header_identity:
            return self.default_agent
        return str(Headers(scope=scope).get(AGENT_HEADER) or self.default_agent)

    # -- handlers ------------------------------------------------------------------------------
    async def _list_tools(
        self, ctx: RequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        try:
            agent = self.agent_for(ctx)
        except ValidationError as exc:
            raise compat.protocol_error(types.INVALID_REQUEST, str(exc)) from None
        key = self._remember(ctx, agent)
        named = await self._visible_async(agent)
        searching = self.search_mode == "always" or (self.search_mode == "auto" and len(named) > self.search_threshold)
        if searching:  # the caller's own tools, and search_tools/manage_tools for the rest
            named = {name: tool for name, tool in named.items() if tool.owner == agent}
        self._keep_listing(key, {name: tool.tool_id for name, tool in named.items()}, replace=True)
        listed = [
            compat.tool(
                name,
                tool.definition.description,
                tool.definition.input_schema,
                output_schema=results.output_schema(tool),
            )
            for name, tool in named.items()
        ]
        own = management.listed(full=self.management == "full", searching=searching)
        return compat.list_result([*own, *listed])

    async def _call_tool(self, ctx: RequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        try:
            agent = self.agent_for(ctx)
            key = self._remember(ctx, agent)
            if params.name in MANAGEMENT_NAMES:
                # The low-level server does not check arguments: a string "false" must not purge.
                check_params(params.name, _MANAGEMENT_SCHEMAS[params.name], arguments)
                action, arguments = management.resolve(params.name, arguments)
                if action != params.name:  # manage_tools: the action's own schema decides
                    check_params(f"{params.name} ({action})", _MANAGEMENT_SCHEMAS[action], arguments)
                if action == "call_tool":
                    return await self._execute(
                        ctx, agent, key, str(arguments["name"]), dict(arguments.get("arguments") or {})
                    )
                result = await self._in_thread(agent, self._manage, agent, key, action, arguments)
                return results.value_result(result)
            return await self._execute(ctx, agent, key, params.name, arguments)
        except ToolRuntimeError as exc:
            return results.error_result(_describe(exc))
        except Exception as exc:  # a tool call must never take the server down
            log.exception("mcp tool call failed", tool=params.name)
            return results.error_result(f"internal error: {type(exc).__name__}: {exc}")

    async def _execute(
        self, ctx: RequestContext, agent: str, key: Hashable, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        listed = self._listings.get(key, {}).get(name)  # before any read: what the caller was shown
        named = await self._visible_async(agent)
        tool = self._named_tool(named, name, listed)
        if tool is None:
            return results.error_result(
                f"unknown tool {name!r}: not among the tools visible to agent {agent!r} (list the tools again)"
            )
        token = (ctx.meta or {}).get("progress_token")
        if token is None:
            execution = await self._in_thread(agent, self.runtime.execute_tool, agent, tool.tool_id, arguments)
        else:
            execution = await self._execute_with_progress(ctx, token, agent, tool, arguments)
        return results.execution_result(execution, name, tool, self.printed)

    @staticmethod
    def _named_tool(named: Mapping[str, Tool], name: str, listed: str | None) -> Tool | None:
        """The tool ``name`` stands for: the one the session was shown under it (``listed``, its
        id), while the caller may still see it; else the name (or id) among the visible tools."""
        if listed is not None:
            return next((t for t in named.values() if t.tool_id == listed), None)
        return named.get(name) or next((t for t in named.values() if t.tool_id == name), None)

    async def _execute_with_progress(
        self, ctx: RequestContext, token: Any, agent: str, tool: Tool, arguments: dict[str, Any]
    ) -> Execution:
        """Run the call and, while it runs, send the caller ``notifications/progress`` for its token:
        elapsed seconds as the (increasing) progress, the call's timeout as the total, and the last
        line the tool printed as the message. Only the caller hears them: they go on its request."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        last_line = ""
        wake = anyio.Event()

        def on_output(stream: str, text: str) -> None:  # in the sandbox's thread
            nonlocal last_line
            if stream == "stdout":
                lines = [line for line in text.splitlines() if line.strip()]
                if lines:
                    last_line = lines[-1][:PROGRESS_LINE_CHARS]
                    loop.call_soon_threadsafe(wake.set)

        async def report() -> None:
            nonlocal wake
            sent = -1.0
            policy = self.runtime.policy
            total = min(tool.definition.limits.timeout_s or policy.default_timeout_s, policy.max_timeout_s)
            while True:
                with anyio.move_on_after(self.progress_interval_s):
                    await wake.wait()
                wake = anyio.Event()
                elapsed = max(loop.time() - started, sent + 0.001)
                message = f"running {elapsed:.1f} s" + (f": {last_line}" if last_line else "")
                try:
                    with anyio.CancelScope(shield=True):  # the call's end must not cut a notification in half
                        await compat.report_progress(ctx, token, round(elapsed, 3), total, message)
                except Exception as exc:  # a client gone mid-call: the call still finishes and is recorded
                    log.debug("progress not delivered", error=str(exc))
                    return
                sent = elapsed
                await anyio.sleep(PROGRESS_MIN_GAP_S)

        result: list[Execution] = []
        failed: list[Exception] = []
        async with anyio.create_task_group() as group:
            group.start_soon(report)
            try:
                result.append(
                    await self._in_thread(
                        agent,
                        functools.partial(
                            self.runtime.execute_tool, agent, tool.tool_id, arguments, on_output=on_output
                        ),
                    )
                )
            except Exception as exc:  # raised below as itself: out of a task group it would be an ExceptionGroup
                failed.append(exc)
            group.cancel_scope.cancel()
        if failed:
            raise failed[0]
        return result[0]

    def _visible(self, agent: str) -> dict[str, Tool]:
        """The tools ``agent`` may see, by MCP name: from the cache while no change has been heard
        since it was filled, else read from the runtime.

        Changes made through this runtime are events and clear the cache at once; other processes'
        changes are seen by the store watcher (within ``watch_interval_s``), as list_changed is, and
        no entry outlives that interval (``VISIBLE_CACHE_TTL_S`` when nothing is watched).
        A read that finds the list changed since the agent's last one tells that agent (list_changed).
        Only names are resolved from here: whether the agent may run a tool is decided by the
        runtime, from the store, on every call."""
        cached = self._cached_visible(agent)
        if cached is not None:
            return cached
        generation = self._generation  # read first: a change heard while listing makes the entry stale
        named = mcp_names(list(self.runtime.list_tools(agent)), agent)
        if len(self._visible_cache) >= VISIBLE_CACHE_AGENTS:
            self._visible_cache.clear()
        self._visible_cache[agent] = (generation, time.monotonic() + self._visible_ttl_s, named)
        if self._shown_changed(agent, generation, _fingerprint(named)):
            self._schedule(lambda: self._tell(agent))
        return named

    def _shown_changed(self, agent: str, generation: int, fingerprint: frozenset[tuple[str, str, int]]) -> bool:
        """Record what ``agent``'s list holds as read at ``generation``; True when it differs from
        the last read (an older read finishing late changes nothing)."""
        with self._shown_lock:
            before = self._shown.get(agent)
            if before is not None and before[0] > generation:
                return False
            if before is None and len(self._shown) >= VISIBLE_CACHE_AGENTS:
                listening = self._listening_agents()
                for stale in [a for a in self._shown if a not in listening]:
                    del self._shown[stale]
            self._shown[agent] = (generation, fingerprint)
            return before is not None and before[1] != fingerprint

    def _cached_visible(self, agent: str) -> dict[str, Tool] | None:
        entry = self._visible_cache.get(agent)
        if entry is None or entry[0] != self._generation or time.monotonic() >= entry[1]:
            return None
        return entry[2]

    async def _visible_async(self, agent: str) -> dict[str, Tool]:
        cached = self._cached_visible(agent)  # the common case costs no trip to a worker thread
        if cached is not None:
            return cached
        return await self._in_thread(agent, self._visible, agent)

    def _threads(self, agent: str) -> anyio.CapacityLimiter:
        """The worker threads ``agent``'s requests may hold at once: ``max_concurrent_executions``.

        Blocking work (a tool's execution, a management call, a listing) runs in worker threads.
        Drawn from one pool shared by all (anyio's 40), one agent's long calls could hold every
        thread and stall every other agent's calls on this server. Each agent has a limiter of its
        own instead; its requests past it wait on the event loop, holding no thread, and other
        agents' requests go on (see ``_in_thread``). Called on the event loop only."""
        limiter = self._limiters.get(agent)
        if limiter is None:
            if len(self._limiters) >= AGENT_LIMITERS:
                # Only agents with no request under way: one handed its limiter may not have
                # acquired it yet, and a second limiter for that agent would double its share.
                for name in [name for name in self._limiters if not self._handed.get(name)]:
                    del self._limiters[name]
            limiter = anyio.CapacityLimiter(self.runtime.policy.max_concurrent_executions)
            self._limiters[agent] = limiter
        return limiter

    async def _in_thread(self, agent: str, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` in a worker thread, within ``agent``'s share (its limiter stays registered,
        never dropped by ``_threads``, from the moment it is handed out until the call is over) and
        within ``ALL_THREADS`` for all agents together. The agent's share is taken first, so its
        requests past it wait without holding any of the others' threads."""
        self._handed[agent] = self._handed.get(agent, 0) + 1
        try:
            if self._all_threads is None:
                self._all_threads = anyio.CapacityLimiter(ALL_THREADS)
            async with self._threads(agent):
                return await anyio.to_thread.run_sync(func, *args, limiter=self._all_threads)
        finally:
            self._handed[agent] -= 1
            if not self._handed[agent]:
                del self._handed[agent]

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        """The input schema of tool ``name`` as the calling agent sees it, for the SDK's check of
        ``Mcp-Param-*`` headers (it runs before dispatch, with no request context: the caller is
        the agent the front door found for the request). None when the caller is unknown or the
        tool is not one it may see, which leaves the call itself to say so."""
        if name in _MANAGEMENT_SCHEMAS:
            return _MANAGEMENT_SCHEMAS[name]
        agent = REQUEST_AGENT.get()
        if agent is None:
            return None
        named = self._cached_visible(agent)
        if named is None:
            named = self._visible(agent)  # a cold cache: one read, on the event loop, then cached
        tool = self._named_tool(named, name, self._listings.get(("agent", agent), {}).get(name))
        return dict(tool.definition.input_schema) if tool is not None else None

    def _manage(self, agent: str, key: Hashable, action: str, args: dict[str, Any]) -> Any:
        if action == "search_tools":  # the session's listing learns the names it shows
            return self._search(agent, key, args)
        operation = OPERATIONS.get(action)
        if operation is None:
            raise ValidationError(f"unknown management tool {action!r}")
        if isinstance(operation, ToolOperation):
            tool = self._resolve(agent, key, str(args.pop("tool", "")))
            return operation.run(self.runtime, agent, tool, args)
        return operation.run(self.runtime, agent, args)

    def _search(self, agent: str, key: Hashable, args: dict[str, Any]) -> dict[str, Any]:
        results = self.runtime.search_tools(
            agent,
            str(args["query"]),
            limit=int(args.get("limit", 10)),
            tags=list(args.get("tags") or ()),
            with_usage=True,
        )
        names = {tool.tool_id: name for name, tool in self._visible(agent).items()}
        found = [(names[r.tool.tool_id], r) for r in results if r.tool.tool_id in names]
        # The names shown are the session's too: each resolves to the tool shown, until list_changed.
        self._keep_listing(key, {name: r.tool.tool_id for name, r in found}, replace=False)
        return {
            "results": [
                {
                    "name": name,
                    "tool_id": r.tool.tool_id,
                    "owner": r.tool.owner,
                    "description": r.tool.definition.description,
                    "input_schema": dict(r.tool.definition.input_schema),
                    "score": round(r.score, 6),
                    "matched": list(r.matched),
                    "usage": usage_view(r.usage),
                }
                for name, r in found
            ],
            "hint": "call one with call_tool(name, arguments), or by its name directly",
        }

    def _resolve(self, agent: str, key: Hashable, ref: str) -> Tool:
        """The tool a management call names: a name the session was shown (while the agent may
        still see that tool), a visible name, a tool id, or the name of one of the agent's own
        tools (inactive ones too). Another agent's tool is found only by the name it is listed
        under or by its id."""
        if not ref:
            raise ValidationError("missing 'tool': pass the tool's id or its listed name")
        named = self._visible(agent)
        tool = self._named_tool(named, ref, self._listings.get(key, {}).get(ref))
        if tool is not None:
            return tool
        tool = self.runtime.resolve_tool(agent, ref, include_inactive=True)
        if tool.owner != agent and tool.tool_id != ref:
            raise NotFoundError("tool", ref)
        return tool

    # -- list_changed --------------------------------------------------------------------------
    def _note_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def _before_listen(self, agent: str) -> None:
        """What ``agent``'s list holds as its listen stream opens: later changes are told against it."""
        self._note_loop()
        await self._visible_async(agent)

    def _remember(self, ctx: RequestContext, agent: str) -> Hashable:
        """Note the connection a handshake-era request came on (to push list_changed to it) and
        return the key of what its session was shown: the connection, or the agent for 2026-era
        requests (no session: every one of the agent's requests is told at once)."""
        self._note_loop()
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return ("agent", agent)
        anchor = compat.connection_of(ctx)
        key = id(anchor)
        known = self._connections.get(key)
        if known is not None and known[0] == agent and known[2] is anchor:
            return key
        # A new connection, or (without tokens) a session now naming another agent: nothing it
        # was shown before binds its names. The entry holds the connection, so its id is not reused.
        self._listings.pop(key, None)
        self._connections[key] = (agent, ctx.session, anchor)
        compat.on_connection_end(ctx, functools.partial(self._forget_connection, key))
        return key

    def _forget_connection(self, key: Hashable) -> None:
        self._connections.pop(key, None)
        self._listings.pop(key, None)

    def _keep_listing(self, key: Hashable, shown: dict[str, str], *, replace: bool) -> None:
        """Remember the names ``key``'s session was shown (``replace``: a whole new list, else some
        names shown again): each resolves to the tool shown until the session is shown the name again."""
        if key not in self._listings and len(self._listings) >= LISTINGS_KEPT:
            # Past the bound, the 2026-era agents' listings go: their names resolve as listed now.
            for stale in [k for k in self._listings if isinstance(k, tuple)]:
                del self._listings[stale]
        if replace or key not in self._listings:
            self._listings[key] = dict(shown)
        else:
            self._listings[key].update(shown)

    def _listening_agents(self) -> set[str]:
        return {entry[0] for entry in list(self._connections.values())} | self.listens.agents()

    def _on_change(self) -> None:
        """A change somewhere in the store: every cached list is stale, and each connected agent's
        list is read again; an agent is told only when its own list changed (see _visible)."""
        self._generation += 1
        self._visible_cache.clear()
        self._schedule(self._recheck)

    def _schedule(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``make()`` on the server's event loop, from any thread (nothing before it started)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(make())
        else:
            asyncio.run_coroutine_threadsafe(make(), loop)

    async def _recheck(self) -> None:
        """Read again the list of every agent with an open connection or listen stream."""
        for agent in sorted(self._listening_agents()):
            self._refresh_soon(agent)

    def _refresh_soon(self, agent: str) -> None:
        """Read ``agent``'s list again in a task of its own (on the event loop): one read at a time
        per agent, and one more if asked meanwhile. An agent whose thread share is taken (its own
        slow calls) delays only its own news."""
        if agent in self._refreshing:
            self._refresh_again.add(agent)
            return
        self._refreshing.add(agent)
        self._spawn(self._refresh(agent))

    async def _refresh(self, agent: str) -> None:
        try:
            again = True
            while again:
                self._refresh_again.discard(agent)
                try:
                    await self._visible_async(agent)  # tells the agent when its list changed
                except Exception as exc:  # a busy store: the agent's next request reads again
                    log.debug("re-reading an agent's tools failed", agent_id=agent, error=str(exc))
                again = agent in self._refresh_again
        finally:
            self._refreshing.discard(agent)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task of the running loop, held until it is done."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell(self, agent: str) -> None:
        """Tell ``agent``, and only it, that its tool list changed: on each of its handshake-era
        connections and its listen streams (its sessions then list again to see the new names)."""
        for key, (owner, session, _connection) in list(self._connections.items()):
            if owner != agent:
                continue
            try:
                await session.send_tool_list_changed()
            except Exception as exc:  # a gone client must not stop the others hearing about it
                log.debug("list_changed not delivered", error=str(exc))
                self._forget_connection(key)
        await self.listens.tell(agent)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toolrt")
    except PackageNotFoundError:
        return "0"
