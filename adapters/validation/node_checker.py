"""A long-lived Node.js child that parses JavaScript and TypeScript without running it."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import subprocess
import threading
import weakref
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from toolrt.adapters.node import node_problem, usable_node
from toolrt.logs import get_logger

log = get_logger(__name__)

_SCRIPT = "node_checker.js"
_live: weakref.WeakSet[NodeChecker] = weakref.WeakSet()


class CheckerUnavailable(Exception):
    """Node is missing, or the checker process died or timed out twice in a row."""


class NodeChecker:
    """One Node process speaking line-delimited JSON, shared by every check (thread-safe).

    Starting Node costs tens of milliseconds; a warm checker answers in about one. The process
    starts on the first check, is restarted when it dies or hangs, and is stopped by :meth:`close`
    or at interpreter exit.
    """

    def __init__(self, node: Path | None | Callable[[], Path | None] = usable_node, *, timeout_s: float = 10.0) -> None:
        self._locate = node if callable(node) else (lambda: node)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._ids = itertools.count(1)
        _live.add(self)

    @property
    def available(self) -> bool:
        """True when a Node binary was found."""
        return self._locate() is not None

    @property
    def pid(self) -> int | None:
        """The running checker's process id (None before the first check or after close)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def check(
        self,
        language: str,
        code: str,
        entrypoint: str,
        globals_: Sequence[str],
        roots: Sequence[str],
        properties: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Facts about ``code``: syntax error or imports, watched globals and members, entrypoint kind,
        and accesses to the named ``properties`` on any object.

        Raises :class:`CheckerUnavailable` when Node is missing or fails twice in a row.
        """
        with self._lock:
            request_id = next(self._ids)
            request = {
                "id": request_id,
                "language": language,
                "code": code,
                "entrypoint": entrypoint,
                "globals": list(globals_),
                "roots": list(roots),
                "properties": list(properties),
            }
            line = (json.dumps(request) + "\n").encode()
            for attempt in (1, 2):
                try:
                    return self._exchange(line, request_id)
                except CheckerUnavailable as exc:
                    self._stop()
                    if attempt == 2 or not self.available:
                        raise
                    log.warning("node checker restarted", reason=str(exc))
            raise AssertionError("unreachable")

    def start(self) -> None:
        """Start the checker now rather than on the first check (to keep that check fast)."""
        with self._lock:
            self._ensure_started()

    def close(self) -> None:
        """Stop the checker process; a later check starts a new one."""
        with self._lock:
            self._stop()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        node = self._locate()
        if node is None:
            raise CheckerUnavailable(node_problem() or "Node.js 24 was not found: pip install 'toolrt[js]'")
        script = resources.files(__package__).joinpath(_SCRIPT)
        with resources.as_file(script) as path:
            try:
                self._process = subprocess.Popen(
                    [
                        str(node),
                        "--expose-internals",
                        "--disable-warning=ExperimentalWarning",
                        str(path),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env={**os.environ, "NODE_OPTIONS": ""},
                )
            except OSError as exc:
                raise CheckerUnavailable(f"cannot start Node.js at {node}: {exc}") from exc
        self._buffer = b""
        log.debug("node checker started", pid=self._process.pid, node=str(node))
        return self._process

    def _exchange(self, line: bytes, request_id: int) -> dict[str, Any]:
        process = self._ensure_started()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(line)
            process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise CheckerUnavailable(f"the Node checker exited (code {process.poll()})") from exc
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], self._timeout_s)
            if not ready:
                raise CheckerUnavailable(f"the Node checker did not answer within {self._timeout_s} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise CheckerUnavailable(f"the Node checker exited (code {process.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\n")
        response: dict[str, Any] = json.loads(raw)
        if response.get("id") != request_id:
            raise CheckerUnavailable("the Node checker answered out of turn")
        return response

    def _stop(self) -> None:
        process, self._process = self._process, None
        self._buffer = b""
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass  # closing stdin flushes it, which fails when the child is already gone
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@atexit.register
def _close_all() -> None:
    for checker in list(_live):
        checker.close()
