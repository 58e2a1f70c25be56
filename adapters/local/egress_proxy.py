"""The host-side egress proxy: each sandbox worker's only way out, to the hosts its current call may reach.

Design, and why:

* **One unix socket per worker (a gate), bound into that worker's sandbox only.** The sandbox has no
  network interface but loopback (bubblewrap ``--unshare-net``); the socket is its only door. The
  host knows which call a worker is running (it hands the call over), so a gate's grant is set by
  the host when a call starts (:meth:`EgressGate.begin`) and dropped when it ends
  (:meth:`EgressGate.end`, which also closes every connection the call opened). Nothing the sandbox
  sends says which call it is: a connection belongs to the call running when it was accepted, and
  to no other, and a worker cannot see another worker's socket.
* **HTTP CONNECT and plain HTTP with an absolute URI** are what clients send to a proxy named by
  ``HTTP_PROXY``/``HTTPS_PROXY`` (Python's urllib, requests, Node's fetch and ``http`` with
  ``NODE_USE_ENV_PROXY=1``). Every request head is read strictly (:mod:`.egress_http`: lines
  end with CRLF only, no control character anywhere, exactly ``HTTP/1.0`` or ``HTTP/1.1``, one
  ``Host``, h11 for the grammar); one that is not is answered 400 with the reason, and closed,
  before any connection is made. A plain request is rebuilt from what was parsed, never copied:
  its request line in origin form, its ``Host`` the URI's host (the one that was checked: the
  upstream never sees a name it was not asked for, such as another virtual host on the same
  address), proxy and hop-by-hop headers dropped, ``Connection: close``. Exactly one request per
  connection reaches the upstream: its body is passed on as its ``Content-Length`` or chunked
  framing says, and nothing the client sends after it (a pipelined second request) is. Framings an
  upstream could read otherwise (both ``Content-Length`` and ``Transfer-Encoding``, two lengths,
  another coding than ``chunked``, folded header lines) are refused, so no request can be smuggled
  past the proxy.
* **Decisions:** the ``host:port`` must be in the call's :class:`~toolrt.domain.EgressGrant` (the
  tool declared it and the owner's policy permits it now); an IP literal is there only when the
  owner named that exact address. Names are resolved here, once, and the proxy connects to the
  addresses it checked (never to the name again: no DNS rebinding between check and connect);
  a name with any private, loopback, link-local, multicast, unspecified or reserved address is
  refused unless the owner's policy lists that exact ``host:port`` as private (any such address is
  taken as a sign of a rebinding trick rather than skipped). Every decision is logged, allowed or
  denied, with the execution id, host, port and reason.
* **A call holds at most** :data:`MAX_CALL_CONNECTIONS` **connections at once.** Each connection is
  a descriptor of the runtime's own process: a call opening thousands (64 processes of 256
  descriptors each) would exhaust them, and every other agent's calls would fail. One past the
  bound is answered 429 and closed at once.
* **asyncio in one daemon thread** (standard library only): hundreds of idle connections cost
  nothing, and gates are opened and closed from the sandbox's threads through thread-safe calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from toolrt.adapters.local.egress_http import (
    HEAD_LIMIT,
    ProxyRequest,
    RequestRefused,
    absolute_target,
    origin_form_head,
    read_request,
    send_body,
)
from toolrt.domain import EgressGrant, HostPort, is_public_address, parse_host_port
from toolrt.domain.network import is_ip_literal
from toolrt.logs import get_logger

__all__ = [
    "MAX_CALL_CONNECTIONS",
    "SANDBOX_PROXY_PORT",
    "SANDBOX_SOCKET",
    "EgressGate",
    "EgressProxy",
    "Resolver",
    "system_resolver",
]

log = get_logger(__name__)

Resolver = Callable[[str, int], list[str]]
"""``resolver(host, port)``: the addresses ``host`` resolves to (raises OSError when it does not)."""

# Inside a sandbox: where the worker's gate is bound, and the loopback port its forwarder listens
# on (each sandbox has a network namespace of its own, so one fixed port serves every worker).
SANDBOX_SOCKET = "/run/toolrt/egress.sock"
SANDBOX_PROXY_PORT = 3128
MAX_CALL_CONNECTIONS = 64  # connections one call may hold open at once (each is a host descriptor)
HEAD_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
RESOLVE_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (TCP), in its order, without duplicates."""
    found: list[str] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


class _Call:
    """The call a gate serves now: its id, its grant and the connections it opened."""

    def __init__(self, execution_id: str, grant: EgressGrant, token: str | None = None) -> None:
        self.execution_id = execution_id
        self.grant = grant
        self.token = token
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.ended = False
        self.denied: list[str] = []  # the host:port targets refused, in order


class EgressGate:
    """One worker's door: a unix socket whose connections may reach what the worker's current call may.

    Made by :meth:`EgressProxy.open_gate`; ``path`` is the socket on the host, to be bound into
    that worker's sandbox and no other.
    """

    def __init__(self, proxy: EgressProxy, path: Path) -> None:
        self._proxy = proxy
        self.path = path
        self.server: asyncio.AbstractServer | None = None
        self.call: _Call | None = None
        self.lock = threading.Lock()
        self.closed = False

    def begin(self, execution_id: str, grant: EgressGrant | None, *, token: str | None = None) -> None:
        """A call starts in this gate's worker: its connections may reach ``grant`` (None: nothing).

        ``token``: each connection must first send ``TOOLRT-CALL <token>\r\n``. A worker that serves
        one call after another (the Python zygote) gives each call a fresh token, so that a
        connection an earlier call left in the socket's queue, accepted only once this call began,
        is refused instead of riding this call's grant. A single-use worker (Node) needs none.
        """
        with self.lock:
            self.call = _Call(execution_id, grant or EgressGrant(), token)

    def end(self) -> tuple[str, ...]:
        """The call ended: forget its grant and close every connection it opened (waits for that).

        Returns the ``host:port`` targets its connections asked for and were refused, in order.
        """
        with self.lock:
            call, self.call = self.call, None
        if call is None:
            return ()
        self._proxy.run(self._proxy.close_call(call))
        return tuple(call.denied)

    def close(self) -> None:
        """Stop listening and remove the socket (the worker is gone)."""
        self.end()
        with self.lock:
            if self.closed:
                return
            self.closed = True
        server = self.server
        if server is not None:
            with contextlib.suppress(Exception):
                self._proxy.run(_close_server(server))
        with contextlib.suppress(OSError):
            self.path.unlink()


CALL_LINE = b"TOOLRT-CALL "


def call_line(token: str) -> bytes:
    """What a connection sends first to a gate whose call has ``token``."""
    return CALL_LINE + token.encode("ascii") + b"\r\n"


async def _presents(reader: asyncio.StreamReader, token: str) -> bool:
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), HEAD_TIMEOUT_S)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, OSError):
        return False
    return hmac.compare_digest(line, call_line(token))


async def _close_server(server: asyncio.AbstractServer) -> None:
    server.close()


class EgressProxy:
    """Listens on one unix socket per worker and relays each call's connections to its granted hosts.

    ``resolver`` maps a name to addresses (the system's by default; tests map names to loopback);
    ``socket_owner`` is the uid that must be able to connect (the sandbox's, when it differs from
    ours). Thread-safe; :meth:`close` stops it.
    """

    def __init__(self, resolver: Resolver | None = None, *, socket_owner: int | None = None) -> None:
        self._resolver = resolver or system_resolver
        self._owner = socket_owner
        self._folder = Path(tempfile.mkdtemp(prefix="toolrt-egress-"))
        if socket_owner is not None:
            # The sandbox user must pass through the folder to bind its socket, not list it.
            os.chmod(self._folder, 0o711)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="toolrt-egress", daemon=True)
        self._thread.start()
        self._gates: set[EgressGate] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, coro: object) -> object:
        """Run a coroutine on the proxy's loop and wait for its result (from any other thread)."""
        assert asyncio.iscoroutine(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def open_gate(self) -> EgressGate:
        """A new gate listening on a fresh socket in the proxy's private folder."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the egress proxy is closed")
        path = self._folder / f"{secrets.token_hex(8)}.sock"
        gate = EgressGate(self, path)

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_unix_server(
                lambda r, w: self._accept(gate, r, w), path=str(path), limit=HEAD_LIMIT
            )

        server = self.run(start())
        assert isinstance(server, asyncio.AbstractServer)
        gate.server = server
        if self._owner is not None:
            os.chown(path, self._owner, self._owner)
        os.chmod(path, 0o600)
        with self._lock:
            self._gates.add(gate)
        return gate

    def close(self) -> None:
        """Close every gate and connection, stop the loop and remove the sockets' folder."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            gates = list(self._gates)
        for gate in gates:
            gate.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        shutil.rmtree(self._folder, ignore_errors=True)

    async def close_call(self, call: _Call) -> None:
        """Close every connection ``call`` opened and wait for their handlers to finish."""
        call.ended = True
        for writer in list(call.writers):
            writer.close()
        tasks = [t for t in call.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # -- connections (on the loop) -------------------------------------------------------------

    async def _accept(self, gate: EgressGate, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with gate.lock:
            call = gate.call
        if call is None or call.ended:
            log.warning("egress denied", execution_id=None, host=None, port=None, reason="no call is running")
            await _reply(writer, 403, "no call is running in this sandbox")
            return
        if len(call.tasks) >= MAX_CALL_CONNECTIONS:
            log.warning(
                "egress denied", execution_id=call.execution_id, host=None, port=None, reason="too many connections"
            )
            await _reply(writer, 429, f"a call may hold at most {MAX_CALL_CONNECTIONS} connections at once")
            return
        task = asyncio.current_task()
        assert task is not None
        call.tasks.add(task)
        call.writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream = await self._serve(call, reader, writer)
        except asyncio.CancelledError:
            pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            call.tasks.discard(task)
            call.writers.discard(writer)
            for w in (writer, upstream):
                if w is not None:
                    w.close()

    async def _serve(
        self, call: _Call, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> asyncio.StreamWriter | None:
        if call.token is not None and not await _presents(reader, call.token):
            log.warning(
                "egress denied",
                execution_id=call.execution_id,
                host=None,
                port=None,
                reason="not this call's connection",
            )
            await _reply(writer, 403, "this connection does not belong to the running call")
            return None
        path = ""
        try:
            request = await asyncio.wait_for(read_request(reader), HEAD_TIMEOUT_S)
            if request.method == "CONNECT":
                target = parse_host_port(request.target)
            else:
                target, path = absolute_target(request.target)
        except TimeoutError:
            await _refuse(writer, call, 408, f"the request head did not arrive within {HEAD_TIMEOUT_S:g} s")
            return None
        except RequestRefused as exc:
            await _refuse(writer, call, exc.status, exc.reason)
            return None
        except ValueError as exc:
            await _refuse(writer, call, 400, str(exc))
            return None
        method = request.method
        addresses, reason = await self._decide(call, target)
        fields = {"execution_id": call.execution_id, "host": target.host, "port": target.port, "method": method}
        if not addresses:
            log.warning("egress denied", **fields, reason=reason)
            call.denied.append(str(target))
            await _reply(writer, 403, f"{target} refused: {reason}")
            return None
        upstream_reader, upstream = await self._connect(addresses, target.port)
        if upstream is None:
            log.warning("egress failed", **fields, reason="connection failed", addresses=",".join(addresses))
            await _reply(writer, 502, f"could not connect to {target}")
            return None
        if call.ended:
            return upstream
        call.writers.add(upstream)
        log.info("egress allowed", **fields, reason=reason, address=upstream.get_extra_info("peername")[0])
        try:
            if method == "CONNECT":
                writer.write(f"HTTP/{request.version} 200 Connection established\r\n\r\n".encode("ascii"))
                await writer.drain()
                upstream.write(request.rest)  # what the client sent after the head is the tunnel's
                await _relay(reader, writer, upstream_reader, upstream)
            else:
                upstream.write(origin_form_head(request, path, target))
                await _one_request(request, reader, writer, upstream_reader, upstream)
        except RequestRefused as exc:
            log.warning("egress stopped", **fields, reason=exc.reason)
        finally:
            call.writers.discard(upstream)
        return upstream

    async def _decide(self, call: _Call, target: HostPort) -> tuple[list[str], str]:
        """The addresses to connect to (empty when refused) and why."""
        if not call.grant.permits(target):
            if is_ip_literal(target.host):
                return [], "an IP literal the owner's policy does not name exactly"
            if not call.grant:
                return [], "the tool declares no network access the policy permits"
            return [], "not declared by the tool, or not permitted by the owner's policy"
        if is_ip_literal(target.host):
            addresses = [target.host]
        else:
            try:
                addresses = await asyncio.wait_for(
                    self._loop.run_in_executor(None, self._resolver, target.host, target.port), RESOLVE_TIMEOUT_S
                )
            except (OSError, TimeoutError, UnicodeError) as exc:
                return [], f"does not resolve ({type(exc).__name__})"
            if not addresses:
                return [], "does not resolve"
        if call.grant.may_be_private(target):
            return addresses, "named by the owner's policy as private"
        for address in addresses:
            try:
                public = is_public_address(address)
            except ValueError:
                return [], f"resolved to something that is not an address: {address!r}"
            if not public:
                return [], f"resolves to a non-public address ({address}) the owner's policy does not name"
        return addresses, "declared and permitted"

    async def _connect(
        self, addresses: list[str], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter | None]:
        for address in addresses:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(address, port, limit=_CHUNK), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                continue
            return reader, writer
        return asyncio.StreamReader(), None


async def _one_request(
    request: ProxyRequest,
    client_reader: asyncio.StreamReader,
    client: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
) -> None:
    """One plain request: its body goes up, the answer comes back; what the client sends later is dropped."""
    answer = asyncio.ensure_future(_pump(upstream_reader, client))
    try:
        await send_body(request, client_reader, upstream)
        await answer
    finally:
        answer.cancel()


async def _refuse(writer: asyncio.StreamWriter, call: _Call, status: int, reason: str) -> None:
    """Log a request refused before any decision on its target, and answer it."""
    log.warning("egress denied", execution_id=call.execution_id, host=None, port=None, reason=reason)
    await _reply(writer, status, reason)


async def _reply(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    text = {
        400: "Bad Request",
        403: "Forbidden",
        408: "Request Timeout",
        429: "Too Many Requests",
        431: "Request Header Fields Too Large",
        502: "Bad Gateway",
    }
    head = f"HTTP/1.1 {status} {text.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(OSError):
        writer.write(head.encode() + body)
        await writer.drain()
    writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _relay(
    client_reader: asyncio.StreamReader,
    client: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides are done (a half-close is passed on)."""
    await asyncio.gather(_pump(client_reader, upstream), _pump(upstream_reader, client))
