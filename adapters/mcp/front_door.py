"""Where a request enters the MCP server over HTTP: identity bound at the transport, limits per agent.

The SDK pieces the HTTP transport is assembled from are used here, and nowhere else: the place to
adapt for another SDK version. They exist alike in mcp 1.x and 2.x (the session manager's
admission and discard methods, which are private, included), except ``ListenHandler``
(``subscriptions/listen``, 2.x only).

- **Tokens.** With agent tokens configured, ``/mcp`` sits behind the SDK's own bearer
  authentication: Starlette's ``AuthenticationMiddleware`` with the SDK's ``BearerAuthBackend`` over
  :class:`AgentTokens` (a ``TokenVerifier``), then the SDK's ``RequireAuthMiddleware``. A request
  without a valid token (a POST of any JSON-RPC method, a GET listen stream, a DELETE) is answered
  401 before the session manager sees it. The verified access token's ``client_id`` is the agent.
- **Sessions belong to their agent.** The SDK's session manager records the principal of the
  request that opened a session and answers a request carrying another one (another agent's
  token) exactly as it answers an unknown session: 404. So do idle sessions once they expire.
- **Limits per agent** (:class:`AgentSessionManager`, :class:`AgentListens`): at most
  ``sessions_per_agent`` open sessions (a GET listen stream is one per session) and
  ``listens_per_agent`` ``subscriptions/listen`` streams per agent, so no agent, and no client
  without a token, can use up what the others need. A request past a limit is refused (HTTP 429,
  or a JSON-RPC error on the listen request) with the limit and what to do.
"""

from __future__ import annotations

import contextvars
import hmac
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from toolrt.adapters.mcp.compat import HAS_LISTEN, protocol_error, types
from toolrt.adapters.mcp.limits import check_agent_tokens
from toolrt.domain import ValidationError

# The agent of the HTTP request being served, for code the SDK runs without a request context
# (the tool-schema lookup behind its Mcp-Param header check); None outside a request.
REQUEST_AGENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("toolrt_mcp_request_agent", default=None)


class AgentTokens:
    """The SDK ``TokenVerifier`` of toolrt's agent tokens: a presented token is compared with every
    configured one in constant time, and a match is an access token whose client is the agent."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        check_agent_tokens(tokens)
        self._tokens = [(token.encode(), agent) for token, agent in tokens.items()]

    def agent_of(self, presented: str) -> str | None:
        """The agent of ``presented``, or None (every configured token is compared, whatever matches)."""
        found = None
        given = presented.strip().encode()
        for token, agent in self._tokens:
            if hmac.compare_digest(given, token):
                found = agent
        return found

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access token for ``token`` (client and subject: its agent), or None when unknown."""
        agent = self.agent_of(token)
        return None if agent is None else AccessToken(token=token, client_id=agent, subject=agent, scopes=[])


def authenticated_agent(scope: Any) -> str | None:
    """The agent the SDK's authentication found for this request, or None."""
    user = scope.get("user")
    return user.access_token.client_id if isinstance(user, AuthenticatedUser) else None


class SessionLimitReached(Exception):
    """An agent asked for a session past its limit."""

    def __init__(self, agent: str, limit: int) -> None:
        super().__init__(agent, limit)
        self.agent = agent
        self.limit = limit


class AgentSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with at most ``sessions_per_agent`` open sessions per agent.

    The agent is the principal the SDK records as a session's owner (its ``client_id``). Admission
    is decided where the SDK decides it (under its session-creation lock), and a session is
    forgotten where the SDK forgets it (a DELETE, idle expiry, a crash, a refused opening request).
    Without tokens no session has an owner, and only the SDK's ``max_sessions`` bounds them.
    """

    def __init__(self, app: Any, *, sessions_per_agent: int, **options: Any) -> None:
        super().__init__(app, **options)
        self.sessions_per_agent = sessions_per_agent
        self._per_agent: Counter[str] = Counter()

    def open_sessions(self, agent: str) -> int:
        """How many sessions ``agent`` has open."""
        return self._per_agent[agent]

    def _admit_session(self, requestor: Any) -> Any:
        agent = requestor["client_id"] if requestor is not None else None
        if agent is not None and self._per_agent[agent] >= self.sessions_per_agent:
            raise SessionLimitReached(agent, self.sessions_per_agent)
        transport = super()._admit_session(requestor)
        if transport is not None and agent is not None:
            self._per_agent[agent] += 1
        return transport

    async def _discard_session(self, session_id: str, transport: Any) -> None:
        if session_id in self._server_instances:  # counted once, however many paths end it
            owner = self._session_owners.get(session_id)
            if owner is not None:
                agent = owner["client_id"]
                self._per_agent[agent] -= 1
                if self._per_agent[agent] <= 0:
                    del self._per_agent[agent]
        await super()._discard_session(session_id, transport)


def _limit_response(message: str) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
    return JSONResponse(body, status_code=429, headers={"Retry-After": "60"})


class _Gate:
    """The session manager behind the authentication: makes the request's agent known to code the
    SDK runs without a request context, and answers a per-agent session limit with 429."""

    def __init__(self, manager: AgentSessionManager, agent_of: Callable[[Scope], str | None]) -> None:
        self.manager = manager
        self.agent_of = agent_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reset = REQUEST_AGENT.set(self.agent_of(scope) if scope.get("type") == "http" else None)
        try:
            await self.manager.handle_request(scope, receive, send)
        except SessionLimitReached as exc:
            minutes = (self.manager.session_idle_timeout or 0) / 60
            await _limit_response(
                f"agent {exc.agent!r} already has {exc.limit} open MCP sessions, the most one agent may hold: "
                f"end one (HTTP DELETE with its Mcp-Session-Id) or wait for an idle one to expire ({minutes:g} min)"
            )(scope, receive, send)
        finally:
            REQUEST_AGENT.reset(reset)


def mcp_endpoint(
    manager: AgentSessionManager, agent_of: Callable[[Scope], str | None], tokens: AgentTokens | None
) -> ASGIApp:
    """The ASGI app served at ``/mcp``: with ``tokens``, the SDK's bearer authentication in front
    (401 for any request without a valid token), then the per-agent gate and the session manager."""
    gate: ASGIApp = _Gate(manager, agent_of)
    if tokens is None:
        return gate
    return AuthenticationMiddleware(
        AuthContextMiddleware(RequireAuthMiddleware(gate, required_scopes=[])),
        backend=BearerAuthBackend(tokens),
    )


class AgentListens:
    """``subscriptions/listen`` with a stream limit per agent, and events for one agent at a time.

    Each agent has its own bus and the SDK's ``ListenHandler`` over it (which acknowledges, stamps
    and buffers as the protocol says): :meth:`tell` reaches that agent's streams only, so no agent
    hears of another's changes. ``agent_of`` finds the agent of a request (ValidationError when
    it has none); ``before_listen(agent)`` runs before a stream is acknowledged (the server reads
    what the agent's list holds then, to tell it of later changes).
    """

    def __init__(
        self,
        agent_of: Callable[[Any], str],
        listens_per_agent: int,
        total: int | None = None,
        before_listen: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        # subscriptions/listen is 2.x's (2026-era clients); on 1.x no stream ever opens here.
        if HAS_LISTEN:
            from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

            self._bus_type: Any = InMemorySubscriptionBus
            self._handler_type: Any = ListenHandler
        self._agent_of = agent_of
        self.listens_per_agent = listens_per_agent
        self._total = total
        self._before_listen = before_listen
        self._open: Counter[str] = Counter()
        self._agents: dict[str, tuple[Any, Any]] = {}  # agent -> (bus, handler), while it has streams

    def agents(self) -> set[str]:
        """The agents with a listen stream open."""
        return set(self._agents)

    def open_streams(self, agent: str) -> int:
        """How many listen streams ``agent`` has open."""
        return self._open[agent]

    async def __call__(self, ctx: Any, params: Any) -> Any:
        """Serve one listen stream for the request's agent, within its limit."""
        try:
            agent = self._agent_of(ctx)
        except ValidationError as exc:
            raise protocol_error(types.INVALID_REQUEST, str(exc)) from None
        if self._open[agent] >= self.listens_per_agent:
            raise protocol_error(
                types.INTERNAL_ERROR,
                f"agent {agent!r} already has {self.listens_per_agent} listen streams open, the most one agent "
                "may hold: close one before listening again",
            )
        if self._total is not None and sum(self._open.values()) >= self._total:
            raise protocol_error(
                types.INTERNAL_ERROR, f"{self._total} listen streams are open, the most this server holds"
            )
        entry = self._agents.get(agent)
        if entry is None:
            bus = self._bus_type()
            entry = self._agents[agent] = (bus, self._handler_type(bus, max_subscriptions=self.listens_per_agent))
        self._open[agent] += 1
        try:
            if self._before_listen is not None:
                await self._before_listen(agent)
            return await entry[1](ctx, params)
        finally:
            self._open[agent] -= 1
            if self._open[agent] <= 0:
                del self._open[agent]
                self._agents.pop(agent, None)

    async def tell(self, agent: str) -> None:
        """Send ``tools_list_changed`` on ``agent``'s listen streams (none: nothing happens)."""
        from mcp.server.subscriptions import ToolsListChanged

        entry = self._agents.get(agent)
        if entry is not None:
            await entry[0].publish(ToolsListChanged())

    def close(self) -> None:
        """End every open listen stream gracefully."""
        for _bus, handler in list(self._agents.values()):
            handler.close()
