"""Python validation: the good corpus passes clean, every bad case is flagged with its rule and line."""

from __future__ import annotations

from typing import Any

import pytest

from toolrt.adapters.validation import PolicyCodeValidator, build_validator
from toolrt.domain import Language, Severity, ToolDefinition

from .corpus import BAD_PYTHON, GOOD_PYTHON

SCHEMA = {
    "type": "object",
    "properties": {"values": {"type": "array", "items": {"type": "number"}}},
    "required": ["values"],
}


def python_tool(code: str, schema: dict[str, Any] | None = None, entrypoint: str = "handler") -> ToolDefinition:
    return ToolDefinition(
        name="tool",
        description="a tool",
        language=Language.PYTHON,
        code=code,
        input_schema=schema or SCHEMA,
        entrypoint=entrypoint,
    )


@pytest.fixture(scope="module")
def validator() -> PolicyCodeValidator:
    return build_validator()


@pytest.mark.parametrize("name", sorted(GOOD_PYTHON))
def test_good_python_has_no_findings(validator: PolicyCodeValidator, name: str) -> None:
    """Ordinary tools using the standard library register without a single finding (schema inferred)."""
    code = GOOD_PYTHON[name]
    schema = validator.infer_input_schema(Language.PYTHON, code, "handler")
    assert schema is not None
    report = validator.validate(python_tool(code, schema))
    assert report.findings == (), [str(f) for f in report.findings]
    assert report.policy_version == validator.policy_version


@pytest.mark.parametrize(("name", "code", "rule", "line"), BAD_PYTHON, ids=[c[0] for c in BAD_PYTHON])
def test_bad_python_is_flagged_with_rule_and_line(
    validator: PolicyCodeValidator, name: str, code: str, rule: str, line: int
) -> None:
    """Each dangerous or non-compliant pattern is reported with the rule id and line an agent needs to fix it."""
    report = validator.validate(python_tool(code))
    matching = [f for f in report.findings if f.rule_id == rule]
    assert matching, f"{rule} not in {[str(f) for f in report.findings]}"
    assert any(f.line == line for f in matching), [str(f) for f in matching]
    assert all(f.hint for f in report.findings)
    assert not report.ok or rule == "security.builtin.open"


def test_open_is_a_warning_under_the_default_policy(validator: PolicyCodeValidator) -> None:
    """Filesystem access is reported but does not block registration under the default policy."""
    report = validator.validate(python_tool("def handler(values):\n    return open('x').read()\n"))
    assert [f.severity for f in report.findings] == [Severity.WARNING]
    assert report.ok


def test_column_points_at_the_attribute(validator: PolicyCodeValidator) -> None:
    """The column of an attribute finding is the attribute name's own position, 1-based."""
    report = validator.validate(python_tool("import os as o\ndef handler(values):\n    return o.system('id')\n"))
    (finding,) = report.findings
    assert (finding.line, finding.column) == (3, 14)


def test_syntax_error_reports_position_and_stops(validator: PolicyCodeValidator) -> None:
    """A syntax error is the only finding and names the line and column of the problem."""
    report = validator.validate(python_tool("import subprocess\ndef handler(values:\n    return 1\n"))
    assert [f.rule_id for f in report.findings] == ["syntax.python"]
    assert report.findings[0].line == 2 and report.findings[0].column > 0


def test_security_checks_off_skips_security_but_not_compliance() -> None:
    """With security_checks=False dangerous imports pass, while syntax and compliance still block."""
    lax = build_validator(security_checks=False)
    assert lax.validate(python_tool("import subprocess\ndef handler(values):\n    return 1\n")).findings == ()
    report = lax.validate(python_tool("import subprocess\ndef main(values):\n    return 1\n"))
    assert [f.rule_id for f in report.findings] == ["compliance.entrypoint.missing"]
    assert "nosecurity" in lax.policy_version


def test_kwargs_accepts_any_schema(validator: PolicyCodeValidator) -> None:
    """A **kwargs entrypoint agrees with any schema, so no param_mismatch is reported."""
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
    assert validator.validate(python_tool("def handler(**params):\n    return params\n", schema)).findings == ()


def test_not_required_param_without_default(validator: PolicyCodeValidator) -> None:
    """A parameter without default that the schema does not require is a mismatch (the call would fail)."""
    schema = {"type": "object", "properties": {"values": {}}}
    report = validator.validate(python_tool("def handler(values):\n    return 1\n", schema))
    (finding,) = report.findings
    assert finding.rule_id == "compliance.schema.param_mismatch" and "does not require" in finding.message


def test_lambda_entrypoint_is_accepted(validator: PolicyCodeValidator) -> None:
    """An entrypoint bound to a lambda is a function and is checked like one."""
    assert validator.validate(python_tool("handler = lambda values: len(values)\n")).findings == ()


def test_invalid_schema_points_at_schema_path(validator: PolicyCodeValidator) -> None:
    """An input schema that is not valid JSON Schema is reported with the path of the bad keyword."""
    schema = {"type": "object", "properties": {"values": {"type": "list"}}, "required": ["values"]}
    report = validator.validate(python_tool("def handler(values):\n    return 1\n", schema))
    (finding,) = report.findings
    assert finding.rule_id == "compliance.schema.invalid"
    assert "/properties/values/type" in finding.message


def test_size_limits_from_policy() -> None:
    """Code beyond the policy's line or byte limit is rejected with the limit in the message."""
    small = build_validator({"limits": {"max_lines": 3, "max_code_bytes": 60}})
    report = small.validate(python_tool("def handler(values):\n    x = 1\n    y = 2\n    return x + y + 100000000\n"))
    assert {f.rule_id for f in report.findings} == {"compliance.size.lines", "compliance.size.bytes"}
    assert any("at most 3" in f.message for f in report.findings)


def test_category_can_be_switched_off() -> None:
    """An owner's policy can turn a whole category off or down to a warning."""
    relaxed = build_validator({"categories": {"network": "off", "subprocess": "warning"}})
    report = relaxed.validate(python_tool("import socket\nimport subprocess\ndef handler(values):\n    return 1\n"))
    assert [(f.rule_id, f.severity) for f in report.findings] == [("security.import.subprocess", Severity.WARNING)]


def test_allowed_modules_override_denials() -> None:
    """A module in allowed_modules passes even though the default policy denies it."""
    allowing = build_validator({"python": {"allowed_modules": ["urllib"]}})
    assert allowing.validate(python_tool("import urllib.request\ndef handler(values):\n    return 1\n")).findings == ()


def test_only_allowed_modules_rejects_the_rest() -> None:
    """In allow-list mode a module not listed is reported as unlisted."""
    strict = build_validator({"python": {"allowed_modules": ["json"], "only_allowed_modules": True}})
    report = strict.validate(python_tool("import json\nimport math\ndef handler(values):\n    return 1\n"))
    assert [(f.rule_id, f.line) for f in report.findings] == [("security.import.math", 2)]
    assert "[unlisted]" in report.findings[0].message


def test_compiler_warnings_become_warning_findings(validator: PolicyCodeValidator) -> None:
    """An invalid escape sequence is reported as a warning with its line, and does not block."""
    report = validator.validate(python_tool('def handler(values):\n    return "\\d"\n'))
    (finding,) = report.findings
    assert finding.rule_id == "syntax.python.warning" and finding.line == 2
    assert report.ok
