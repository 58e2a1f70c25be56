"""The egress proxy's HTTP framing, attacked from a hostile tool's side and judged from the upstream's.

A plain request reaches its upstream rebuilt from what the proxy parsed: one request, whose only
``Host`` is the name the call was granted. The upstream here (127.0.0.1 only) records every byte it
receives and serves virtual hosts the way the standard library's server reads a head (a line ends
at LF, the first ``Host`` wins), so a second ``Host`` smuggled past the proxy is seen, and served.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import h11
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.egress_servers import VirtualHostServer, loopback_resolver, virtual_host_server
from tests.fakes import memory_runtime
from toolrt.adapters.local import egress_proxy
from toolrt.adapters.local.egress_http import HEAD_LIMIT
from toolrt.adapters.local.egress_proxy import EgressGate, EgressProxy
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.application.policy import ExecutionPolicy
from toolrt.contracts import builders as b
from toolrt.domain import EgressGrant, ExecutionStatus, HostPort

NAMES = {"api.test": "127.0.0.1", "admin.internal": "127.0.0.1"}
LEDGER = b"agent-a ledger: card 4111-1111-1111-1111"
HOSTS = {"api.test": b"public catalogue", "admin.internal": LEDGER}


@pytest.fixture(scope="module")
def upstream() -> Iterator[VirtualHostServer]:
    with virtual_host_server(HOSTS) as server:
        yield server


@pytest.fixture(scope="module")
def proxy() -> Iterator[EgressProxy]:
    p = EgressProxy(loopback_resolver(NAMES))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def gate(proxy: EgressProxy, upstream: VirtualHostServer) -> EgressGate:
    """A worker's gate whose call may reach api.test on the upstream's port (named private by the owner)."""
    g = proxy.open_gate()
    target = HostPort("api.test", upstream.port)
    g.begin("exec-hostile", EgressGrant(frozenset({target}), frozenset({target})))
    return g


def send(gate: EgressGate, data: bytes) -> bytes:
    """Send ``data`` through the gate's socket as the sandbox would, then end the writing side; the
    whole answer (the proxy closes the connection when it is done)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(str(gate.path))
    try:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # refused before everything was read: the answer is there
    answer = b""
    try:
        while chunk := conn.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    conn.close()
    return answer


_REQUEST_LINE = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+ /[!-~]* HTTP/1\.[01]")


def received_request(data: bytes, authority: str) -> tuple[h11.Request, bytes, bool]:
    """Check that ``data``, what an upstream received, is one request whose only Host is ``authority``
    however it is read, and nothing after it; the request, its body and whether the body is complete
    (the proxy stops passing a body whose framing turns out to be broken, and closes)."""
    # Read leniently, as many servers do: a line ends at CR, LF or CRLF; the head at the first empty line.
    lines = re.split(rb"\r\n|\r|\n", data)
    head_lines = lines[: lines.index(b"")] if b"" in lines else lines
    assert head_lines, data
    assert _REQUEST_LINE.fullmatch(head_lines[0]), head_lines[0]
    fields = [line.partition(b":") for line in head_lines[1:]]
    hosts = [value.strip() for name, _, value in fields if name.strip().lower() == b"host"]
    assert hosts == [authority.encode()], data
    # The strict reading agrees: lines end with CRLF only, and no control byte is left in the head.
    head, end, _ = data.partition(b"\r\n\r\n")
    assert end and head.split(b"\r\n") == head_lines, data
    assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", head.replace(b"\r\n", b"")), data
    # Read by a conforming parser (h11): one request, then its body, then nothing at all.
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    request = conn.next_event()
    assert isinstance(request, h11.Request), request
    assert [v for n, v in request.headers if n == b"host"] == [authority.encode()]
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return request, body, False  # cut short where the client's framing broke
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert event.headers == [], event  # no trailer fields: the proxy drops them
            assert conn.trailing_data == (b"", True), conn.trailing_data  # nothing after the request
            return request, body, True
        else:
            raise AssertionError(f"unexpected {event!r} in {data!r}")


def refused(answer: bytes, status: bytes = b"400") -> bytes:
    """The reason line of a refusal with ``status``; fails when ``answer`` is anything else."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), answer
    assert b"Connection: close" in head and body.strip(), answer
    return body


def attempt(gate: EgressGate, upstream: VirtualHostServer, data: bytes) -> tuple[bytes, bytes | None]:
    """Send ``data``; the answer and what the upstream received from it (None: nothing, no connection)."""
    before = len(upstream.wait(0, timeout=0))
    answer = send(gate, data)
    if re.match(rb"HTTP/1\.1 4\d\d ", answer):  # the proxy's refusal (the upstream only answers 200)
        # A refusal is answered before any connection is made: nothing can reach the upstream later.
        assert len(upstream.wait(0, timeout=0)) == before
        return answer, None
    # Reached: answered by the upstream, or cut short by the proxy when the body's framing broke.
    received = upstream.wait(before + 1)
    assert len(received) == before + 1, f"no refusal and no upstream connection: {answer!r}"
    return answer, received[before]


# -- the exploits: a second Host through a bare LF, a bare CR or a control character -----------------

SMUGGLED_HEADS = {
    "bare LF in the version": "GET http://api.test:{port}/version HTTP/1.1\nHost:admin.internal\r\n\r\n",
    "bare LF in a value": "GET http://api.test:{port}/value HTTP/1.1\r\nHost: api.test\r\nX-Note: a\nHost: admin.internal\r\n\r\n",
    "bare CR in a value": "GET http://api.test:{port}/cr HTTP/1.1\r\nHost: api.test\r\nX-Note: a\rHost: admin.internal\r\n\r\n",
    "bare LF ends the head": "GET http://api.test:{port}/lf HTTP/1.1\nHost: admin.internal\n\n",
    "NUL in a value": "GET http://api.test:{port}/nul HTTP/1.1\r\nHost: api.test\r\nX-Note: a\x00\r\n\r\n",
    "vertical tab in a value": "GET http://api.test:{port}/vt HTTP/1.1\r\nHost: api.test\r\nX-Note: a\x0bHost: admin.internal\r\n\r\n",
    "escape in the target": "GET http://api.test:{port}/\x1b[2J HTTP/1.1\r\nHost: api.test\r\n\r\n",
    "DEL in a name": "GET http://api.test:{port}/del HTTP/1.1\r\nHost: api.test\r\nX\x7fNote: a\r\n\r\n",
    "tab in the request line": "GET\thttp://api.test:{port}/tab HTTP/1.1\r\nHost: api.test\r\n\r\n",
}

SMUGGLER = """
import socket

def handler(heads):
    answers = []
    for head in heads:  # straight to the forwarder, as any tool may
        s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
        s.sendall(head.encode("latin-1"))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        answers.append(data.decode("latin-1"))
    return answers
"""

FETCH = """
import urllib.request

def handler(url):
    return urllib.request.urlopen(url, timeout=10).read().decode()
"""


@pytest.mark.bwrap
def test_a_hostile_agent_cannot_smuggle_a_second_host_to_another_agents_virtual_host(
    upstream: VirtualHostServer,
) -> None:
    """Agent A's tool reads A's ledger from the admin.internal virtual host; agent B's tool may reach
    api.test, on the same address. B's raw requests through its forwarder, with a bare LF or CR or a
    control character placed to add ``Host: admin.internal``, are refused with a 400 saying why; the
    upstream never sees a second Host nor serves B from admin.internal, and B never reads A's ledger."""
    port = upstream.port
    sb = SubprocessSandbox(isolation="strict", workers=1, egress_resolver=loopback_resolver(NAMES))
    granted = [f"api.test:{port}", f"admin.internal:{port}"]
    rt = memory_runtime(ExecutionPolicy(network_allow=granted, network_private=granted), sandbox=sb)
    url_schema = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
    heads_schema = {"type": "object", "properties": {"heads": {"type": "array"}}, "required": ["heads"]}
    try:
        ledger = rt.register_tool(
            "agent-a",
            b.definition("ledger", FETCH, input_schema=url_schema, network={"allow": [f"admin.internal:{port}"]}),
        )
        served = upstream.served.count("admin.internal")
        recorded = len(upstream.wait(0, timeout=0))
        mine = rt.execute_tool("agent-a", ledger.tool_id, {"url": f"http://admin.internal:{port}/ledger"})
        assert mine.status is ExecutionStatus.SUCCEEDED and mine.output == LEDGER.decode(), mine.error
        assert upstream.served.count("admin.internal") == served + 1
        before = len(upstream.wait(recorded + 1))  # agent A's connection, once it has ended
        assert before == recorded + 1
        smuggler = rt.register_tool(
            "agent-b",
            b.definition("smuggler", SMUGGLER, input_schema=heads_schema, network={"allow": [f"api.test:{port}"]}),
        )
        heads = [head.format(port=port) for head in SMUGGLED_HEADS.values()]
        res = rt.execute_tool("agent-b", smuggler.tool_id, {"heads": heads})
        assert res.status is ExecutionStatus.SUCCEEDED, res.error
        for name, answer in zip(SMUGGLED_HEADS, res.output, strict=True):
            assert LEDGER.decode() not in answer, name
            assert answer.startswith("HTTP/1.1 400 Bad Request\r\n"), (name, answer)
            assert "Connection: close" in answer and answer.split("\r\n\r\n", 1)[1].strip(), (name, answer)
        received = upstream.wait(0, timeout=0)
        assert received[before:] == [], received[before:]  # nothing of B's reached the upstream
        assert upstream.served.count("admin.internal") == served + 1  # agent A's own read, and only that
    finally:
        rt.close()


@pytest.mark.parametrize("name", list(SMUGGLED_HEADS))
def test_a_head_with_a_bare_line_end_or_a_control_character_reaches_nothing(
    gate: EgressGate, upstream: VirtualHostServer, name: str
) -> None:
    """Each smuggling head is a 400 naming what is wrong, and no connection is made."""
    answer, received = attempt(gate, upstream, SMUGGLED_HEADS[name].format(port=upstream.port).encode("latin-1"))
    assert received is None
    assert re.search(rb"CRLF|control character|malformed", refused(answer)), answer


@pytest.mark.parametrize(
    ("head", "says"),
    [
        ("GET http://api.test:{port}/ HTTP/1.2\r\nHost: api.test\r\n\r\n", b"HTTP/1.0 or HTTP/1.1"),
        ("GET http://api.test:{port}/ HTTP/2.0\r\nHost: api.test\r\n\r\n", b"HTTP/1.0 or HTTP/1.1"),
        ("GET http://api.test:{port}/ HTTP/0.9\r\nHost: api.test\r\n\r\n", b"HTTP/1.0 or HTTP/1.1"),
        ("GET http://api.test:{port}/ HTTP/1.10\r\nHost: api.test\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/ http/1.1\r\nHost: api.test\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/ HTTP/1.1 \r\nHost: api.test\r\n\r\n", b"malformed"),
        ("GET  http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\nHost: api.test\r\n\r\n", b"Host"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\nhost: admin.internal\r\n\r\n", b"Host"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\n\r\n", b"Host"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost : admin.internal\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\nno colon here\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\n Host: admin.internal\r\nHost: api.test\r\n\r\n", b"fold"),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\nX-A: 1\r\n\tHost: admin.internal\r\n\r\n", b"fold"),
        ("\r\nGET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\n\r\n", b"malformed"),
        ("GET http://api.test:{port}/\xe2\x80\xa6 HTTP/1.1\r\nHost: api.test\r\n\r\n", b"malformed"),
        ("POST http://api.test:{port}/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"HTTP/1.0"),
        ("CONNECT api.test:{port} HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4\r\n\r\nbody", b"CONNECT"),
        (
            "CONNECT api.test:{port} HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"CONNECT",
        ),
        ("GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test\r\n", b"before the request head ended"),
    ],
)
def test_a_head_outside_http_1_x_grammar_reaches_nothing(
    gate: EgressGate, upstream: VirtualHostServer, head: str, says: bytes
) -> None:
    """Only HTTP/1.0 and 1.1 as RFC 9112 writes them pass: exact version, single spaces, one Host
    (required in 1.1), no whitespace before a colon, no folding, no chunked body in 1.0, no body on
    a CONNECT, a head that ends. Anything else is a 400 saying what, and no connection is made."""
    answer, received = attempt(gate, upstream, head.format(port=upstream.port).encode("latin-1"))
    assert received is None
    assert says in refused(answer), answer


def test_a_head_larger_than_the_limit_is_refused(gate: EgressGate, upstream: VirtualHostServer) -> None:
    """A head past the limit is a 431, whether its end comes later or never."""
    padding = "X-Pad: " + "a" * HEAD_LIMIT + "\r\n"
    for head in (
        f"GET http://api.test:{upstream.port}/ HTTP/1.1\r\nHost: api.test\r\n{padding}\r\n",
        f"GET http://api.test:{upstream.port}/ HTTP/1.1\r\nHost: api.test\r\n{padding}",
    ):
        answer, received = attempt(gate, upstream, head.encode())
        assert received is None
        assert b"larger than" in refused(answer, b"431")


def test_a_head_that_never_ends_is_answered_408(
    gate: EgressGate, upstream: VirtualHostServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that sends part of a head and then waits is answered 408 once the head's time is up
    (10 s; shortened here), and closed; nothing is reached."""
    monkeypatch.setattr(egress_proxy, "HEAD_TIMEOUT_S", 0.2)
    before = len(upstream.wait(0, timeout=0))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(str(gate.path))
    conn.sendall(f"GET http://api.test:{upstream.port}/slow HTTP/1.1\r\nHost: api".encode())
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
    conn.close()
    assert b"did not arrive within 0.2 s" in refused(answer, b"408")
    assert len(upstream.wait(0, timeout=0)) == before


def test_a_refused_head_is_logged_with_the_call_and_the_reason(
    gate: EgressGate, upstream: VirtualHostServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The refusal is logged as ``egress denied`` with the execution id and the reason the client got."""
    caplog.set_level(logging.INFO, logger="toolrt")
    send(gate, f"GET http://api.test:{upstream.port}/ HTTP/1.1\nHost: admin.internal\r\n\r\n".encode())
    records = [r.toolrt for r in caplog.records if r.name.endswith("egress_proxy")]  # type: ignore[attr-defined]
    assert any(r["execution_id"] == "exec-hostile" and "bare LF" in r["reason"] for r in records), records


def test_what_reaches_the_upstream_is_rebuilt_from_the_parsed_request(
    gate: EgressGate, upstream: VirtualHostServer
) -> None:
    """The upstream sees the request line in origin form, the granted Host, the client's end-to-end
    fields with their whitespace trimmed (not proxy or hop-by-hop ones), the body re-chunked without extensions or trailer fields (whose
    Host could be read as a second one), and nothing the client sent after the request."""
    port = upstream.port
    head = (
        f"POST http://api.test:{port}/rebuilt?q=1 HTTP/1.1\r\nHost: admin.internal\r\nX-Note:   kept   \r\n"
        "Proxy-Authorization: Basic eA==\r\nConnection: X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = '5;ext="a\rHost: admin.internal"\r\nhello\r\n0\r\nHost: admin.internal\r\n\r\n'
    after = "GET /smuggled HTTP/1.1\r\nHost: admin.internal\r\n\r\n"
    answer, received = attempt(gate, upstream, (head + body + after).encode())
    assert answer.endswith(b"public catalogue") and received is not None
    request, sent, complete = received_request(received, f"api.test:{port}")
    assert complete and sent == b"hello" and request.target == b"/rebuilt?q=1"
    assert (
        received
        == (
            f"POST /rebuilt?q=1 HTTP/1.1\r\nHost: api.test:{port}\r\nX-Note: kept\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ).encode()
    )


def test_a_body_with_a_length_passes_exactly(gate: EgressGate, upstream: VirtualHostServer) -> None:
    """A Content-Length body passes byte for byte, control bytes and all, and nothing after it."""
    payload = bytes(range(256)) * 3
    head = f"PUT http://api.test:{upstream.port}/bytes HTTP/1.0\r\nContent-Length: {len(payload)}\r\n\r\n"
    answer, received = attempt(gate, upstream, head.encode() + payload + b"GET /smuggled HTTP/1.1\r\n\r\n")
    assert received is not None
    request, sent, complete = received_request(received, f"api.test:{upstream.port}")
    assert complete and sent == payload and request.http_version == b"1.0"


# -- the property: whatever a head holds, the upstream gets one request with the granted Host, or nothing --

# Pieces a hostile head is made of: line ends of every kind, NUL and other control bytes, C1 and
# UTF-8 bytes, and the fields that would smuggle a second request or a second Host if they got through.
NOISE = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\n\r", b"\r\n\r\n", b"\n\n", b"\x00", b"\t", b" ", b":", b"\x01", b"\x0b",
     b"\x0c", b"\x1b", b"\x1f", b"\x7f", b"\x85", b"\xc3\x85", b"\xff", b"Host: admin.internal",
     b"Host:admin.internal", b"\r\nHost: admin.internal\r\n", b"\nHost: admin.internal", b"Content-Length: 3",
     b"\r\nTransfer-Encoding: chunked\r\n", b"\r\nContent-Length: 0\r\n", b"GET /smuggled HTTP/1.1",
     b"HTTP/1.1", b"HTTP/1.0", b"http://admin.internal/"]
)  # fmt: skip
FIELD = st.sampled_from(
    [b"Host: api.test", b"Host: admin.internal", b"X-Note: a b", b"X-Other: c", b"Content-Length: 5", b"Transfer-Encoding: chunked",
     b"Connection: keep-alive", b"Accept: */*", b"Expect: 100-continue"]
)  # fmt: skip


@st.composite
def hostile_requests(draw: st.DrawFn, port: int) -> bytes:
    """A plain request to the granted host (mostly with its one Host field, so that many pass), with
    noise inserted into one or two of its lines, sometimes anywhere in its head too, and a body."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"get"]))
    version = draw(st.sampled_from([b"1.1", b"1.0"]))
    lines = [b"%s http://api.test:%d/p HTTP/%s" % (method, port, version)]
    lines += [b"Host: api.test"] * draw(st.sampled_from([1, 1, 1, 0]))
    lines += draw(st.lists(FIELD, max_size=3))
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(lines) - 1))
        at = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + draw(NOISE) + lines[i][at:]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(head)))
        head = head[:at] + draw(NOISE) + head[at:]
    body = draw(st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"hello GET /smuggled HTTP/1.1\r\n\r\n"]))
    return head + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_head_either_is_refused_or_reaches_the_upstream_as_one_request_to_the_granted_host(
    gate: EgressGate, upstream: VirtualHostServer, data: st.DataObject
) -> None:
    """Property: for a request head with CR, LF, NUL and other control bytes anywhere, the proxy
    refuses it (a 4xx with a reason, no connection), or the upstream receives exactly one request,
    CRLF-framed, with no control byte in its head and one Host, the granted one, never a second, and
    nothing after it; and the upstream never serves another virtual host."""
    request = data.draw(hostile_requests(upstream.port))
    served = upstream.served.count("admin.internal")
    answer, received = attempt(gate, upstream, request)
    if received is None:
        assert answer[9:12] in (b"400", b"403", b"431"), answer
        refused(answer, answer[9:12])
        event(f"refused {answer[9:12].decode()}")
    else:
        _, _, complete = received_request(received, f"api.test:{upstream.port}")
        event("reached the upstream" if complete else "reached the upstream, body cut short")
        assert LEDGER not in answer
    assert upstream.served.count("admin.internal") == served
