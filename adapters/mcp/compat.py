"""The mcp SDK as toolrt's MCP server uses it, on the SDK's 1.x (1.30 and later) and 2.x (2.3 and later) releases.

Agent frameworks pin the SDK differently (LangChain's MCP adapters and FastMCP 3 need ``mcp<2``,
the OpenAI Agents SDK takes either), and an application installs toolrt into the virtualenv its
framework already lives in. Everything in toolrt's server that differs between the two lines goes
through this module, and nothing else of toolrt imports the SDK's version-specific modules:

- the protocol types (``mcp_types`` in 2.x, ``mcp.types`` in 1.x) are built from their wire form
  (camelCase keys, which both accept): :func:`tool`, :func:`text`, :func:`call_result`;
- the low-level server takes its handlers as keyword arguments in 2.x and through a table in 1.x:
  :func:`build_server` takes toolrt's two handlers, ``(ctx, params)``, for either, and hands them
  a request context with the same fields (:class:`RequestContext`);
- ``subscriptions/listen`` and the 2026-era protocol versions exist in 2.x only
  (:data:`MODERN_PROTOCOL_VERSIONS` is empty on 1.x, :data:`HAS_LISTEN` false);
- a JSON-RPC error is ``MCPError(code, message)`` in 2.x and ``McpError(ErrorData)`` in 1.x:
  :func:`protocol_error`.

The pieces both lines share (the streamable HTTP session manager, bearer authentication, transport
security, stdio) are imported from their common module paths where they are used.

``toolrt.adapters.mcp.sdk`` says which SDK is installed and whether toolrt's server runs on it
(without importing any of the SDK); ``toolrt doctor`` shows it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from toolrt.adapters.mcp.sdk import SUPPORTED, SUPPORTED_PIN, SdkSupport, installed_version, release, sdk_support

_version = installed_version() or "0"
MAJOR = (release(_version) or (0,))[0]

if MAJOR >= 2:  # pragma: no branch - one line of the SDK is installed
    import mcp_types as types
    from mcp.server.lowlevel.server import NotificationOptions
    from mcp.shared.exceptions import MCPError
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS as _MODERN

    MODERN_PROTOCOL_VERSIONS: frozenset[str] = frozenset(_MODERN)
    HAS_LISTEN = True
else:
    types = importlib.import_module("mcp.types")  # type: ignore[assignment,unused-ignore]
    NotificationOptions = importlib.import_module("mcp.server.lowlevel.server").NotificationOptions  # type: ignore[misc,unused-ignore]
    MODERN_PROTOCOL_VERSIONS = frozenset()
    HAS_LISTEN = False

__all__ = [
    "HAS_LISTEN",
    "MAJOR",
    "MODERN_PROTOCOL_VERSIONS",
    "SUPPORTED",
    "SUPPORTED_PIN",
    "RequestContext",
    "SdkSupport",
    "build_server",
    "call_result",
    "installed_version",
    "connection_of",
    "list_result",
    "on_connection_end",
    "protocol_error",
    "report_progress",
    "sdk_support",
    "text",
    "tool",
    "types",
]


class RequestContext(Protocol):
    """What toolrt's handlers read of a request, on either SDK line.

    ``meta`` is the request's ``_meta`` as a mapping (``progress_token`` when the caller asked for
    progress); ``request`` is the HTTP request (None over stdio); ``protocol_version`` is the one
    the connection agreed on.
    """

    @property
    def session(self) -> Any: ...  # noqa: D102
    @property
    def protocol_version(self) -> str: ...  # noqa: D102
    @property
    def meta(self) -> Any: ...  # noqa: D102
    @property
    def request(self) -> Any: ...  # noqa: D102
    @property
    def request_id(self) -> Any: ...  # noqa: D102


Handler = Callable[[Any, Any], Awaitable[Any]]


def tool(
    name: str,
    description: str | None,
    input_schema: Mapping[str, Any],
    *,
    output_schema: Mapping[str, Any] | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> types.Tool:
    """An MCP ``Tool`` (``annotations`` in wire form: ``readOnlyHint``, ``destructiveHint``, ...)."""
    wire: dict[str, Any] = {"name": name, "inputSchema": dict(input_schema)}
    if description is not None:
        wire["description"] = description
    if output_schema is not None:
        wire["outputSchema"] = dict(output_schema)
    if annotations:
        wire["annotations"] = dict(annotations)
    return types.Tool.model_validate(wire)


def text(value: str) -> types.TextContent:
    """A ``TextContent`` block."""
    return types.TextContent.model_validate({"type": "text", "text": value})


def call_result(
    blocks: list[types.TextContent],
    *,
    structured: Mapping[str, Any] | None = None,
    is_error: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> types.CallToolResult:
    """A ``CallToolResult``: content blocks, ``structuredContent``, ``isError`` and ``_meta``."""
    wire: dict[str, Any] = {"content": blocks, "isError": is_error}
    if structured is not None:
        wire["structuredContent"] = dict(structured)
    if meta:
        wire["_meta"] = dict(meta)
    return types.CallToolResult.model_validate(wire)


def list_result(tools: list[Any]) -> types.ListToolsResult:
    """A ``ListToolsResult``."""
    return types.ListToolsResult.model_validate({"tools": tools})


def protocol_error(code: int, message: str) -> Exception:
    """The exception the SDK answers as a JSON-RPC error with ``code`` and ``message``."""
    if MAJOR >= 2:
        return MCPError(code, message)
    shared = importlib.import_module("mcp.shared.exceptions")
    return shared.McpError(types.ErrorData(code=code, message=message))  # type: ignore[no-any-return]


async def report_progress(ctx: RequestContext, token: Any, progress: float, total: float | None, message: str) -> None:
    """Send ``notifications/progress`` for ``token`` on the request's own stream."""
    related = None if ctx.request_id is None else str(ctx.request_id)
    await ctx.session.send_progress_notification(token, progress, total, message, related_request_id=related)


def connection_of(ctx: RequestContext) -> Any:
    """The object that stands for the request's connection (2.x: its connection; 1.x: its session)."""
    connection = getattr(ctx.session, "_connection", None)
    return connection if connection is not None else ctx.session


def on_connection_end(ctx: RequestContext, callback: Callable[[], Any]) -> None:
    """Run ``callback`` once the request's connection ends (the exit stack each SDK line closes then)."""
    connection = getattr(ctx.session, "_connection", None)
    exit_stack = getattr(connection, "exit_stack", None) if connection is not None else None
    if exit_stack is None:
        exit_stack = getattr(ctx.session, "_exit_stack", None)  # 1.x: the session's own
    if exit_stack is not None:
        exit_stack.callback(callback)


@dataclass(frozen=True)
class _V1Context:
    """A 1.x request context in the shape of 2.x's ``ServerRequestContext`` (see RequestContext)."""

    session: Any
    protocol_version: str
    meta: Mapping[str, Any] | None
    request: Any
    request_id: Any


def _v1_context(server: Any) -> _V1Context:
    raw = server.request_context
    meta = None
    if raw.meta is not None:
        dumped = raw.meta.model_dump(exclude_none=True)
        token = dumped.pop("progressToken", None)
        meta = {**dumped, **({"progress_token": token} if token is not None else {})}
    params = getattr(raw.session, "client_params", None)
    version = str(getattr(params, "protocolVersion", "") or "")
    return _V1Context(raw.session, version, meta, raw.request, raw.request_id)


def build_server(
    name: str,
    *,
    version: str,
    instructions: str,
    on_list_tools: Handler,
    on_call_tool: Handler,
    get_tool_input_schema: Callable[[str], Mapping[str, Any] | None] | None = None,
    on_subscriptions_listen: Handler | None = None,
) -> Any:
    """The SDK's low-level server, advertising a tool list that changes, with toolrt's handlers.

    Each handler is called as ``handler(ctx, params)`` (a :class:`RequestContext` and the request's
    params) on either SDK line. ``get_tool_input_schema`` (the check of ``Mcp-Param-*`` headers)
    and ``on_subscriptions_listen`` are used where the SDK has them (2.x).
    """
    if MAJOR >= 2:
        from mcp.server.lowlevel import Server
        from mcp.server.models import InitializationOptions

        class _Server(Server[Any]):
            def create_initialization_options(
                self,
                notification_options: NotificationOptions | None = None,
                experimental_capabilities: dict[str, dict[str, Any]] | None = None,
                extensions: dict[str, dict[str, Any]] | None = None,
            ) -> InitializationOptions:
                return super().create_initialization_options(
                    notification_options or NotificationOptions(tools_changed=True),
                    experimental_capabilities,
                    extensions,
                )

        return _Server(
            name,
            version=version,
            instructions=instructions,
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
            get_tool_input_schema=get_tool_input_schema,
            on_subscriptions_listen=on_subscriptions_listen,
        )
    return _v1_server(name, version, instructions, on_list_tools, on_call_tool)


def _v1_server(name: str, version: str, instructions: str, on_list_tools: Handler, on_call_tool: Handler) -> Any:
    lowlevel = importlib.import_module("mcp.server.lowlevel.server")
    v1: Any = types  # mcp.types: checked against 2.x's types, whose ServerResult is a union

    class _Server(lowlevel.Server):  # type: ignore[misc,name-defined]
        def create_initialization_options(
            self, notification_options: Any = None, experimental_capabilities: Any = None
        ) -> Any:
            return super().create_initialization_options(
                notification_options or NotificationOptions(tools_changed=True), experimental_capabilities
            )

    server = _Server(name, version=version, instructions=instructions)

    # Straight into the request table: the SDK's decorators would check arguments against a tool
    # cache shared by every caller (one agent's "add" is not another's) and list tools again on a miss.
    async def list_tools(request: Any) -> Any:
        params = getattr(request, "params", None)
        return v1.ServerResult(await on_list_tools(_v1_context(server), params))

    async def call_tool(request: Any) -> Any:
        return v1.ServerResult(await on_call_tool(_v1_context(server), request.params))

    server.request_handlers[v1.ListToolsRequest] = list_tools
    server.request_handlers[v1.CallToolRequest] = call_tool
    return server
