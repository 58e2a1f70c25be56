"""Checks of what a caller passes, before any use case acts on it: the agent id and a call's parameters."""

from __future__ import annotations

from typing import Any

from toolrt.domain import Finding, Severity, ValidationError, ValidationReport

__all__ = ["check_agent", "check_params"]

# At most this many ways a call's parameters break the schema are reported.
_MAX_PARAM_FINDINGS = 20


def check_agent(agent_id: str) -> None:
    """Reject an empty or blank agent id."""
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise ValidationError(f"agent_id must be a non-empty string, got {agent_id!r}")


def check_params(tool_name: str, schema: dict[str, Any], params: Any, checker: Any = None) -> None:
    """Raise ValidationError listing every way ``params`` breaks ``schema``."""
    if not isinstance(params, dict):
        finding = Finding("params.type", Severity.ERROR, f"params must be a JSON object, got {type(params).__name__}")
        raise ValidationError(f"invalid params for tool {tool_name!r}", ValidationReport((finding,)))
    if checker is None:
        import jsonschema  # here: loading it costs tens of milliseconds a command may not need

        checker = jsonschema.validators.validator_for(schema)(schema)
    try:
        if checker.is_valid(params):
            return
        errors = sorted(checker.iter_errors(params), key=lambda e: list(e.absolute_path))
    except Exception as exc:  # an unresolvable $ref in a schema stored before refs were checked
        raise ValidationError(
            f"the input_schema of tool {tool_name!r} cannot be applied: {type(exc).__name__}: {exc}"
        ) from exc
    if not errors:
        return
    findings = tuple(
        Finding(
            "params.schema",
            Severity.ERROR,
            f"{'/'.join(str(p) for p in e.absolute_path) or '(params)'}: {e.message}",
            hint=f"schema rule {e.validator!r} at {'/'.join(str(p) for p in e.absolute_schema_path)}",
        )
        for e in errors[:_MAX_PARAM_FINDINGS]
    )
    raise ValidationError(f"invalid params for tool {tool_name!r}", ValidationReport(findings))
