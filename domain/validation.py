"""Validation reports: findings precise enough for an agent to fix its own code."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs


class Severity(str, enum.Enum):
    """How much a finding matters: errors block registration, warnings are stored and returned."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@attrs.frozen
class Finding:
    """One problem found in a tool definition or its code.

    ``rule_id`` names the rule (``syntax.python``, ``security.import``, ``definition.name``, ...);
    ``line`` and ``column`` are 1-based positions in the code (0 when the finding is not about a
    position); ``hint`` says how to fix it.
    """

    rule_id: str
    severity: Severity = attrs.field(converter=Severity)
    message: str
    line: int = 0
    column: int = 0
    hint: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}, col {self.column}: " if self.line else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"[{self.severity.value}] {self.rule_id}: {where}{self.message}{hint}"


def _to_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(findings)


@attrs.frozen
class ValidationReport:
    """All findings for one piece of code under one policy version."""

    findings: tuple[Finding, ...] = attrs.field(default=(), converter=_to_findings)
    policy_version: str = ""

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that block registration."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings that are stored and returned but do not block."""
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    def merge(self, other: ValidationReport) -> ValidationReport:
        """A report with the findings of both; the policy version of ``self`` wins when set."""
        return ValidationReport(
            findings=self.findings + other.findings,
            policy_version=self.policy_version or other.policy_version,
        )

    def summary(self, limit: int = 5) -> str:
        """One line per error (at most ``limit``), for exception messages and CLI output."""
        shown = [str(f) for f in self.errors[:limit]]
        more = len(self.errors) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more")
        return "; ".join(shown)
