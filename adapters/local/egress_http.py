"""HTTP/1.x request framing for the egress proxy: a request is read strictly, judged, and rebuilt.

Design, and why:

* **A byte gate before the parser.** A server that reads a bare LF (or a bare CR) as the end of a
  line, as many do, sees one more field than a CRLF-only reader: ``HTTP/1.1\\nHost: admin.internal``
  in a request line, or a bare LF inside a field value, becomes a second ``Host``. So before any
  parsing, every line of a head must end with CRLF, and the head may hold no control character but
  HTAB (no NUL, no DEL, no bare CR or LF anywhere). Obsolete line folding (a line starting with a
  space or a tab) is refused too: servers disagree on what it continues.
* **h11 parses what passed the gate** (the parser httpx uses, RFC 9112's grammar): a method token,
  a target of visible ASCII and an ``HTTP/d.d`` version separated by single spaces; field names
  that are tokens, with no whitespace before the colon; at most one ``Host`` and exactly one in
  HTTP/1.1; a ``Content-Length`` of digits, its repetitions equal; ``Transfer-Encoding: chunked``
  and no other coding; then the body, by its length or its chunks, up to its end.
* **Then the proxy's own rules:** the version is exactly HTTP/1.0 or HTTP/1.1; never both
  ``Content-Length`` and ``Transfer-Encoding`` (request smuggling lives in that gap), no
  ``Transfer-Encoding`` in HTTP/1.0 (whose framing it cannot be), no body on a ``CONNECT``; the
  head is at most :data:`HEAD_LIMIT` bytes.
* **Rebuilt, never copied.** What goes upstream is written from the parsed request: the request
  line in origin form, the granted ``Host``, the client's other fields (hop-by-hop and proxy fields
  dropped), the framing the proxy read, ``Connection: close``; then the body's data, re-chunked
  without chunk extensions or trailer fields when it was chunked. Nothing the client sends after
  its request's end is passed on.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import attrs
import h11

from toolrt.domain import HostPort, parse_host_port

__all__ = [
    "HEAD_LIMIT",
    "ProxyRequest",
    "RequestRefused",
    "absolute_target",
    "origin_form_head",
    "read_request",
    "send_body",
]

HEAD_LIMIT = 16 * 1024  # a request head larger than this is refused
_CHUNK = 64 * 1024
_HEAD_END = b"\r\n\r\n"
# What a head may not hold anywhere: a CR not followed by LF, an LF not preceded by CR, or a control
# character other than HTAB (NUL and DEL among them).
_FORBIDDEN = re.compile(rb"\r(?!\n)|(?<!\r)\n|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FOLDED = re.compile(rb"\r\n[ \t]")
# Fields the upstream never gets from the client: the proxy writes Host, the framing and Connection
# itself; the rest are hop-by-hop (RFC 9110 §7.6.1) or meant for the proxy.
_DROPPED = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
    }
)


class RequestRefused(Exception):
    """A request the proxy does not pass on: the status of its answer, and the reason it gives."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@attrs.define
class ProxyRequest:
    """A request head as the proxy parsed it, and the parser that reads its body.

    ``method`` and ``target`` are as sent (``CONNECT`` and an authority, or another method and an
    absolute URI); ``version`` is ``"1.0"`` or ``"1.1"``; ``fields`` are the client's (name as
    written, value without surrounding whitespace), in order; ``length`` is its Content-Length
    (None when it gave none) and ``chunked`` whether its body is chunked. ``rest`` holds the bytes
    read past the head (the start of the body, or of a tunnel's traffic).
    """

    method: str
    target: str
    version: str
    fields: list[tuple[bytes, bytes]]
    length: int | None
    chunked: bool
    rest: bytes
    parser: h11.Connection


async def read_request(reader: asyncio.StreamReader) -> ProxyRequest:
    """Read and parse one request head from ``reader``; :class:`RequestRefused` for a head the proxy
    does not accept (at the first byte that makes it so, where it can tell)."""
    head, rest = await _read_head(reader)
    if _FOLDED.search(head):
        raise RequestRefused(400, "a folded header line (obsolete line folding) is not accepted")
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
    parser.receive_data(head)
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise RequestRefused(400, f"a malformed request: {exc}") from None
    if not isinstance(event, h11.Request):  # the head is complete: h11 has a request or an error
        raise RequestRefused(400, "a malformed request")
    version = event.http_version.decode("ascii")
    if version not in ("1.0", "1.1"):
        raise RequestRefused(400, f"HTTP/{version} is not HTTP/1.0 or HTTP/1.1")
    lengths = [value for name, value in event.headers if name == b"content-length"]
    chunked = any(name == b"transfer-encoding" for name, _ in event.headers)
    method = event.method.decode("ascii")
    if lengths and chunked:
        raise RequestRefused(400, "both Content-Length and Transfer-Encoding: where the body ends is ambiguous")
    if chunked and version == "1.0":
        raise RequestRefused(400, "Transfer-Encoding in an HTTP/1.0 request: HTTP/1.0 has no chunked framing")
    if method == "CONNECT" and (lengths or chunked):
        raise RequestRefused(400, "a CONNECT request has no body: no Content-Length or Transfer-Encoding")
    return ProxyRequest(
        method=method,
        target=event.target.decode("ascii"),
        version=version,
        fields=[(name, value) for name, value in event.headers.raw_items()],
        length=int(lengths[0]) if lengths else None,
        chunked=chunked,
        rest=rest,
        parser=parser,
    )


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The head, through its empty line, and the bytes read after it; refused as soon as a
    forbidden byte arrives, when the head outgrows :data:`HEAD_LIMIT`, or when the connection ends."""
    buffer = bytearray()
    scanned = 0  # bytes of buffer the gate has passed
    while True:
        end = buffer.find(_HEAD_END, max(0, scanned - 3))
        # A CR at the very end may yet be followed by its LF: judged with the next bytes.
        stop = end + len(_HEAD_END) if end >= 0 else len(buffer) - buffer.endswith(b"\r")
        bad = _FORBIDDEN.search(buffer, scanned, stop)
        if bad is not None:
            raise RequestRefused(400, _forbidden(bad.group(), bad.start()))
        if stop > HEAD_LIMIT or (end < 0 and len(buffer) >= HEAD_LIMIT):
            raise RequestRefused(431, f"the request head is larger than {HEAD_LIMIT} bytes")
        if end >= 0:
            return bytes(buffer[:stop]), bytes(buffer[stop:])
        scanned = stop
        data = await reader.read(HEAD_LIMIT)
        if not data:
            raise RequestRefused(400, "the connection closed before the request head ended")
        buffer += data


def _forbidden(found: bytes, at: int) -> str:
    if found == b"\n":
        return f"a bare LF at byte {at} of the request head: every line must end with CRLF"
    if found == b"\r":
        return f"a bare CR at byte {at} of the request head: every line must end with CRLF"
    return f"a control character (0x{found[0]:02x}) at byte {at} of the request head"


def absolute_target(text: str) -> tuple[HostPort, str]:
    """The host and port of an ``http://`` absolute URI, and its path and query (origin form).

    ValueError, saying why, for another scheme, a URI without a host or with credentials, or a bad port.
    """
    if not text.lower().startswith("http://"):
        raise ValueError("only http:// absolute URIs are proxied; use CONNECT for https")
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise ValueError("the URI has no host, or carries credentials")
    host = parts.hostname
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError("the URI's port is not a number from 1 to 65535") from None
    shown = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parse_host_port(f"{shown}:{port}"), path


def origin_form_head(request: ProxyRequest, path: str, target: HostPort) -> bytes:
    """The head to send upstream, written from the parsed ``request``: ``path`` in origin form, the
    ``Host`` of ``target`` (the one that was checked), the client's end-to-end fields (not the
    hop-by-hop ones, nor those its ``Connection`` names), the framing the proxy read, and
    ``Connection: close``."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    authority = host if target.port == 80 else f"{host}:{target.port}"
    lines = [f"{request.method} {path} HTTP/{request.version}".encode("ascii"), f"Host: {authority}".encode("ascii")]
    # Fields the client's Connection header names are hop-by-hop too (RFC 9110 §7.6.1).
    connection = [value for name, value in request.fields if name.lower() == b"connection"]
    dropped = _DROPPED | {token.strip().lower() for value in connection for token in value.split(b",")}
    lines += [name + b": " + value for name, value in request.fields if name.lower() not in dropped]
    if request.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif request.length is not None:
        lines.append(b"Content-Length: %d" % request.length)
    lines += [b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


async def send_body(request: ProxyRequest, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
    """Pass on exactly the request's body, as its framing says, and not one byte after it: the bytes
    its Content-Length counts, or its chunks' data read by h11 and chunked anew.

    :class:`RequestRefused` when the body turns out malformed or the client stops before its end
    (what the upstream got so far is a request cut short, never more).
    """
    if not request.chunked:  # a length: the body is opaque bytes, counted (h11 would only copy them)
        left = request.length or 0
        data = request.rest[:left]
        while True:
            upstream.write(data)
            await upstream.drain()
            left -= len(data)
            if not left:
                return
            data = await reader.read(min(left, _CHUNK))
            if not data:
                raise RequestRefused(400, f"the connection closed {left} bytes before the body's end")
    parser = request.parser
    parser.receive_data(request.rest)
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            raise RequestRefused(400, f"a malformed request body: {exc}") from None
        if event is h11.NEED_DATA:
            parser.receive_data(await reader.read(_CHUNK))  # b"" at the end: h11 then knows it is cut short
        elif isinstance(event, h11.Data):
            if event.data:
                upstream.write(b"%x\r\n%s\r\n" % (len(event.data), event.data))
                await upstream.drain()
        elif isinstance(event, h11.EndOfMessage):
            upstream.write(b"0\r\n\r\n")  # the client's trailer fields are dropped
            await upstream.drain()
            return
        else:
            raise RequestRefused(400, f"a malformed request body: unexpected {type(event).__name__}")
