"""Tool definitions from what users hand over: a ToolDefinition, or a plain mapping read from JSON or YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolrt.domain import (
    Finding,
    Language,
    Severity,
    ToolDefinition,
    ValidationError,
    ValidationReport,
    definition_schema,
)
from toolrt.domain.json_schema import written_fields
from toolrt.ports import CodeValidator

# The lock is made by the runtime from the requirements, never taken from what users hand over: a
# "lock" key (a definition read back from `toolrt show` or an MCP update merged into the stored one)
# is dropped, and the runtime resolves the requirements again or reuses the version's own lock.
_DEFINITION_FIELDS = set(written_fields(ToolDefinition))
_REQUIRED_FIELDS = set(definition_schema()["required"])

DefinitionLike = ToolDefinition | Mapping[str, Any]


def to_definition(data: DefinitionLike, validator: CodeValidator | None = None) -> ToolDefinition:
    """A ToolDefinition from a definition or a plain mapping (as read from JSON or YAML).

    A Python tool given without ``input_schema`` gets one inferred from its entrypoint's type hints
    and docstring, when the validator can. Unknown or missing fields raise ValidationError.
    """
    if isinstance(data, ToolDefinition):
        return data
    if not isinstance(data, Mapping):
        raise ValidationError(f"a tool definition must be a mapping, got {type(data).__name__}")
    fields = dict(data)
    fields.pop("lock", None)
    unknown = sorted(set(fields) - _DEFINITION_FIELDS)
    missing = sorted(_REQUIRED_FIELDS - set(fields))
    findings = [
        Finding(
            "definition.unknown_field",
            Severity.ERROR,
            f"unknown field {name!r}",
            hint=f"known fields: {', '.join(sorted(_DEFINITION_FIELDS))}",
        )
        for name in unknown
    ] + [Finding("definition.missing_field", Severity.ERROR, f"missing required field {name!r}") for name in missing]
    if findings:
        raise ValidationError("invalid tool definition", ValidationReport(tuple(findings)))
    if "input_schema" not in fields and validator is not None:
        try:
            language = Language(str(fields["language"]).lower())
        except ValueError:
            language = None
        if language is not None and isinstance(fields["code"], str):
            inferred = validator.infer_input_schema(language, fields["code"], str(fields.get("entrypoint", "handler")))
            if inferred is not None:
                fields["input_schema"] = inferred
    try:
        return ToolDefinition(**fields)
    except TypeError as exc:
        raise ValidationError(f"invalid tool definition: {exc}") from exc
