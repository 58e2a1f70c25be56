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

import ast
import collections
import hashlib
import importlib.util
import marshal
import threading
from pathlib import Path

from toolrt.adapters.local.sandbox_env import bytecode_magic

__all__ = ["CompiledTools", "imported_modules"]

# Imports remembered per (agent, code): the names are small, the parse is what costs.
_IMPORT_ENTRIES = 4096


def imported_modules(code: str) -> tuple[str, ...]:
    """The dotted names of the modules ``code`` may import, anywhere in it (inside functions too):
    ``a.b`` for ``import a.b``; ``a.b`` and ``a.b.c`` for ``from a.b import c`` (``c`` may be a
    submodule or a name in ``a.b``). Relative imports are left out. Empty when it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return ()
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.name] = None
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names[node.module] = None
            for alias in node.names:
                if alias.name != "*":
                    names[f"{node.module}.{alias.name}"] = None
    return tuple(names)


class CompiledTools:
    """Bytecode of Python tool code, by (calling agent, code), least recently used dropped past ``max_bytes``.

    Off (always None) when the sandbox's Python reads another bytecode format than this one.
    """

    def __init__(self, python: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._enabled = bytecode_magic(python) == importlib.util.MAGIC_NUMBER
        self._max_bytes = max_bytes
        self._size = 0
        self._entries: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._imports: collections.OrderedDict[tuple[str, str], tuple[str, ...]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def imports(self, tenant: str, code: str) -> tuple[str, ...]:
        """``imported_modules(code)``, parsed once per (calling agent, code)."""
        # By digest: the key must not keep the code alive (up to _IMPORT_ENTRIES of any size).
        key = (tenant, hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest())
        with self._lock:
            found = self._imports.get(key)
            if found is not None:
                self._imports.move_to_end(key)
                return found
        names = imported_modules(code)
        with self._lock:
            self._imports[key] = names
            while len(self._imports) > _IMPORT_ENTRIES:
                self._imports.popitem(last=False)
        return names

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
