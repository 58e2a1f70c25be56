"""Python tool code compiled once on the host and shipped to the zygote's child as bytecode.

Why: the child compiled the tool's source on every call; for a few hundred lines that costs
milliseconds, where loading the same code object with ``marshal`` costs tens of microseconds.

Why on the host and not in the zygote: a code object kept in the zygote would be inherited by every
child it forks afterwards, another agent's call among them, which could read it (``gc``, its own
memory). Here the zygote never holds it: the bytecode travels in the call's payload, through the
buffer the zygote zeroes after each call, to the one child that runs it. The cache is kept per
calling agent, so how fast a first call is tells no agent what code another agent ran.
"""

from __future__ import annotations

import collections
import importlib.util
import marshal
import threading
from pathlib import Path

from toolrt.adapters.local.sandbox_env import bytecode_magic

__all__ = ["CompiledTools"]


class CompiledTools:
    """Bytecode of Python tool code, by (calling agent, code), least recently used dropped past ``max_bytes``.

    Off (always None) when the sandbox's Python reads another bytecode format than this one.
    """

    def __init__(self, python: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._enabled = bytecode_magic(python) == importlib.util.MAGIC_NUMBER
        self._max_bytes = max_bytes
        self._size = 0
        self._entries: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def bytecode(self, tenant: str, code: str) -> bytes | None:
        """The marshalled code object of ``code`` for ``tenant``'s call; None when it does not compile
        (the child compiles it and reports the error as before) or the cache is off."""
        if not self._enabled:
            return None
        key = (tenant, code)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        try:
            # dont_inherit: none of this module's __future__ flags may change how the tool compiles.
            compiled = marshal.dumps(compile(code, "tool.py", "exec", dont_inherit=True, optimize=0))
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
            return None
        with self._lock:
            if key not in self._entries:
                self._entries[key] = compiled
                self._size += len(compiled) + len(code)
            while self._size > self._max_bytes and self._entries:
                (_, old_code), old = self._entries.popitem(last=False)
                self._size -= len(old) + len(old_code)
        return compiled
