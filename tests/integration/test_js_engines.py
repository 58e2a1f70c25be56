"""JavaScript engines from a user's side: the choice made at registration, shown, honoured and overridden.

Each tool reports where it ran by the stack of an error it makes: QuickJS names evaluated code
``<input>``, Node names the file (a probe no engine rule looks at).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt
from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.domain import ExecutionStatus, Severity, ValidationError

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.node,
    pytest.mark.quickjs,
    pytest.mark.skipif(find_quickjs() is None, reason="quickjs-ng is not installed (pip install 'toolrt[js]')"),
]

WHERE = "(new Error().stack.includes('<input>') ? 'quickjs' : 'node')"


def tool(name: str, code: str, language: str = "javascript") -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} reports where it runs",
        "language": language,
        "code": code,
        "input_schema": {"type": "object"},
    }


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[toolrt.ToolRuntime]:
    runtime = toolrt.connect(
        "local", data_dir=tmp_path_factory.mktemp("engines"), sandbox_workers=1, security_checks=False
    )
    try:
        yield runtime
    finally:
        runtime.close()


def where(rt: toolrt.ToolRuntime, agent: str, tool_id: str) -> Any:
    done = rt.execute_tool(agent, tool_id, {})
    assert done.status is ExecutionStatus.SUCCEEDED, done.error
    return done.output


def test_standard_javascript_is_recorded_and_run_on_quickjs(rt: toolrt.ToolRuntime) -> None:
    """A tool in plain JavaScript is recorded as QuickJS in its status, and runs there for every agent."""
    code = f"function handler() {{ return {{ where: {WHERE}, n: [1, 2, 3].at(-1) }}; }}\n"
    reg = rt.register_tool("alice", tool("plain", code))
    assert rt.get_tool_status(reg.tool_id).js_engine == "quickjs"
    assert not [f for f in reg.report.findings if f.rule_id.startswith("engine.")]
    assert where(rt, "alice", reg.tool_id) == {"where": "quickjs", "n": 3}


@pytest.mark.parametrize(
    ("name", "code", "what"),
    [
        ("fs", "const fs = require('fs');\nfunction handler() { return typeof fs.readFileSync; }\n", "require"),
        ("env", "function handler() {\n  return typeof process.env;\n}\n", "process"),
        ("buf", "function handler() {\n  return Buffer.from('ab').length;\n}\n", "Buffer"),
        ("url", "function handler() {\n  return new URL('http://a.example/x').pathname;\n}\n", "URL"),
        ("locale", "function handler() {\n  return (1234.5).toLocaleString('de-DE');\n}\n", "toLocaleString"),
        ("named", "function handler() {\n  return typeof globalThis['Buf' + 'fer'];\n}\n", "globalThis.Buffer"),
        ("reach", "function handler(p) {\n  return typeof globalThis[String(p.k)];\n}\n", "computed access"),
        ("esm", "import { readFileSync } from 'node:fs';\nexport function handler() { return 1; }\n", "node:fs"),
    ],
)
def test_code_that_needs_node_is_recorded_and_run_on_node(
    rt: toolrt.ToolRuntime, name: str, code: str, what: str
) -> None:
    """Node modules, Node-only globals, locale data and computed global access keep a tool on Node,
    with an informational finding that says what and where."""
    reg = rt.register_tool("alice", tool(f"node-{name}", code))
    assert rt.get_tool_status(reg.tool_id).js_engine == "node"
    notes = [f for f in reg.report.findings if f.rule_id == "engine.node"]
    assert len(notes) == 1 and notes[0].severity is Severity.INFO
    assert what in notes[0].message and notes[0].line >= 1
    done = rt.execute_tool("alice", reg.tool_id, {})
    assert done.status is ExecutionStatus.SUCCEEDED, done.error


def test_typescript_runs_on_quickjs_with_its_own_line_numbers(rt: toolrt.ToolRuntime) -> None:
    """TypeScript is stripped once at registration and runs on QuickJS; a failure names its own lines."""
    code = (
        "interface P { n?: number }\n"
        "export async function handler(p: P): Promise<number> {\n"
        "  const n: number = p.n ?? 0;\n"
        "  if (n > 1) {\n"
        "    throw new RangeError(`too big: ${n}`);\n"
        "  }\n"
        f"  return {WHERE} === 'quickjs' ? n + 1 : -1;\n"
        "}\n"
    )
    reg = rt.register_tool("bob", {**tool("ts", code, "typescript"), "input_schema": {"type": "object"}})
    assert rt.get_tool_status(reg.tool_id).js_engine == "quickjs"
    assert rt.execute_tool("bob", reg.tool_id, {"n": 1}).output == 2
    failed = rt.execute_tool("bob", reg.tool_id, {"n": 5})
    assert failed.status is ExecutionStatus.FAILED and failed.error is not None
    assert failed.error.type == "RangeError" and failed.error.message == "too big: 5"
    assert "tool.js:5" in failed.error.traceback


def test_an_agent_cannot_see_another_agents_call_through_quickjs(rt: toolrt.ToolRuntime) -> None:
    """A hostile agent's QuickJS tool, called right after a victim's, finds none of its globals,
    params or module exports."""
    victim = rt.register_tool(
        "victim",
        tool("keeper", "function handler(p) { globalThis.secret = p.s; module.exports.s = p.s; return 'kept'; }\n"),
    )
    spy = rt.register_tool(
        "mallory",
        tool(
            "spy", "function handler() { return [typeof secret, module.exports.s ?? null, Object.keys(globalThis)]; }\n"
        ),
    )
    assert rt.execute_tool("victim", victim.tool_id, {"s": "victim-secret-1"}).output == "kept"
    found = where(rt, "mallory", spy.tool_id)
    assert "victim-secret-1" not in json.dumps(found)
    assert found[0] == "undefined" and found[1] is None


def test_a_policy_can_require_quickjs_and_refuses_node_code_with_a_finding(tmp_path: Path) -> None:
    """With the policy's javascript.engine set to quickjs, code that needs Node is refused at
    registration, each use named at its line; standard code registers."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"javascript": {"engine": "quickjs"}}))
    with toolrt.connect("local", data_dir=tmp_path / "data", sandbox_workers=1, validation_policy=str(policy)) as rt:
        with pytest.raises(ValidationError) as refused:
            rt.register_tool("alice", tool("buf", "function handler() {\n  return Buffer.from('x').length;\n}\n"))
        findings = [f for f in refused.value.report.findings if f.rule_id == "engine.quickjs.node_api"]
        assert findings and findings[0].severity is Severity.ERROR and findings[0].line == 2
        assert "Buffer" in findings[0].message
        ok = rt.register_tool("alice", tool("ok", "function handler() { return 1; }\n"))
        assert rt.get_tool_status(ok.tool_id).js_engine == "quickjs"


def test_the_runtime_owner_can_run_everything_on_node(tmp_path: Path) -> None:
    """sandbox_js_engine='node' runs a tool recorded as QuickJS on Node (the record stays)."""
    with toolrt.connect("local", data_dir=tmp_path / "data", sandbox_workers=1, sandbox_js_engine="node") as rt:
        reg = rt.register_tool("alice", tool("plain", f"function handler() {{ return {WHERE}; }}\n"))
        assert rt.get_tool_status(reg.tool_id).js_engine == "quickjs"
        assert where(rt, "alice", reg.tool_id) == "node"


def test_forcing_quickjs_in_the_sandbox_fails_node_tools_clearly(tmp_path: Path) -> None:
    """sandbox_js_engine='quickjs' runs standard tools on QuickJS, and a tool recorded as needing
    Node fails with EngineMismatch instead of running where it cannot work."""
    with toolrt.connect(
        "local", data_dir=tmp_path / "data", sandbox_workers=1, sandbox_js_engine="quickjs", security_checks=False
    ) as rt:
        plain = rt.register_tool("alice", tool("plain", f"function handler() {{ return {WHERE}; }}\n"))
        assert where(rt, "alice", plain.tool_id) == "quickjs"
        node = rt.register_tool("alice", tool("buf", "function handler() { return Buffer.from('x').length; }\n"))
        done = rt.execute_tool("alice", node.tool_id, {})
        assert done.status is ExecutionStatus.FAILED and done.error is not None
        assert done.error.type == "EngineMismatch" and "Node" in done.error.message


def test_without_quickjs_everything_runs_on_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where quickjs-ng is not installed, a call recorded for QuickJS runs on Node, with no error,
    and the zygote starts without the engine."""
    from toolrt.adapters.local import sandbox as sandbox_module
    from toolrt.domain import Language
    from toolrt.ports import SandboxRequest

    monkeypatch.setattr(sandbox_module, "find_quickjs", lambda: None)
    with sandbox_module.SubprocessSandbox(workers=1, js_engine="auto") as sb:
        assert sb.js_engines["quickjs"] is None
        code = f"function handler() {{ return {WHERE}; }}\n"
        for engine in ("quickjs", None):
            request = SandboxRequest("q", Language.JAVASCRIPT, code, "handler", {}, 10.0, 256, 65536, engine=engine)
            done = sb.run(request)
            assert done.status is ExecutionStatus.SUCCEEDED, done.error
            assert done.output == "node"
        python = sb.run(
            SandboxRequest("p", Language.PYTHON, "def handler():\n    return 1\n", "handler", {}, 10.0, 256, 65536)
        )
        assert python.output == 1
