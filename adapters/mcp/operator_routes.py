"""The runtime owner's HTTP views: Prometheus ``/metrics``, the dashboard and its JSON API.

Served by ``toolrt serve --transport http`` next to ``/mcp``, and alone by ``toolrt dashboard``.
They show every agent's tools and calls (tool output excerpts among them), so they are for the
runtime's operator, never for agents:

- With operator tokens (``--operator-token``), every data route (``/metrics``, ``/api/...``) needs
  ``Authorization: Bearer <operator token>`` (compared in constant time). A missing or unknown
  token is 401; an agent's MCP token (``--token``) is 403: it never reads an operator view.
- Without operator tokens, the data routes answer without a token only where the MCP server
  itself lets any caller name any agent: on loopback (or with ``--insecure-no-auth``) when no agent
  tokens are configured either. A server with agent tokens but no operator token refuses every
  data route (403, naming ``--operator-token``): its agents must not read each other's calls.
- The page shell (``/dashboard``, its script and style) carries no data and is served to anyone;
  the script sends the token from the URL fragment (``/dashboard#token=...``, never sent to the
  server in a URL) as the Authorization header of every data request.
- The Host header is checked as the MCP transport checks it (DNS-rebinding protection).
- Everything is read-only: every route is a GET, and each calls the ToolRuntime facade only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from toolrt.application import ToolRuntime
from toolrt.application.fleet_metrics import FleetMetrics
from toolrt.domain import NotFoundError, ToolExecuted, ToolRuntimeError, ValidationError
from toolrt.domain.events import DomainEvent
from toolrt.logs import get_logger

log = get_logger(__name__)

#: How much of a call's stdout the tool page shows.
STDOUT_EXCERPT = 240
#: Seconds between keep-alive comments on the event stream.
HEARTBEAT_S = 15.0
_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The page runs its own script and style only, and talks to its own origin only.
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class OperatorAccess:
    """Who may read the operator views (see the module docstring for the rules)."""

    def __init__(
        self,
        operator_tokens: Iterable[str] = (),
        agent_tokens: Iterable[str] = (),
        *,
        open_without_token: bool = False,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self._operator = [t.encode() for t in operator_tokens]
        self._agent = [t.encode() for t in agent_tokens]
        if set(self._operator) & set(self._agent):
            # That agent would read every agent's calls: a mistake in the configuration, refused.
            raise ValidationError(
                "an --operator-token is also an agent's --token: operator tokens must differ from every agent's"
            )
        self._open = open_without_token and not self._operator and not self._agent
        self._hosts = tuple(allowed_hosts)

    def refusal(self, request: Request) -> Response | None:
        """None when ``request`` may read operator data, else the response refusing it."""
        host = request.headers.get("host", "")
        if self._hosts and not _host_allowed(host, self._hosts):
            return _error(421, f"Host {host!r} is not one this server answers to")
        if self._open:
            return None
        if not self._operator:
            return _error(
                403,
                "operator views are off: this server has agent tokens but no operator token; "
                "start it with --operator-token TOKEN",
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        if scheme.lower() != "bearer" or not given:
            return _error(401, "send 'Authorization: Bearer <operator token>'", authenticate=True)
        operator = agent = False
        for known in self._operator:
            operator |= hmac.compare_digest(given, known)
        for known in self._agent:
            agent |= hmac.compare_digest(given, known)
        if operator:
            return None
        if agent:
            return _error(403, "an agent's token cannot read operator views; use an operator token")
        return _error(401, "unknown token: send one of this server's operator tokens", authenticate=True)


def _host_allowed(host: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith(":*"):
            name = pattern[:-2]
            if host == name or (host.startswith(name + ":") and host[len(name) + 1 :].isdigit()):
                return True
        elif host == pattern:
            return True
    return False


def _error(status: int, message: str, *, authenticate: bool = False) -> JSONResponse:
    headers = dict(_NO_STORE)
    if authenticate:
        headers["WWW-Authenticate"] = 'Bearer realm="toolrt operator"'
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data, headers=_NO_STORE)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


# -- views: plain data from the facade ---------------------------------------------------------


def fleet_view(rt: ToolRuntime, window: str) -> dict[str, Any]:
    """``/api/fleet``: :meth:`ToolRuntime.fleet_metrics` as JSON, busiest tools with their names."""
    fleet = rt.fleet_metrics(window)
    data = fleet.as_dict()
    data["busiest"] = [_tool_row(rt, t.tool_id, t.executions, t.failures) for t in fleet.busiest]
    data["profile"] = rt.profile
    data["generated_at"] = datetime.now(UTC).isoformat()
    return data


def _tool_row(rt: ToolRuntime, tool_id: str, executions: int, failures: int) -> dict[str, Any]:
    try:
        tool = rt.get_tool(tool_id)
    except NotFoundError:  # purged since it ran
        return {"tool_id": tool_id, "name": None, "executions": executions, "failures": failures}
    return {
        "tool_id": tool.tool_id,
        "name": tool.name,
        "owner": tool.owner,
        "status": tool.status.value,
        "visibility": tool.visibility_label,
        "language": tool.definition.language.value,
        "current_version": tool.current_version,
        "versions": len(tool.versions),
        "executions": executions,
        "failures": failures,
        "failure_rate": failures / executions if executions else None,
    }


def tools_view(rt: ToolRuntime, window: str, text: str | None, limit: int) -> dict[str, Any]:
    """``/api/tools``: the busiest tools of the window (or those matching ``text``), with activity."""
    fleet = rt.fleet_metrics(window, busiest=1000)
    activity = {t.tool_id: t for t in fleet.busiest}
    if text:
        chosen = [t.tool_id for t in rt.list_tools(None, text=text, status=None, limit=limit)]
    else:
        chosen = [t.tool_id for t in fleet.busiest[:limit]]
        if len(chosen) < limit:
            seen = set(chosen)
            chosen += [t.tool_id for t in rt.list_tools(None, limit=limit) if t.tool_id not in seen][
                : limit - len(chosen)
            ]
    rows = []
    for tool_id in chosen:
        found = activity.get(tool_id)
        rows.append(_tool_row(rt, tool_id, found.executions if found else 0, found.failures if found else 0))
    return {"window_minutes": fleet.minutes, "total": fleet.tools, "tools": rows}


def tool_view(rt: ToolRuntime, tool_id: str, window: str, recent: int) -> dict[str, Any]:
    """``/api/tools/{id}``: versions, split, per-version metrics and series, recent calls."""
    tool = rt.get_tool(tool_id)
    metrics = rt.tool_metrics(tool.tool_id)
    activity = rt.tool_activity(tool.tool_id, window)
    page = rt.list_executions(None, tool=tool.tool_id, limit=recent)
    return {
        "tool": {
            **_tool_row(rt, tool.tool_id, 0, 0),
            "description": tool.definition.description,
            "created_at": tool.created_at.isoformat(),
            "updated_at": tool.updated_at.isoformat(),
            "traffic": {str(v): w for v, w in metrics.traffic},
            "traffic_note": metrics.traffic_note,
        },
        "versions": [
            {
                "version": v.number,
                "code_hash": str(v.code_hash),
                "created_at": v.created_at.isoformat(),
                "current": v.number == tool.current_version,
            }
            for v in tool.versions
        ],
        "version_metrics": [
            {
                "version": v.version,
                "executions": v.executions,
                "succeeded": v.succeeded,
                "failed": v.failed + v.timed_out + v.killed,
                "cancelled": v.cancelled,
                "error_rate": v.error_rate,
                "errors": dict(v.errors),
                "p50_ms": v.p50_ms,
                "p95_ms": v.p95_ms,
            }
            for v in metrics.versions
        ],
        "activity": activity.as_dict(),
        "recent": [
            {
                "execution_id": e.execution_id,
                "version": e.version,
                "caller": e.caller,
                "status": e.status.value,
                "created_at": e.created_at.isoformat(),
                "wall_ms": e.metrics.wall_ms,
                "isolation": e.metrics.isolation.value,
                "error_type": e.error.type if e.error else None,
                "stdout": e.stdout[:STDOUT_EXCERPT],
                "stdout_truncated": len(e.stdout) > STDOUT_EXCERPT or e.stdout_truncated,
            }
            for e in page.items
        ],
    }


def prometheus_text(fleet: FleetMetrics) -> bytes:
    """``fleet`` in the Prometheus text exposition format (prometheus_client's writer).

    Fleet metrics are figures over a window, so every family is a gauge named ``*_window`` (or a
    state such as ``toolrt_tools``); ``toolrt_window_seconds`` says how long the window is. Error
    types are the 20 most frequent.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector

    def gauge(name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]) -> Any:
        family = GaugeMetricFamily(name, doc, labels=list(labels))
        for values, value in rows:
            family.add_metric(list(values), value)
        return family

    class FleetCollector(Collector):
        def collect(self) -> Iterable[Any]:
            f = fleet
            yield gauge(
                "toolrt_window_seconds", "Length of the window the *_window figures cover.", [], [((), f.minutes * 60)]
            )
            yield gauge(
                "toolrt_tools",
                "Tools in the store by state.",
                ["state"],
                [(("active",), f.tools), (("inactive",), f.inactive_tools)],
            )
            yield gauge(
                "toolrt_tools_by_visibility",
                "Active tools by visibility.",
                ["visibility"],
                [((v,), n) for v, n in f.tools_by_visibility],
            )
            yield gauge("toolrt_agents", "Distinct owners of active tools.", [], [((), f.agents)])
            yield gauge(
                "toolrt_callers_window", "Distinct agents that called a tool in the window.", [], [((), f.callers)]
            )
            outcomes = [("succeeded", f.succeeded), ("failed", f.failed), ("timed_out", f.timed_out),
                        ("killed", f.killed), ("cancelled", f.cancelled)]  # fmt: skip
            yield gauge(
                "toolrt_executions_window",
                "Finished executions created in the window, by status.",
                ["status"],
                [((s,), n) for s, n in outcomes],
            )
            if f.failure_rate is not None:
                yield gauge(
                    "toolrt_execution_failure_ratio_window",
                    "Failed, timed out and killed over not cancelled executions in the window.",
                    [],
                    [((), f.failure_rate)],
                )
            quantiles = [(("0.5",), f.p50_ms), (("0.95",), f.p95_ms)]
            yield gauge(
                "toolrt_execution_wall_ms_window",
                "Nearest-rank wall time of not cancelled executions in the window, in milliseconds.",
                ["quantile"],
                [(q, v) for q, v in quantiles if v is not None],
            )
            yield gauge(
                "toolrt_execution_errors_window",
                "Executions in the window that did not succeed, by error type (the 20 most frequent).",
                ["type"],
                [((t,), n) for t, n in f.error_types[:20]],
            )
            yield gauge(
                "toolrt_executions_by_isolation_window",
                "Not cancelled executions in the window by isolation level.",
                ["isolation"],
                [((i,), n) for i, n in f.isolation],
            )
            yield gauge(
                "toolrt_registrations_window",
                "Registrations in the window by outcome.",
                ["outcome"],
                [(("success",), f.registrations), (("failure",), f.registrations_failed)],
            )
            yield gauge(
                "toolrt_artifact_cache_window",
                "Artifact lookups of registrations in the window: hits reused validated code.",
                ["result"],
                [(("hit",), f.cache_hits), (("miss",), f.cache_misses)],
            )
            if f.cache_hit_ratio is not None:
                yield gauge(
                    "toolrt_artifact_cache_hit_ratio_window",
                    "Artifact cache hits over lookups in the window.",
                    [],
                    [((), f.cache_hit_ratio)],
                )
            yield gauge(
                "toolrt_refusals_window",
                "Requests refused with a toolrt error in the window, by operation and error type.",
                ["operation", "type"],
                [((r.operation, r.error_type), r.count) for r in f.refusals],
            )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return bytes(generate_latest(registry))


# -- routes ------------------------------------------------------------------------------------


def _window(request: Request) -> str:
    return request.query_params.get("window", "1h")


def _limit(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(f"{name} must be an integer from 1 to {maximum}, got {raw!r}")
    return int(raw)


def operator_routes(rt: ToolRuntime, access: OperatorAccess) -> list[Route]:
    """The operator routes (``/metrics``, ``/dashboard``, ``/api/...``) reading ``rt``."""

    def guarded(
        produce: Callable[[Request], Any], *, media: str | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            refused = access.refusal(request)
            if refused is not None:
                return refused
            try:
                data = await anyio.to_thread.run_sync(produce, request)
            except NotFoundError as exc:
                return _error(404, str(exc))
            except (ToolRuntimeError, ValueError) as exc:
                return _error(400, str(exc))
            if media is not None:
                return Response(data, media_type=media, headers=_NO_STORE)
            return _json(data)

        return endpoint

    def metrics(request: Request) -> bytes:
        return prometheus_text(rt.fleet_metrics(request.query_params.get("window", "5m")))

    async def page(request: Request) -> Response:
        return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return _error(404, f"no asset {name!r}")
        return Response(_asset(name), media_type=_ASSETS[name], headers=_PAGE_HEADERS)

    async def events(request: Request) -> Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        return StreamingResponse(
            _event_stream(rt, request), media_type="text/event-stream", headers={**_NO_STORE, "X-Accel-Buffering": "no"}
        )

    return [
        Route("/metrics", guarded(metrics, media="text/plain; version=0.0.4; charset=utf-8"), methods=["GET"]),
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/{name}", asset, methods=["GET"]),
        Route("/api/fleet", guarded(lambda r: fleet_view(rt, _window(r))), methods=["GET"]),
        Route(
            "/api/tools",
            guarded(lambda r: tools_view(rt, _window(r), r.query_params.get("q") or None, _limit(r, "limit", 50, 500))),
            methods=["GET"],
        ),
        Route(
            "/api/tools/{tool_id}",
            guarded(lambda r: tool_view(rt, r.path_params["tool_id"], _window(r), _limit(r, "recent", 20, 200))),
            methods=["GET"],
        ),
        Route("/api/events", events, methods=["GET"]),
    ]


def _asset(name: str) -> bytes:
    return resources.files("toolrt.adapters.mcp").joinpath(name).read_bytes()


async def _event_stream(rt: ToolRuntime, request: Request) -> AsyncIterator[bytes]:
    """Server-sent events: one ``executed`` event per finished call this process records (ids,
    status and wall time only), and a comment every :data:`HEARTBEAT_S` seconds. Calls other
    processes make are not events here: the page also polls."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize=1000)

    def hear(event: DomainEvent) -> None:  # in the thread that recorded the call
        def put() -> None:
            if not queue.full():
                queue.put_nowait(event)

        loop.call_soon_threadsafe(put)

    unsubscribe = rt.subscribe(ToolExecuted, hear)
    try:
        yield b"retry: 3000\n: connected\n\n"
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if not isinstance(event, ToolExecuted):
                continue
            data = {
                "tool_id": event.tool_id,
                "execution_id": event.execution_id,
                "status": event.status.value,
                "wall_ms": _number(event.wall_ms),
                "at": event.at.isoformat(),
            }
            yield f"event: executed\ndata: {json.dumps(data)}\n\n".encode()
    finally:
        unsubscribe()


def dashboard_app(
    rt: ToolRuntime,
    host: str,
    *,
    operator_tokens: Sequence[str] = (),
    allowed_hosts: Sequence[str] = (),
    insecure_no_auth: bool = False,
) -> Any:
    """The operator views alone, as an ASGI app for a server bound to ``host`` (``toolrt
    dashboard``): no MCP, the same access rules and Host checks as next to ``/mcp``."""
    from starlette.applications import Starlette

    from toolrt.adapters.mcp.exposure import is_loopback, transport_security

    security = transport_security(host, list(allowed_hosts))
    access = OperatorAccess(
        operator_tokens,
        (),
        open_without_token=is_loopback(host) or insecure_no_auth,
        allowed_hosts=security.allowed_hosts,
    )
    from starlette.responses import RedirectResponse

    async def home(request: Any) -> Any:
        # The page is at /dashboard; a browser keeps the #token fragment across the redirect.
        return RedirectResponse("/dashboard", status_code=307)

    return Starlette(routes=[Route("/", home, methods=["GET"]), *operator_routes(rt, access)])
