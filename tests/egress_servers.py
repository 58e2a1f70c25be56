"""Loopback HTTP servers for the egress tests: they count every connection and request they see."""

from __future__ import annotations

import http.client
import http.server
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CountingServer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (never any other address) answering ``hello <path>``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True


class _Handler(http.server.BaseHTTPRequestHandler):
    server: CountingServer

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        with self.server.lock:
            self.server.paths.append(self.path)
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def counting_server() -> Iterator[CountingServer]:
    """A running :class:`CountingServer`, shut down afterwards."""
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def loopback_resolver(names: dict[str, str]) -> Any:
    """A resolver for the proxy: each test name to its address (127.0.0.1), any other name fails."""

    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return [names[host]]
        raise socket.gaierror(socket.EAI_NONAME, "unknown test name")

    return resolve


class VirtualHostServer:
    """A TCP server on 127.0.0.1 that records exactly the bytes each connection sends, and answers
    as a lenient upstream would: it reads the head as the standard library's ``http.server`` does
    (lines end at LF, the first ``Host`` wins) and serves the virtual host that header names.

    It answers as soon as the head has arrived, half-closes, and reads on until the proxy closes the
    connection, so that everything sent after the head is recorded too.
    """

    def __init__(self, hosts: dict[str, bytes]) -> None:
        self.hosts = hosts
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[bytes] = []
        self.served: list[str] = []  # the virtual host each connection was answered from
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._take, args=(conn,), daemon=True).start()

    def _take(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        answered = False
        try:
            while chunk := conn.recv(65536):
                data += chunk
                if not answered and re.search(rb"\n\r?\n", data):
                    answered = True
                    conn.sendall(self._answer(data))
                    conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()
        with self.lock:
            self.received.append(data)

    def _answer(self, data: bytes) -> bytes:
        _, _, rest = data.partition(b"\n")
        host = (http.client.parse_headers(io.BytesIO(rest))["Host"] or "").rsplit(":", 1)[0]
        with self.lock:
            self.served.append(host)
        body = self.hosts.get(host, b"no such virtual host")
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)

    def wait(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """What the first ``count`` connections sent, once that many have ended (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        """Stop accepting connections."""
        self.sock.close()


@contextmanager
def virtual_host_server(hosts: dict[str, bytes]) -> Iterator[VirtualHostServer]:
    """A running :class:`VirtualHostServer` serving ``hosts`` (name without port: body), closed afterwards."""
    server = VirtualHostServer(hosts)
    try:
        yield server
    finally:
        server.close()
