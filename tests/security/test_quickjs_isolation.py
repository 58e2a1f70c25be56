"""Hostile JavaScript on QuickJS: it reaches nothing of Python, of the system, or of any other call.

A QuickJS call runs in a child forked from the Python zygote, in a QuickJS runtime made for it. The
tests below are what a hostile agent's tool would try there, checked from outside: the Python host
objects behind the context, the engine's own system modules, other agents' state through globals and
prototypes, and the limits (an endless loop, a memory bomb).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.security.conftest import ISOLATION_MODES, run
from tests.security.test_call_residue import SCAVENGER
from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest, SandboxResult

pytestmark = [
    pytest.mark.quickjs,
    pytest.mark.skipif(find_quickjs() is None, reason="quickjs-ng is not installed (pip install 'toolrt[js]')"),
]

# Every name reachable from globalThis, walking own properties and prototypes (with symbols), as
# "path:typeof" strings; functions are listed with their source text's first 60 characters.
WALKER = r"""
function handler() {
  const seen = new Set();
  const out = [];
  function walk(value, path, depth) {
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return;
    if (seen.has(value) || depth > 6) return;
    seen.add(value);
    if (typeof value === 'function') {
      let text = '';
      try { text = Function.prototype.toString.call(value).slice(0, 60); } catch (e) { text = '!'; }
      out.push(path + ' = ' + text);
    }
    let keys = [];
    try { keys = Reflect.ownKeys(value); } catch (e) { return; }
    for (const key of keys) {
      let child;
      try { child = value[key]; } catch (e) { continue; }
      walk(child, path + '.' + String(key), depth + 1);
    }
    let proto = null;
    try { proto = Object.getPrototypeOf(value); } catch (e) { proto = null; }
    walk(proto, path + '.__proto__', depth + 1);
  }
  walk(globalThis, 'globalThis', 0);
  return { names: Object.getOwnPropertyNames(globalThis).sort(), functions: out };
}
"""

HARNESS_GLOBALS = {"console", "setTimeout", "setInterval", "clearTimeout", "clearInterval", "module", "exports"}


def js(sb: SubprocessSandbox, code: str, params: dict[str, Any] | None = None, **limits: Any) -> SandboxResult:
    fields: dict[str, Any] = {"timeout_s": 10.0, "memory_mb": 128, "max_output_bytes": 64 * 1024}
    fields.update(limits)
    request = SandboxRequest(
        "hostile-js", Language.JAVASCRIPT, code, "handler", params or {}, engine="quickjs", **fields
    )
    return sb.run(request)


@pytest.fixture(scope="module", params=ISOLATION_MODES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    if request.param == "namespaces":
        sb = SubprocessSandbox(isolation="strict", workers=1, js_engine="quickjs")
    else:
        sb = SubprocessSandbox(isolation="auto", workers=1, bwrap=False, js_engine="quickjs")
    try:
        yield sb
    finally:
        sb.close()


def test_the_context_holds_nothing_of_python_beyond_the_harness(sandbox: SubprocessSandbox) -> None:
    """The tool's globals are a pristine QuickJS context's plus the harness's own, and no function
    reachable from globalThis is a host (Python) function: the write function is not reachable."""
    import _quickjs

    pristine = set(_quickjs.Context().eval("Object.getOwnPropertyNames(globalThis).join(',')").split(","))
    result = js(sandbox, WALKER, timeout_s=30.0)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    names = set(result.output["names"])
    assert names - pristine == HARNESS_GLOBALS | {"handler"}  # the tool's own function, and nothing else
    functions = result.output["functions"]
    assert not [f for f in functions if "__toolrt_write" in f or "python" in f.lower()]
    assert "__toolrt_write" not in " ".join(functions)
    # Every function the harness added is JavaScript (its source shows), none a native host binding.
    added = [f for f in functions if f.split(" = ")[0].split(".")[1] in HARNESS_GLOBALS]
    assert added and all("[native code]" not in f for f in added), added


def test_console_passes_only_strings_to_the_host(sandbox: SubprocessSandbox) -> None:
    """Objects with hostile getters, proxies, symbols and BigInts printed by a tool come out as text
    and the call goes on: nothing but a string crosses to the host."""
    code = r"""
function handler() {
  const trap = new Proxy({}, { get() { throw new Error('trap'); }, ownKeys() { throw new Error('keys'); } });
  const getter = { get x() { throw new Error('getter'); } };
  console.log(trap, getter, Symbol('s'), 10n, undefined, null, () => 1);
  console.error('to stderr');
  return 'done';
}
"""
    result = js(sandbox, code)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == "done"
    assert "10n" in result.stdout and "to stderr" in result.stderr


def test_no_system_module_or_loader_is_reachable(sandbox: SubprocessSandbox) -> None:
    """QuickJS's own std and os modules (files, processes) are absent, and so is any module loader:
    a static or dynamic import of them, or of a file such as /proc/self/environ, fails."""
    probe = js(
        sandbox,
        "function handler() { return [typeof std, typeof os, typeof scriptArgs, typeof print, typeof require]; }",
    )
    assert probe.output == ["undefined"] * 5, probe
    dynamic = r"""
async function handler() {
  const out = [];
  for (const name of ['std', 'os', '/proc/self/environ', '/etc/passwd', 'node:fs']) {
    try { await import(name); out.push('loaded ' + name); } catch (e) { out.push('refused'); }
  }
  return out;
}
"""
    result = js(sandbox, dynamic)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == ["refused"] * 5
    static = js(sandbox, "import * as os from 'os';\nexport function handler() { return typeof os.exec; }\n")
    assert static.status is ExecutionStatus.FAILED


def test_state_never_survives_a_call(sandbox: SubprocessSandbox) -> None:
    """A global, a patched builtin prototype and a pending timer set by one call are absent from the
    next call of the same tool and of another agent's tool."""
    mark = "mark-" + secrets.token_hex(8)
    polluter = """
function handler(p) {
  globalThis.leaked = p.mark;
  Object.prototype.polluted = p.mark;
  Array.prototype.map = function () { return [p.mark]; };
  JSON.stringify = function () { return p.mark; };
  setInterval(() => { globalThis.later = p.mark; }, 1);
  module.exports.kept = p.mark;
  return 'set';
}
"""
    reader = """
function handler() {
  return JSON.stringify([typeof leaked, ({}).polluted, [1].map((x) => x + 1), typeof later, module.exports.kept]);
}
"""
    assert js(sandbox, polluter, {"mark": mark}).output == "set"
    for _ in range(2):  # the same tool again, then another agent's tool
        again = js(sandbox, reader)
        assert again.status is ExecutionStatus.SUCCEEDED, again.error
        assert mark not in str(again.output)
        assert again.output == '["undefined",null,[2],"undefined",null]'


def test_an_endless_loop_is_stopped_by_the_timeout_and_the_next_call_runs(sandbox: SubprocessSandbox) -> None:
    """A busy loop comes back timed_out, and the zygote serves the next call."""
    result = js(sandbox, "function handler() { for (;;) {} }", timeout_s=1.0)
    assert result.status is ExecutionStatus.TIMED_OUT
    after = js(sandbox, "function handler(p) { return p.n + 1; }", {"n": 1})
    assert after.output == 2


def test_an_endless_promise_chain_is_stopped_by_the_timeout(sandbox: SubprocessSandbox) -> None:
    """Microtasks that never end (each queues the next) cannot hold the call past its timeout."""
    code = "function handler() { const spin = () => queueMicrotask(spin); spin(); return new Promise(() => {}); }"
    result = js(sandbox, code, timeout_s=1.0)
    assert result.status is ExecutionStatus.TIMED_OUT


@pytest.mark.parametrize(
    "bomb",
    [
        "const a = []; for (;;) a.push(new Array(100000).fill(1.5));",
        "let s = 'x'; for (;;) s = s + s;",
        "const b = []; for (;;) b.push(new ArrayBuffer(1 << 24));",
    ],
)
def test_a_memory_bomb_is_killed_by_the_memory_limit(sandbox: SubprocessSandbox, bomb: str) -> None:
    """Arrays, strings and buffers grown without end stop at memory_mb, reported as the memory limit."""
    result = js(sandbox, f"function handler() {{ {bomb} }}", memory_mb=64, timeout_s=30.0)
    assert result.status in (ExecutionStatus.KILLED, ExecutionStatus.FAILED), result
    if result.status is ExecutionStatus.KILLED:
        assert result.metrics.limit == "memory"
    else:  # the engine refused a single allocation larger than the heap can ever hold
        assert result.error is not None and ("length" in result.error.message or "too long" in result.error.message)
    assert js(sandbox, "function handler() { return 'alive'; }").output == "alive"


def test_errors_point_at_the_tools_own_lines(sandbox: SubprocessSandbox) -> None:
    """A failure's traceback names tool.js and the tool's own line numbers, not the harness's."""
    code = "function helper() {\n  null.boom;\n}\n\nfunction handler() {\n  return helper();\n}\n"
    result = js(sandbox, code)
    assert result.status is ExecutionStatus.FAILED and result.error is not None
    assert result.error.type == "TypeError"
    assert "tool.js:2" in result.error.traceback and "tool.js:6" in result.error.traceback
    assert "__toolrt" not in result.error.traceback


@pytest.mark.bwrap
def test_a_quickjs_call_leaves_nothing_for_the_next_python_call(
    sandbox: SubprocessSandbox, served: Callable[[], list[int]]
) -> None:
    """The victim's params, output and console output, from a QuickJS call, never appear in the
    frames, objects or memory of the next (Python) call."""
    token, note = "tok-" + secrets.token_hex(12), "note-" + secrets.token_hex(12)
    run(sandbox, "def handler():\n    return 1\n")
    victim = js(
        sandbox,
        "function handler(p) { console.log('victim', p.token); globalThis.keep = p.note; return {echo: p.token}; }",
        {"token": token, "note": note},
    )
    assert victim.status is ExecutionStatus.SUCCEEDED and victim.output == {"echo": token}
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in (token, note)]
    found = run(sandbox, SCAVENGER, {"hashes": hashes}, timeout_s=30.0, memory_mb=512)
    assert found.status is ExecutionStatus.SUCCEEDED, found.error
    assert served()[0] == served()[-1], "the Python calls must share a zygote for this test to mean anything"
    assert found.output["found"] == []
