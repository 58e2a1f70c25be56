"""The host-side egress proxy on its own: what a call's connections may reach, and what they may not."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.egress_servers import CountingServer, counting_server, loopback_resolver
from toolrt.adapters.local.egress_proxy import EgressGate, EgressProxy, call_line
from toolrt.domain import EgressGrant, HostPort


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with counting_server() as s:
        yield s


@pytest.fixture
def proxy() -> Iterator[EgressProxy]:
    p = EgressProxy(loopback_resolver({"api.test": "127.0.0.1", "other.test": "127.0.0.1"}))
    try:
        yield p
    finally:
        p.close()


def grant(*entries: str, private: tuple[str, ...] = ()) -> EgressGrant:
    def parse(entry: str) -> HostPort:
        host, port = entry.rsplit(":", 1)
        return HostPort(host, int(port))

    return EgressGrant(frozenset(map(parse, entries)), frozenset(map(parse, private)))


def ask(gate: EgressGate, head: str, timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """Send ``head`` through the gate's socket; the connection and the first bytes of the answer."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    conn.connect(str(gate.path))
    try:
        conn.sendall(head.encode())
    except BrokenPipeError:
        pass  # refused before the request was read: the answer is already there
    return conn, conn.recv(4096)


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    conn.close()
    return data


def test_plain_http_to_a_granted_private_name_is_relayed(proxy: EgressProxy, server: CountingServer) -> None:
    """An absolute-URI GET to a granted host reaches it, in origin form."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-1", grant(target, private=(target,)))
    conn, first = ask(gate, f"GET http://{target}/data?q=1 HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert (first + read_all(conn)).endswith(b"hello /data?q=1")
    assert server.paths == ["/data?q=1"]


def test_connect_opens_a_tunnel(proxy: EgressProxy, server: CountingServer) -> None:
    """CONNECT to a granted host answers 200 and then carries the bytes both ways."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-1", grant(target, private=(target,)))
    conn, first = ask(gate, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    conn.sendall(f"GET /inside HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode())
    assert read_all(conn).endswith(b"hello /inside")
    assert server.paths == ["/inside"]


@pytest.mark.parametrize(
    ("request_target", "says"),
    [
        ("other.test:{port}", b"not declared"),  # another host name
        ("api.test:1", b"not declared"),  # another port
        ("127.0.0.1:{port}", b"IP literal"),  # the address itself
        ("[::1]:{port}", b"IP literal"),
    ],
)
def test_anything_not_granted_is_refused_before_any_connection(
    proxy: EgressProxy, server: CountingServer, request_target: str, says: bytes
) -> None:
    """Another host, another port or an IP literal is 403 with the reason, and the server sees nothing."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-1", grant(target, private=(target,)))
    wanted = request_target.format(port=server.port)
    for head in (
        f"CONNECT {wanted} HTTP/1.1\r\nHost: {wanted}\r\n\r\n",
        f"GET http://{wanted}/ HTTP/1.1\r\nHost: {wanted}\r\n\r\n",
    ):
        conn, answer = ask(gate, head)
        answer += read_all(conn)
        assert answer.startswith(b"HTTP/1.1 403") and says in answer
    assert server.connections == 0


def test_a_name_resolving_to_loopback_needs_the_owners_exact_private_entry(
    proxy: EgressProxy, server: CountingServer
) -> None:
    """Granted but not named private by the owner: a name resolving to 127.0.0.1 is refused (no rebinding)."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-1", grant(target))
    conn, answer = ask(gate, f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n")
    answer += read_all(conn)
    assert answer.startswith(b"HTTP/1.1 403") and b"non-public address (127.0.0.1)" in answer
    assert server.connections == 0


def test_without_a_call_or_a_grant_nothing_passes(proxy: EgressProxy, server: CountingServer) -> None:
    """A connection while no call runs, or from a call with no grant, is refused."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    conn, answer = ask(gate, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    gate.begin("exec-1", None)
    conn, answer = ask(gate, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert server.connections == 0


def test_malformed_requests_are_refused(proxy: EgressProxy, server: CountingServer) -> None:
    """https:// absolute URIs, credentials in the URI and garbage are 400; nothing is reached."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-1", grant(target, private=(target,)))
    for head in (
        f"GET https://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n",
        f"GET http://user:pw@{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "HELLO\r\n\r\n",
        f"GET /{target} HTTP/1.1\r\nHost: {target}\r\n\r\n",
    ):
        conn, answer = ask(gate, head)
        assert answer.startswith(b"HTTP/1.1 400"), head
    assert server.connections == 0


def test_a_grant_belongs_to_one_gate(proxy: EgressProxy, server: CountingServer) -> None:
    """Another worker's gate, even while this one's call holds a grant, gives nothing."""
    mine, theirs = proxy.open_gate(), proxy.open_gate()
    target = f"api.test:{server.port}"
    mine.begin("exec-victim", grant(target, private=(target,)))
    theirs.begin("exec-hostile", grant(f"other.test:{server.port}"))
    conn, answer = ask(theirs, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert server.connections == 0


def test_ending_a_call_closes_its_connections_and_its_grant(proxy: EgressProxy, server: CountingServer) -> None:
    """An open tunnel dies with its call, and a connection from the next call cannot use the old grant."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-a", grant(target, private=(target,)))
    tunnel, answer = ask(gate, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    pending = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pending.settimeout(5)
    pending.connect(str(gate.path))  # accepted during call a; its request comes later
    time.sleep(0.1)
    gate.end()
    assert tunnel.recv(10) == b""
    gate.begin("exec-b", None)
    try:
        pending.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert not pending.recv(100).startswith(b"HTTP/1.1 200")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert server.connections == 1  # the tunnel's own, made while call a held its grant


def test_every_decision_is_logged_with_the_execution_id(
    proxy: EgressProxy, server: CountingServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Allowed and denied connections each leave a record naming the execution, host, port and reason."""
    caplog.set_level(logging.INFO, logger="toolrt")
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    gate.begin("exec-logged", grant(target, private=(target,)))
    read_all(ask(gate, f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n")[0])
    read_all(ask(gate, "CONNECT other.test:9 HTTP/1.1\r\nHost: other.test:9\r\n\r\n")[0])
    records = [r.toolrt for r in caplog.records if r.name.endswith("egress_proxy")]  # type: ignore[attr-defined]
    allowed = [r for r in records if r.get("port") == server.port]
    denied = [r for r in records if r.get("host") == "other.test"]
    assert allowed and allowed[0]["execution_id"] == "exec-logged" and allowed[0]["address"] == "127.0.0.1"
    assert denied and denied[0]["execution_id"] == "exec-logged" and denied[0]["port"] == 9 and denied[0]["reason"]
    assert any(r.getMessage().startswith("egress denied") for r in caplog.records)


def test_closing_the_proxy_removes_its_sockets() -> None:
    """After close, no socket file is left on the host."""
    p = EgressProxy(loopback_resolver({}))
    gate = p.open_gate()
    folder = Path(gate.path).parent
    assert gate.path.exists()
    p.close()
    assert not folder.exists()


def _ask_as(gate: EgressGate, token: str | None, head: str) -> bytes:
    """Connect, present ``token`` (when given) as the zygote's forwarder does, send ``head``; the whole answer."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(5)
    conn.connect(str(gate.path))
    try:
        conn.sendall((call_line(token) if token is not None else b"") + head.encode())
    except BrokenPipeError:
        pass
    return read_all(conn)


def test_a_connection_left_queued_by_an_earlier_call_cannot_ride_the_next_calls_grant(
    proxy: EgressProxy, server: CountingServer
) -> None:
    """The zygote serves calls one after another through one gate. A connection an earlier call
    queued on the socket (its process already dead), accepted once the next call began, carries
    the earlier call's token: refused, and the server sees nothing. The current call's own
    connections pass; one that presents no token or a forged one is refused."""
    gate = proxy.open_gate()
    target = f"api.test:{server.port}"
    # Call 1 (a hostile agent's) may reach nothing; call 2 (another agent's) may reach the server.
    gate.begin("exec-hostile", None, token="a" * 32)
    # The queued connection: connected and written during call 1, accepted by the proxy later.
    # The proxy's loop is held so that it cannot accept before call 2 begins.
    held = threading.Event()
    proxy._loop.call_soon_threadsafe(held.wait, 10)  # noqa: SLF001 - the race needs the loop stopped
    queued = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    queued.settimeout(5)
    queued.connect(str(gate.path))
    queued.sendall(call_line("a" * 32) + f"GET http://{target}/stolen HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    with gate.lock:  # end() and begin() as the sandbox does them, without waiting on the held loop
        gate.call = None
    gate.begin("exec-victim", grant(target, private=(target,)), token="b" * 32)
    held.set()
    answer = read_all(queued)
    assert answer.startswith(b"HTTP/1.1 403") and b"does not belong to the running call" in answer
    assert server.paths == []
    for token in (None, "c" * 32, "b" * 31):
        answer = _ask_as(gate, token, f"GET http://{target}/forged HTTP/1.1\r\nHost: {target}\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403"), answer
    assert server.paths == []
    answer = _ask_as(gate, "b" * 32, f"GET http://{target}/mine HTTP/1.1\r\nHost: {target}\r\n\r\n")
    assert answer.endswith(b"hello /mine")
    assert server.paths == ["/mine"]
