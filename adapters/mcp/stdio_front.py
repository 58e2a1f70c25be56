"""The MCP host's ``initialize``, answered while ``toolrt serve`` (stdio) is still starting.

An MCP host starts the server on every launch and waits for the answer to ``initialize``; loading
the MCP SDK alone takes most of a second (pydantic builds the models of every protocol revision),
before toolrt's own store is opened. The answer itself never changes for one server: it depends on
the SDK's and toolrt's server code, the server's options and the protocol version asked for.
So the SDK's own answer is kept (``$XDG_CACHE_HOME/toolrt/mcp-initialize.json``), and the next
start with the same key sends it (with the request's id) the moment the request arrives, from a
thread, while the main thread loads the SDK and opens the store.

Nothing is decided without the SDK: the request is then handed to the SDK's server as it came (it
commits the session's state as usual), and its own answer is compared with the one sent and
dropped. An answer that differs (which the key should rule out) replaces the cached one and is
logged; a start with no cached answer, or whose first message is not ``initialize``, simply
passes everything through. While serving, fd 0 reads the null device and fd 1 writes to stderr,
as the SDK's own stdio transport arranges, so nothing stray reaches the wire.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import threading
from pathlib import Path
from typing import IO, Any, cast

from toolrt.logs import get_logger

log = get_logger(__name__)

__all__ = ["EarlyInitialize", "default_cache_file", "start_early", "started"]


def default_cache_file() -> Path:
    """``$XDG_CACHE_HOME/toolrt/mcp-initialize.json`` (``~/.cache/toolrt/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "toolrt" / "mcp-initialize.json"


def _stamp(path: str) -> str:
    try:
        return f"{path}:{os.stat(path).st_mtime_ns}"
    except OSError:
        return path


def _code_stamp() -> str:
    # Where the installed SDK and toolrt's server are and when they were written: a new version of
    # either is a new key, found without importing the SDK (importing is what this module saves).
    spec = importlib.util.find_spec("mcp")
    sdk = spec.origin if spec is not None and spec.origin else ""
    # server.py and compat.py (which builds the SDK's server and its capabilities) write the answer.
    here = Path(__file__)
    return f"{_stamp(sdk)}|{_stamp(str(here.with_name('server.py')))}|{_stamp(str(here.with_name('compat.py')))}"


class _Wire:
    """The client's side of stdio: lines in from a descriptor, lines out to another."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.reader = io.open(read_fd, "rb", closefd=True)  # noqa: SIM115 (lives as long as the server)
        self.write_fd = write_fd
        self.lock = threading.Lock()

    def send(self, text: str) -> None:
        data = text.encode("utf-8")
        with self.lock:
            while data:
                data = data[os.write(self.write_fd, data) :]


class _ReplayedInput:
    """What the SDK reads: the first line again (already read by the front), then the wire."""

    def __init__(self, first: bytes, wire: _Wire) -> None:
        self._first: bytes | None = first
        self._wire = wire

    def readline(self, size: int = -1) -> str:
        if self._first is not None:
            line, self._first = self._first, None
            if line:
                return line.decode("utf-8", errors="replace")
        return self._wire.reader.readline().decode("utf-8", errors="replace")

    def __iter__(self) -> _ReplayedInput:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _FilteredOutput:
    """What the SDK writes: everything goes to the wire except its answer to an ``initialize`` the
    front already answered, which is compared with what was sent and cached when new."""

    def __init__(self, front: EarlyInitialize) -> None:
        self._front = front
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            if not self._front.intercept(line):
                self._front.wire.send(line + "\n")
        return len(text)

    def flush(self) -> None:
        pass


class EarlyInitialize:
    """Answers ``initialize`` from the cache while the server starts (see the module docstring).

    ``start()`` takes over fds 0 and 1 and begins listening; ``streams()`` (called once the SDK is
    loaded) gives the text streams to hand the SDK's ``stdio_server(stdin, stdout)``.
    """

    def __init__(self, options: list[str], cache_file: Path | None = None) -> None:
        self.cache_file = cache_file or default_cache_file()
        self._base_key = f"{_code_stamp()}|{json.dumps(options)}"
        self._first = b""
        self._request: dict[str, Any] | None = None
        self._answered: str | None = None  # the answer sent, as the cache holds it (id left out)
        self._key = ""
        self._thread: threading.Thread | None = None
        self.wire: _Wire

    # -- the front -----------------------------------------------------------------------------
    def start(self) -> EarlyInitialize:
        """Move the wire to private descriptors and answer the first message if it can."""
        wire_in, wire_out = os.dup(0), os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)  # stray prints go to stderr, never onto the protocol
        self.wire = _Wire(wire_in, wire_out)
        self._thread = threading.Thread(target=self._answer_first, name="toolrt-mcp-initialize", daemon=True)
        self._thread.start()
        return self

    def _answer_first(self) -> None:
        self._first = self.wire.reader.readline()
        try:
            request = json.loads(self._first)
        except ValueError:
            return
        if not isinstance(request, dict) or request.get("method") != "initialize" or "id" not in request:
            return
        params = request.get("params")
        params = params if isinstance(params, dict) else {}
        self._request = request
        self._key = hashlib.sha256(f"{self._base_key}|{params.get('protocolVersion')}".encode()).hexdigest()
        cached = self._cached()
        if cached is None:
            return
        answer = {"jsonrpc": "2.0", "id": request["id"], "result": cached}
        self.wire.send(json.dumps(answer, separators=(",", ":")) + "\n")
        self._answered = json.dumps(cached, sort_keys=True)

    def _cached(self) -> Any:
        try:
            entries = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entries.get(self._key) if isinstance(entries, dict) else None

    def _store(self, result: Any) -> None:
        try:
            entries = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if not isinstance(entries, dict) or len(entries) > 64:
                entries = {}
        except (OSError, ValueError):
            entries = {}
        entries[self._key] = result
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}")
            partial.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(partial, self.cache_file)
        except OSError as exc:  # a read-only home: every start answers after loading, as before
            log.debug("the MCP initialize answer could not be cached", error=str(exc))

    # -- the SDK's side ------------------------------------------------------------------------
    def streams(self) -> tuple[Any, Any]:
        """The SDK's stdin and stdout (anyio async files), once the first message was read."""
        import anyio

        assert self._thread is not None, "start() first"
        self._thread.join()
        # Each has what anyio's AsyncFile calls (readline and iteration; write and flush).
        reader = cast(IO[str], _ReplayedInput(self._first, self.wire))
        writer = cast(IO[str], _FilteredOutput(self))
        return anyio.wrap_file(reader), anyio.wrap_file(writer)

    def intercept(self, line: str) -> bool:
        """Whether ``line`` (from the SDK) is its answer to the initialize the front handled, which
        then stays off the wire when the front sent it already."""
        if self._request is None:
            return False
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("id") != self._request["id"] or "result" not in message:
            return False
        self._request = None  # one initialize per connection
        result = message["result"]
        if self._answered is None:
            self._store(result)
            return False  # nothing was sent yet: this is the answer
        if json.dumps(result, sort_keys=True) != self._answered:
            log.warning("the cached MCP initialize answer differed from the server's; replaced")
            self._store(result)
        return True


_EARLY: list[EarlyInitialize] = []


def start_early(args: list[str]) -> None:
    """Start the front for ``toolrt serve`` (stdio) with ``args``, its command line, as the key's
    options: called by the console script before anything heavy is imported."""
    if not _EARLY:
        _EARLY.append(EarlyInitialize(list(args)).start())


def started() -> EarlyInitialize | None:
    """The front :func:`start_early` started in this process, if any."""
    return _EARLY[0] if _EARLY else None
