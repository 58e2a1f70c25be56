"""Language-independent compliance rules: code size and line limits, JSON Schema validity."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from toolrt.adapters.validation.policy import Policy
from toolrt.domain import Finding, Severity


@functools.cache
def _meta() -> Any:
    """The draft 2020-12 meta-schema's validator, built at the first schema checked (not at import)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(Draft202012Validator.META_SCHEMA)


def check_size(code: str, policy: Policy) -> list[Finding]:
    """Findings when the code exceeds the policy's byte or line limits."""
    findings = []
    max_bytes, max_lines = policy.limit("max_code_bytes"), policy.limit("max_lines")
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        findings.append(
            Finding(
                "compliance.size.bytes",
                Severity.ERROR,
                f"the code is {size} bytes, at most {max_bytes} are allowed",
                hint="split the tool or remove embedded data; tools should stay small and focused",
            )
        )
    lines = code.count("\n") + 1
    if lines > max_lines:
        findings.append(
            Finding(
                "compliance.size.lines",
                Severity.ERROR,
                f"the code has {lines} lines, at most {max_lines} are allowed",
                line=max_lines + 1,
                hint="split the tool or remove embedded data; tools should stay small and focused",
            )
        )
    return findings


def check_schema(field: str, schema: Mapping[str, Any] | None) -> list[Finding]:
    """Findings for every place where ``schema`` is not a valid JSON Schema (draft 2020-12)."""
    if schema is None:
        return []
    try:
        canonical = json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [
            Finding(
                "compliance.schema.invalid",
                Severity.ERROR,
                f"{field} is not JSON: {exc}",
                hint="use only JSON values (objects, arrays, strings, finite numbers, booleans, null)",
            )
        ]
    return [
        Finding("compliance.schema.invalid", Severity.ERROR, message, hint=hint)
        for message, hint in _schema_errors(field, canonical)
    ]


@functools.lru_cache(maxsize=512)
def _schema_errors(field: str, canonical: str) -> tuple[tuple[str, str], ...]:
    # Cached by content: agents re-register the same schema with new code far more often than not.
    schema = json.loads(canonical)
    errors = []
    for error in sorted(_meta().iter_errors(schema), key=lambda e: list(map(str, e.absolute_path))):
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        errors.append(
            (
                f"{field} at {path}: {error.message}",
                "fix the schema at this path; see https://json-schema.org/draft/2020-12 for valid keywords",
            )
        )
    return tuple(errors)
