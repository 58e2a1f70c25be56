"""The validator turns any text into a report: it never raises for Python code."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from toolrt.adapters.validation import build_validator
from toolrt.domain import Language, ToolDefinition, ValidationReport

VALIDATOR = build_validator()
FRAGMENTS = st.sampled_from(
    [
        "def handler(",
        "**p",
        "):",
        "\n    ",
        "return ",
        "import os",
        "__class__",
        ".",
        "getattr(",
        "'{0.__globals__}'.format(",
        "lambda",
        "async ",
        "await ",
        "match x:",
        "case ",
        "(",
        ")",
        "[",
        "]",
        '"',
        "'",
        "#",
        "\\",
        "eval",
        "\x00",
        "\t",
        "é",
        "from . import x",
        "global g",
        "nonlocal n",
    ]
)
CODE = st.one_of(st.text(min_size=1, max_size=300), st.lists(FRAGMENTS, min_size=1, max_size=40).map("".join))


@settings(max_examples=300, deadline=None)
@given(code=CODE, entrypoint=st.sampled_from(["handler", "main", "_x"]))
def test_python_validation_never_raises(code: str, entrypoint: str) -> None:
    """Arbitrary text yields a ValidationReport (findings), never an exception."""
    if not code.strip():
        code = "x"
    tool = ToolDefinition(name="t", description="d", language=Language.PYTHON, code=code, entrypoint=entrypoint)
    report = VALIDATOR.validate(tool)
    assert isinstance(report, ValidationReport)
    assert not any(f.rule_id == "validator.internal" for f in report.findings), report.findings
    VALIDATOR.infer_input_schema(Language.PYTHON, code, entrypoint)
