"""Imports the sandbox cannot satisfy (Python modules, npm packages) are errors at registration, with the line and the requirement to add."""

from __future__ import annotations

import pytest

from toolrt.adapters.validation import PolicyCodeValidator, build_validator
from toolrt.domain import Language, Lock, LockedPackage, Severity, ToolDefinition

SCHEMA = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}


def tool(code: str, requirements: tuple[str, ...] = (), lock: Lock | None = None) -> ToolDefinition:
    return ToolDefinition(
        name="t",
        description="d",
        language=Language.PYTHON,
        code=code,
        input_schema=SCHEMA,
        requirements=requirements,
        lock=lock,
    )


def numpy_lock() -> Lock:
    return Lock("python", [LockedPackage("numpy", "2.1.0", "https://x/numpy.whl", "0" * 64)], "cp311", ["numpy"])


@pytest.fixture(scope="module")
def validator() -> PolicyCodeValidator:
    return build_validator()


def test_an_import_no_requirement_provides_is_an_error_with_line_and_hint(validator: PolicyCodeValidator) -> None:
    """``import numpy`` without requirements fails registration at its line, saying what to add."""
    report = validator.validate(
        tool("import json\n\nimport numpy as np\n\ndef handler(x):\n    return float(np.sum(x))\n")
    )
    assert not report.ok
    [finding] = report.errors
    assert finding.rule_id == "imports.unavailable.numpy"
    assert (finding.line, finding.column) == (3, 1)
    assert "add `numpy` to requirements" in finding.hint
    assert "no requirements" in finding.message


def test_the_hint_names_the_distribution_not_the_module(validator: PolicyCodeValidator) -> None:
    """``from dateutil import parser`` asks for python-dateutil; each missing module is reported once."""
    code = "def handler(x):\n    from dateutil import parser\n    import dateutil.tz\n    import yaml\n    return x\n"
    report = validator.validate(tool(code))
    assert [(f.rule_id, f.line) for f in report.errors] == [
        ("imports.unavailable.dateutil", 2),
        ("imports.unavailable.yaml", 4),
    ]
    assert "add `python-dateutil`" in report.errors[0].hint and "add `PyYAML`" in report.errors[1].hint


def test_modules_the_lock_provides_are_available(validator: PolicyCodeValidator) -> None:
    """With numpy in the lock, ``import numpy`` passes; another package is still missing."""
    ok = validator.validate(tool("import numpy\n\ndef handler(x):\n    return x\n", ("numpy",), numpy_lock()))
    assert ok.ok
    missing = validator.validate(
        tool("import numpy, pandas\n\ndef handler(x):\n    return x\n", ("numpy",), numpy_lock())
    )
    assert [f.rule_id for f in missing.errors] == ["imports.unavailable.pandas"]
    assert "provide numpy" in missing.errors[0].message


def test_standard_library_relative_and_guarded_imports_pass(validator: PolicyCodeValidator) -> None:
    """The standard library, a fallback under ``except ImportError`` and relative imports are left alone."""
    code = (
        "import collections.abc, statistics\n"
        "from __future__ import annotations\n"
        "try:\n"
        "    import orjson as fast\n"
        "except ImportError:\n"
        "    fast = None\n"
        "try:\n"
        "    import ujson\n"
        "except (ValueError, ModuleNotFoundError):\n"
        "    ujson = None\n"
        "\n"
        "def handler(x):\n"
        "    return statistics.mean([x])\n"
    )
    assert validator.validate(tool(code.replace("from __future__ import annotations\n", ""))).ok


def test_an_import_guarded_by_another_exception_is_still_an_error(validator: PolicyCodeValidator) -> None:
    """``except KeyError`` does not catch a failed import: the import is reported."""
    code = "try:\n    import orjson\nexcept KeyError:\n    pass\n\ndef handler(x):\n    return x\n"
    assert [f.rule_id for f in validator.validate(tool(code)).errors] == ["imports.unavailable.orjson"]


def test_the_owner_can_lower_the_rule(validator: PolicyCodeValidator) -> None:
    """Category ``unavailable`` follows the policy (an in-process sandbox sees the host's packages)."""
    lenient = build_validator({"categories": {"unavailable": "warning"}})
    report = lenient.validate(tool("import numpy\n\ndef handler(x):\n    return x\n"))
    assert report.ok and [f.severity for f in report.findings] == [Severity.WARNING]
    assert (
        build_validator({"categories": {"unavailable": "off"}})
        .validate(tool("import numpy\ndef handler(x): return x"))
        .ok
    )
    assert lenient.policy_version != validator.policy_version


def js_tool(code: str, requirements: tuple[str, ...] = (), lock: Lock | None = None) -> ToolDefinition:
    return ToolDefinition(
        name="t",
        description="d",
        language=Language.JAVASCRIPT,
        code=code,
        input_schema={"type": "object"},
        requirements=requirements,
        lock=lock,
    )


@pytest.mark.node
def test_a_javascript_package_no_requirement_provides_is_an_error(validator: PolicyCodeValidator) -> None:
    """require('lodash') without requirements fails at its line; Node's modules, relative paths and a
    require inside try are fine; a scoped package is named whole."""
    code = (
        "const fs = require('node:fs');\n"
        "const path = require('path');\n"
        "const _ = require('lodash/fp');\n"
        "let fast;\n"
        "try { fast = require('fast-json'); } catch (e) { fast = null; }\n"
        "const z = require('@scope/pkg/sub');\n"
        "function handler(p) { return _.identity(p); }\n"
    )
    report = validator.validate(js_tool(code))
    assert [(f.rule_id, f.line) for f in report.errors] == [
        ("imports.unavailable.lodash", 3),
        ("imports.unavailable.@scope/pkg", 6),
    ]
    assert "add `lodash` to requirements" in report.errors[0].hint
    lock = Lock("node", [LockedPackage("lodash", "4.17.21", "", "sha512-x", path="lodash")], "", ["lodash"])
    provided = validator.validate(
        js_tool(code.replace("const z = require('@scope/pkg/sub');\n", ""), ("lodash",), lock)
    )
    assert provided.ok, provided.errors
