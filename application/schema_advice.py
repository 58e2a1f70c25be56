"""Advice on a definition's parameter schema: what a model will not be told about a tool's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from toolrt.domain import Finding, Severity, ToolDefinition, ValidationReport

__all__ = ["UNDESCRIBED", "schema_advice", "with_schema_advice"]

UNDESCRIBED = "definition.input_schema.undescribed"


def schema_advice(definition: ToolDefinition) -> tuple[Finding, ...]:
    """A warning naming the parameters (top-level properties of ``input_schema``) that have no
    description: frameworks show a model only their names (or "see tool description")."""
    properties = definition.input_schema.get("properties")
    if not isinstance(properties, Mapping):
        return ()
    missing = [name for name, schema in properties.items() if not _described(schema)]
    if not missing:
        return ()
    listed = ", ".join(repr(name) for name in missing)
    noun = "parameter" if len(missing) == 1 else "parameters"
    hint = "add a 'description' to each of these properties of input_schema"
    if definition.language.value == "python":
        hint += " (or document them in an Args: section of the function's docstring)"
    return (
        Finding(
            UNDESCRIBED,
            Severity.WARNING,
            f"{noun} {listed} of {definition.name!r} {'has' if len(missing) == 1 else 'have'} no description: "
            "a model calling the tool sees only the name",
            hint=hint,
        ),
    )


def _described(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    text = schema.get("description")
    return isinstance(text, str) and bool(text.strip())


def with_schema_advice(report: ValidationReport, definition: ToolDefinition) -> ValidationReport:
    """``report`` (the code's, shared by every tool with that code) with this definition's schema advice."""
    advice = schema_advice(definition)
    if not advice:
        return report
    kept = tuple(f for f in report.findings if f.rule_id != UNDESCRIBED)
    return attrs.evolve(report, findings=kept + advice)
