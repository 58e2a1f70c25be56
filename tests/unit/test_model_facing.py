"""What a model is told about tools outside the MCP server: parameter advice and readable errors."""

from __future__ import annotations

import pytest

from tests.fakes import EchoSandbox
from toolrt.application import ToolRuntime
from toolrt.application.schema_advice import UNDESCRIBED
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.domain import Finding, Severity, ValidationError, ValidationReport
from toolrt.settings import Settings


@pytest.fixture
def rt() -> ToolRuntime:
    container = build_container(Settings(profile="memory"))
    container.adapters.sandbox.override(EchoSandbox())
    runtime: ToolRuntime = container.runtime()
    return runtime


def _advice(report: ValidationReport) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == UNDESCRIBED]


def test_registering_parameters_without_descriptions_warns_once_naming_them(rt: ToolRuntime) -> None:
    """One warning names every parameter without a description; the tool is registered all the same."""
    reg = rt.register_tool("alice", b.definition(name="add"))
    (finding,) = _advice(reg.report)
    assert finding.severity is Severity.WARNING and "'a', 'b'" in finding.message
    assert "description" in finding.hint and "Args:" in finding.hint
    assert rt.get_tool_status(reg.tool_id).status.value == "active"


def test_described_parameters_get_no_warning(rt: ToolRuntime) -> None:
    """A schema whose every property has a description gives no advice."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number", "description": "first"}, "b": {"type": "number", "description": "x"}},
        "required": ["a", "b"],
    }
    reg = rt.register_tool("alice", b.definition(name="add", input_schema=schema))
    assert _advice(reg.report) == []


def test_the_advice_is_the_definitions_own_not_the_shared_codes(rt: ToolRuntime) -> None:
    """Two tools with the same code and different schemas each get the advice of their own schema."""
    bare = rt.register_tool("alice", b.definition(name="add", code="def handler(a, b):\n    return a + b\n"))
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number", "description": "first"}, "b": {"type": "number"}},
    }
    same_code = b.definition(name="plus", code="def handler(a, b):\n    return a + b\n", input_schema=schema)
    half = rt.register_tool("alice", same_code, on_duplicate="create")
    assert half.cache_hit
    assert "'a', 'b'" in _advice(bare.report)[0].message
    assert "'b'" in _advice(half.report)[0].message and "'a'" not in _advice(half.report)[0].message


def test_an_update_gets_the_advice_of_its_new_schema(rt: ToolRuntime) -> None:
    """update_tool reports the advice for the definition it puts in force."""
    reg = rt.register_tool("alice", b.definition(name="add"))
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    update = rt.update_tool(
        "alice", reg.tool_id, b.definition(name="add", code="def handler(x):\n    return x\n", input_schema=schema)
    )
    assert "'x'" in _advice(update.report)[0].message


def test_describe_lists_each_finding_once() -> None:
    """A ValidationError's description is its message and then each finding it does not already quote, once."""
    findings = tuple(Finding(f"rule.{i}", Severity.ERROR, f"problem {i}") for i in range(7))
    error = ValidationError("invalid params", ValidationReport(findings))
    text = error.describe()
    for finding in findings:
        assert text.count(str(finding)) == 1, text


def test_dispatch_names_each_broken_argument_once(rt: ToolRuntime) -> None:
    """dispatch's error result lists every finding about the arguments exactly once."""
    rt.register_tool("alice", b.definition(name="add"))
    result = rt.dispatch("alice", {"type": "tool_use", "id": "t", "name": "add", "input": {"a": "one", "b": "two"}})
    content = result["content"]
    assert result["is_error"] is True and content.startswith("error: ")
    for word in ("'one'", "'two'"):
        assert content.count(word) == 1, content
