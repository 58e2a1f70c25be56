"""Run pip or npm with a loopback HTTP proxy that relays every connection to toolrt's egress socket.

Usage: ``python -I -S resolver_forwarder.py SOCKET -- COMMAND...``

Standard library only (it runs before anything else, inside the resolver's sandbox or, without
namespaces, beside it on the host). It listens on a free loopback port, points the child's proxy
variables (``HTTP(S)_PROXY`` and ``PIP_PROXY`` for pip, ``npm_config_(https_)proxy`` for npm) at it, runs COMMAND and
exits with its status. Every connection is relayed, byte for byte, to SOCKET: the host's egress
proxy decides there which host it may reach (the package index hosts only).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

# PIP_PROXY and npm_config_*: these override a proxy named in pip's or npm's configuration files,
# which would otherwise take precedence over HTTP(S)_PROXY and bypass toolrt's proxy.
_PROXY_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "PIP_PROXY",
    "npm_config_proxy",
    "npm_config_https_proxy",
)
_BYPASS_NAMES = ("NO_PROXY", "no_proxy", "npm_config_noproxy", "npm_config_no_proxy", "ALL_PROXY", "all_proxy")


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _relay(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, path), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: resolver_forwarder.py SOCKET -- COMMAND...\n")
        return 2
    path, command = argv[0], argv[2:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    threading.Thread(target=_serve, args=(listener, path), daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in _BYPASS_NAMES}
    env.update(dict.fromkeys(_PROXY_NAMES, url))
    # The most bytes any one file may hold (toolrt's size limit while downloading): the kernel stops
    # a larger write with EFBIG (Python ignores SIGXFSZ), so a huge download never lands whole.
    most = env.pop("TOOLRT_MAX_FILE_BYTES", "")
    if most.isdigit():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (int(most), int(most)))
    try:
        return subprocess.call(command, env=env)
    except OSError as exc:
        sys.stderr.write(f"toolrt: could not start {command[0]}: {exc}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
