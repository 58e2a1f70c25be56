"""security.module_as_value: a module used as anything but ``module.attribute`` is found, ordinary use is not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolrt.adapters.validation import PolicyCodeValidator, build_validator
from toolrt.domain import Language, ToolDefinition

SCHEMA = {"type": "object", "properties": {"values": {"type": "array"}}, "required": ["values"]}

# Modules tools use, each with a harmless member, and the import forms that bind them.
MODULES = {
    "json": "dumps",
    "math": "sqrt",
    "re": "escape",
    "datetime": "date",
    "collections": "Counter",
    "statistics": "mean",
    "string": "ascii_letters",
    "textwrap": "dedent",
    "os": "sep",
}
# Places where a value ends up: each wraps the expression ``X``.
SINKS = [
    "[X][0]",
    "(X,)",
    "{'k': X}",
    "f(X)",
    "(m := X)",
    "print(X)",
    "str(X)",
    "X if values else None",
    "lambda: X",
    "[y for y in (X,)]",
    "{X}",
]

VALIDATOR = build_validator()


def _findings(code: str) -> list[str]:
    definition = ToolDefinition(name="t", description="d", language=Language.PYTHON, code=code, input_schema=SCHEMA)
    return [f.rule_id for f in VALIDATOR.validate(definition).findings]


@pytest.fixture(scope="module")
def validator() -> PolicyCodeValidator:
    return VALIDATOR


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(MODULES)), min_size=1, max_size=4, unique=True), st.booleans())
def test_modules_used_through_their_attributes_raise_nothing(names: list[str], aliased: bool) -> None:
    """Any mix of modules imported (plainly or ``as``) and used as ``module.member`` gets no module finding."""
    lines = [f"import {n} as {n}_" if aliased else f"import {n}" for n in names]
    uses = [f"{n}_.{MODULES[n]}" if aliased else f"{n}.{MODULES[n]}" for n in names]
    code = (
        "\n".join(lines)
        + "\ndef f(v):\n    return v\ndef handler(values):\n    return [repr(x) for x in ("
        + ", ".join(uses)
        + ",)]\n"
    )
    assert "security.module_as_value" not in _findings(code)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(MODULES)), st.sampled_from(SINKS), st.booleans())
def test_a_module_in_any_value_position_is_found(name: str, sink: str, aliased: bool) -> None:
    """Whichever expression a module is put into, and however it was imported, the finding is there."""
    bound = f"{name}_" if aliased else name
    header = f"import {name} as {bound}" if aliased else f"import {name}"
    code = f"{header}\ndef f(v):\n    return v\ndef handler(values):\n    return repr({sink.replace('X', bound)})\n"
    assert "security.module_as_value" in _findings(code)


def test_a_parameter_named_like_a_module_is_not_the_module() -> None:
    """A function's own parameter that happens to share a module's name is an ordinary value."""
    code = "import json\ndef handler(values, json=None):\n    return [json]\n"
    assert "security.module_as_value" not in _findings(code)


def test_getattr_on_a_module_is_left_to_the_getattr_rule() -> None:
    """getattr(math, op) is attribute access, judged by the getattr rule rather than as a module value."""
    code = "import math\ndef handler(values, op='sqrt'):\n    return [getattr(math, op)(v) for v in values]\n"
    assert "security.module_as_value" not in _findings(code)


def test_a_namesake_class_is_not_a_module() -> None:
    """from datetime import datetime (a class) and from time import time (a function) are plain values."""
    code = "from datetime import datetime\nfrom time import time\ndef handler(values):\n    return [datetime, time][0].now().isoformat()\n"
    assert "security.module_as_value" not in _findings(code)


def test_the_finding_points_at_the_module_and_says_what_to_do(validator: PolicyCodeValidator) -> None:
    """Line, column and a hint that an agent can act on."""
    code = "import os\ndef handler(values):\n    o = [os][0]\n    return o.getpid()\n"
    definition = ToolDefinition(name="t", description="d", language=Language.PYTHON, code=code, input_schema=SCHEMA)
    finding = next(f for f in validator.validate(definition).findings if f.rule_id == "security.module_as_value")
    assert (finding.line, finding.column) == (3, 10)
    assert "os.name(...)" in finding.hint
