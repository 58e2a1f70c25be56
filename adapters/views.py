"""Plain-JSON views of toolrt results: what the CLI's ``--json`` output and the MCP server show.

Both driving adapters show the same data for the same result, so the shapes live here once; how a
terminal shows them (markup, control characters) is the CLI's (``toolrt.adapters.cli.output``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from toolrt.domain import (
    CodeHash,
    Execution,
    Finding,
    Tool,
    ToolRuntimeError,
    ToolVersion,
    ValidationError,
    ValidationReport,
)

if TYPE_CHECKING:  # the use cases load when a command runs them, not with the CLI
    from toolrt.application import (
        Deregistration,
        Registration,
        ToolMetrics,
        ToolStatusReport,
        ToolTemplate,
        ToolUpdate,
        ToolUsage,
    )


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: enums by value, datetimes in ISO 8601, hashes as hex."""
    # Enums first: toolrt's enums are also str, and must print as their value.
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, CodeHash):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    if attrs.has(type(value)):
        return {f.name: jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    return str(value)


def version_view(version: ToolVersion) -> dict[str, Any]:
    """One version: number, hash, when, and its description."""
    return {
        "version": version.number,
        "code_hash": str(version.code_hash),
        "created_at": version.created_at.isoformat(),
        "description": version.definition.description,
        "language": version.definition.language.value,
    }


def tool_view(tool: Tool, *, with_definition: bool = False) -> dict[str, Any]:
    """A tool's record; ``with_definition`` adds the definition in force, as users write it (saved to
    a file, it registers again), and the version history."""
    data: dict[str, Any] = {
        "tool_id": tool.tool_id,
        "name": tool.name,
        "owner": tool.owner,
        "status": tool.status.value,
        "visibility": tool.visibility_label,
        "language": tool.definition.language.value,
        "version": tool.current_version,
        "latest_version": tool.latest_version,
        "code_hash": str(tool.code_hash),
        "description": tool.definition.description,
        "tags": list(tool.definition.tags),
        "created_at": tool.created_at.isoformat(),
        "updated_at": tool.updated_at.isoformat(),
    }
    if with_definition:
        data["definition"] = tool.definition.to_json()
        data["versions"] = [version_view(v) for v in sorted(tool.versions, key=lambda v: v.number)]
    return data


def report_view(report: ValidationReport) -> dict[str, Any]:
    """A validation report's findings."""
    return {"policy_version": report.policy_version, "findings": [jsonable(f) for f in report.findings]}


def template_view(template: ToolTemplate) -> dict[str, Any]:
    """A template: its name, description, placeholders and the definition they fill."""
    return {
        "name": template.name,
        "description": template.description,
        "placeholders": [
            {"name": p.name, "description": p.description, "pattern": p.pattern, "default": p.default}
            for p in template.placeholders
        ],
        "definition": dict(template.definition),
    }


def usage_view(usage: ToolUsage | None) -> dict[str, Any] | None:
    """A tool's recent usage: calls, distinct callers and success rate (None before any call)."""
    if usage is None:
        return None
    rate = usage.success_rate
    return {
        "executions": usage.executions,
        "distinct_callers": usage.distinct_callers,
        "success_rate": None if rate is None else round(rate, 4),
    }


def registration_view(registration: Registration) -> dict[str, Any]:
    """What a registration did."""
    return {
        "tool_id": registration.tool_id,
        "name": registration.tool.name,
        "version": registration.version,
        "code_hash": str(registration.code_hash),
        "cache_hit": registration.cache_hit,
        "report": report_view(registration.report),
        "warnings": list(registration.warnings),
        "reused": registration.reused,
        "similar": [
            {"kind": s.kind.value, "score": s.score, "tool_id": s.tool_id, "name": s.name, "owner": s.owner}
            for s in registration.similar
        ],
    }


def update_view(update: ToolUpdate) -> dict[str, Any]:
    """What an update did."""
    return {
        "tool_id": update.tool.tool_id,
        "name": update.tool.name,
        "version": update.version,
        "new_version": update.new_version,
        "new_code": update.new_code,
        "cache_hit": update.cache_hit,
        "visibility": update.tool.visibility_label,
        "report": report_view(update.report),
    }


def deregistration_view(result: Deregistration) -> dict[str, Any]:
    """What a deregistration did, with any cleanup step that failed."""
    return {
        "tool_id": result.tool_id,
        "purged": result.purged,
        "deleted_artifacts": [str(h) for h in result.deleted_artifacts],
        "problems": list(result.problems),
    }


def execution_view(execution: Execution) -> dict[str, Any]:
    """An execution: status, output, streams, error and metrics."""
    data: dict[str, Any] = jsonable(execution)
    return data


def status_view(report: ToolStatusReport) -> dict[str, Any]:
    """A tool's status report."""
    data: dict[str, Any] = jsonable(report)
    return data


def error_view(exc: BaseException) -> dict[str, Any]:
    """An error as data: its type, message and, for validation errors, every finding."""
    data: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, ValidationError):
        data["findings"] = [jsonable(f) for f in exc.report.findings]
    if isinstance(exc, ToolRuntimeError):
        data["retryable"] = exc.retryable
    return data


def finding_lines(findings: tuple[Finding, ...]) -> list[str]:
    """One line per finding, as an agent or a person reads them."""
    return [str(f) for f in findings]


def metrics_view(metrics: ToolMetrics) -> dict[str, Any]:
    """Per-version metrics of a tool: calls, outcomes, error types, wall time, and the traffic split."""
    return {
        "tool_id": metrics.tool_id,
        "current_version": metrics.current_version,
        "traffic": {str(v): w for v, w in metrics.traffic},
        "traffic_note": metrics.traffic_note,
        "versions": [
            {
                **attrs.asdict(v, recurse=False),
                "errors": dict(v.errors),
                "error_rate": v.error_rate,
            }
            for v in metrics.versions
        ],
    }
