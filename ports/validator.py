"""The code validator port."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from toolrt.domain import Language, ToolDefinition, ValidationReport


@runtime_checkable
class CodeValidator(Protocol):
    """Checks a tool's code (syntax, security, compliance) and reports every finding.

    It never raises for bad code: problems are findings. ``policy_version`` identifies the rules in
    force; an artifact validated under another policy version is validated again.
    """

    @property
    def policy_version(self) -> str:
        """Identifies the policy (rules and settings) this validator applies."""

    def validate(self, definition: ToolDefinition) -> ValidationReport:
        """Every finding for ``definition``'s code."""

    def infer_input_schema(self, language: Language, code: str, entrypoint: str) -> dict[str, Any] | None:
        """An input schema derived from the entrypoint's signature (type hints, docstring), or None."""

    def runnable_code(self, definition: ToolDefinition) -> str | None:
        """The code as a sandbox should run it when that differs from the source (TypeScript with
        its types stripped, run as JavaScript), or None. Called after a report without errors."""

    def js_engine(self, definition: ToolDefinition) -> str | None:
        """For JavaScript and TypeScript: ``"quickjs"`` when the code is proved to need nothing of
        Node's (no modules, no Node-only globals, no locale data), else ``"node"``; None for Python
        or when unknown. Called after a report without errors; stored with the artifact."""
