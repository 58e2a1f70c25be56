"""JavaScript on QuickJS inside the Python zygote: finding the engine, and which calls run on it.

Why: a Node worker serves one call and a fresh one costs a Node start, so JavaScript and TypeScript
calls cost several times a Python call. QuickJS (the ``quickjs-ng`` package, in the ``js`` extra) is a
small embeddable engine: loaded once into the idle Python zygote, it runs a call in the zygote's
forked child, in a runtime and context made for that call alone, under the same namespaces,
seccomp filter, cgroup, rlimits and deadline as a Python call.

It is not Node: no ``require``/``import`` of modules, no ``process``, ``Buffer``, ``fetch``, ``Intl``,
``TextEncoder``, ``URL`` and the like. The validator proves at registration which tools use none of
those and records ``engine: quickjs`` for them (see ``toolrt.adapters.validation.js_engine``); the
sandbox's ``js_engine`` setting says what it does with that choice (:data:`JS_ENGINE_CHOICES`).
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import subprocess
import threading
from importlib import resources
from pathlib import Path

from toolrt.adapters.node import find_node
from toolrt.domain import ExecutionError

__all__ = [
    "JS_ENGINE_CHOICES",
    "QUICKJS_INSIDE",
    "TypeScriptStripper",
    "choose_engine",
    "find_quickjs",
    "prelude_source",
]

#: ``auto``: a call runs on the engine its artifact names (QuickJS where the validator proved it
#: safe, Node otherwise; Node when no engine was recorded). ``node``: every call on Node.
#: ``quickjs``: every call on QuickJS, except calls of tools recorded as needing Node, which fail
#: with a clear error rather than run somewhere they cannot work.
JS_ENGINE_CHOICES = ("auto", "node", "quickjs")

#: Where the extension is bound (read-only) inside a bubblewrap sandbox.
QUICKJS_INSIDE = "/opt/toolrt/quickjs/_quickjs.so"


@functools.cache
def find_quickjs() -> Path | None:
    """The ``_quickjs`` extension module file (from ``quickjs-ng``), or None when it is not installed.

    Only a file the sandbox user can reach counts (when toolrt runs as root, sandboxes run as
    nobody). It must load in this interpreter: the zygote runs the same Python version.
    """
    try:
        spec = importlib.util.find_spec("_quickjs")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).resolve()
    if not path.is_file():
        return None  # (as root, the sandbox makes a file under a closed folder reachable: reachable_engine)
    try:
        import _quickjs

        _quickjs.Context().eval("[1].at(-1)")  # an engine new enough to run modern tools (quickjs-ng)
    except Exception:
        return None
    return path


@functools.cache
def prelude_source() -> str:
    """The JavaScript every QuickJS context runs before the tool (console, timers, the driver)."""
    return (
        resources.files("toolrt.adapters.local").joinpath("harness", "quickjs_prelude.js").read_text(encoding="utf-8")
    )


def choose_engine(setting: str, recorded: str | None, quickjs: bool, node: bool) -> str:
    """``"quickjs"``, ``"node"`` or ``"refuse"`` for one call.

    ``setting``: the sandbox's ``js_engine``; ``recorded``: the engine the tool's artifact names
    (None when the request carries none); ``quickjs``/``node``: which engines this machine has.
    """
    if setting == "node" or not quickjs:
        return "node"
    if setting == "quickjs":
        return "refuse" if recorded == "node" else "quickjs"
    if recorded == "quickjs" or (recorded is None and not node):
        return "quickjs"
    return "node"


_STRIP = r"""
const { stripTypeScriptTypes } = require('node:module');
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const code = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  let out;
  try { out = { code: stripTypeScriptTypes(code, { mode: 'strip' }) }; }
  catch (e) { out = { error: `${e.name}: ${e.message}` }; }
  process.stdout.write(JSON.stringify(out));
});
"""


class TypeScriptStripper:
    """TypeScript to JavaScript by erasing types (Node's ``stripTypeScriptTypes``, positions kept).

    Only for a TypeScript call that reaches the sandbox unstripped (the runtime sends the form
    stripped once at registration): it costs a Node start per new code, then is remembered by code.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._cache: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def strip(self, code: str) -> str:
        """The JavaScript; ExecutionError when Node is missing or the code is not erasable TypeScript."""
        with self._lock:
            found = self._cache.get(code)
            if found is not None:
                self._cache.move_to_end(code)
                return found
        node = find_node()
        if node is None:
            raise ExecutionError("TypeScript needs Node.js to strip its types (install toolrt[js])")
        try:
            done = subprocess.run(
                [str(node), "-e", _STRIP],
                input=json.dumps(code).encode(),
                capture_output=True,
                timeout=30,
                env={"PATH": "/usr/bin:/bin"},
            )
            answer = json.loads(done.stdout or b"{}")
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise ExecutionError(f"could not strip the TypeScript types: {exc}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), str):
            detail = answer.get("error") if isinstance(answer, dict) else None
            raise ExecutionError(f"could not strip the TypeScript types: {detail or 'no answer from Node'}")
        with self._lock:
            self._cache[code] = answer["code"]
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return str(answer["code"])
