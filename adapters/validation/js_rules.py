"""JavaScript/TypeScript rules applied to the facts the Node checker extracts from the real AST."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from toolrt.adapters.validation.policy import Policy
from toolrt.domain import Finding, Severity


def watched_names(policy: Policy) -> tuple[list[str], list[str]]:
    """The global names and member roots the checker must report for ``policy``."""
    section = policy.section("javascript")
    globals_ = sorted({*section.get("denied_globals", {}), "require"})
    roots = sorted(
        {key.split(".")[0] for key in section.get("denied_members", {})} | {"globalThis", "global", "process"}
    )
    return globals_, roots


def syntax_findings(facts: Mapping[str, Any], language: str) -> list[Finding]:
    """The syntax finding in ``facts``, if any."""
    syntax = facts.get("syntax")
    if not syntax:
        return []
    rule = str(syntax.get("rule") or f"syntax.{language}")
    if rule == "syntax.typescript.not_erasable":
        hint = (
            "toolrt runs TypeScript by erasing types only: replace enums with 'as const' objects, "
            "namespaces with modules, and constructor parameter properties with explicit fields"
        )
    elif language == "typescript":
        hint = "fix the syntax at this position; the code must be valid TypeScript with erasable types"
    else:
        hint = "fix the syntax at this position; the code must be valid modern JavaScript"
    return [
        Finding(
            rule,
            Severity.ERROR,
            str(syntax.get("message", "invalid syntax")),
            int(syntax.get("line") or 0),
            int(syntax.get("column") or 0),
            hint,
        )
    ]


def package_of(specifier: str) -> str | None:
    """The npm package a module specifier names (``lodash/fp`` -> ``lodash``, ``@a/b/c`` -> ``@a/b``);
    None for relative, absolute and URL specifiers, which no package provides."""
    if specifier.startswith((".", "/")) or ":" in specifier:
        return None
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") and len(parts) > 1 else parts[0]


def unavailable_findings(facts: Mapping[str, Any], policy: Policy, provided: Collection[str]) -> list[Finding]:
    """An ``imports.unavailable`` finding for each package a tool requires or imports that is neither
    one of Node's own modules nor provided by the tool's requirements (the sandbox has no other).
    A ``require`` inside a ``try`` block is the tool's own fallback and is left alone."""
    severity = policy.severity("unavailable")
    if severity is None:
        return []
    findings: list[Finding] = []
    seen: set[str] = set()
    for item in facts.get("modules", []):
        name = item.get("name")
        if not isinstance(name, str) or item.get("builtin") or item.get("guarded"):
            continue
        package = package_of(name)
        if package is None or package in provided or package in seen:
            continue
        seen.add(package)
        where = (
            "the tool's requirements provide " + ", ".join(sorted(provided))
            if provided
            else "the tool has no requirements"
        )
        findings.append(
            Finding(
                f"imports.unavailable.{package}",
                severity,
                f"package {package!r} is not available: it is not one of Node's modules and {where} [unavailable]",
                int(item.get("line", 0)),
                int(item.get("column", 0)),
                f"add `{package}` to requirements (for example requirements: ['{package}@^1'])",
            )
        )
    return findings


def _module_key(name: str) -> str:
    return name[5:] if name.startswith("node:") else name


def _network_hint(client: bool) -> str:
    if client:
        return (
            "declare the hosts this tool calls in its definition's network.allow "
            '(for example {"allow": ["api.example.com:443"]}), which the runtime\'s owner must permit'
        )
    return (
        "call web APIs with fetch or node:http/https and declare the hosts in the definition's "
        "network.allow: nothing else leaves the sandbox"
    )


def security_findings(facts: Mapping[str, Any], policy: Policy, *, network: bool = False) -> list[Finding]:
    """Findings for denied modules, globals, members and Function constructors in ``facts``;
    ``network``: the definition declares hosts, so the policy's ``network_clients`` may be used."""
    section = policy.section("javascript")
    clients = frozenset(section.get("network_clients", []))
    report = _Report(policy)
    _module_findings(report, facts.get("modules", []), section, clients if network else frozenset(), clients)
    _global_findings(report, facts.get("globals", []), section, clients if network else frozenset(), clients)
    _member_findings(report, facts.get("members", []), section)
    _value_findings(report, facts)
    return report.findings


class _Report:
    """The findings of one check, one per rule and place, at the severity the policy gives each category."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.findings: list[Finding] = []
        # A nested member (process.env.HOME) is also seen as its prefix (process.env) at the same
        # place: one finding per rule and place.
        self._reported: set[tuple[str, int, int]] = set()

    def __call__(self, rule: str, category: str, item: Mapping[str, Any], message: str, hint: str) -> None:
        severity = self.policy.severity(category)
        line, column = int(item.get("line", 0)), int(item.get("column", 0))
        if severity is not None and (rule, line, column) not in self._reported:
            self._reported.add((rule, line, column))
            self.findings.append(Finding(rule, severity, f"{message} [{category}]", line, column, hint))


def _module_findings(
    report: _Report,
    modules: Iterable[Mapping[str, Any]],
    section: Mapping[str, Any],
    permitted_clients: frozenset[str],
    clients: frozenset[str],
) -> None:
    # permitted_clients: the HTTP clients a tool that declares its hosts may use (the egress proxy decides).
    denied: Mapping[str, str] = section.get("denied_modules", {})
    allowed = {_module_key(m) for m in section.get("allowed_modules", [])}
    for item in modules:
        name = item.get("name")
        if name is None:
            report(
                "security.import.dynamic",
                "dynamic_code",
                item,
                f"{item.get('kind')} with a computed module name",
                "require or import modules by a literal name",
            )
            continue
        key = _module_key(str(name))
        top = key.split("/")[0]
        if key in allowed or top in allowed:
            continue
        category = denied.get(key) or denied.get(top)
        if category is None or (category == "network" and top in permitted_clients):
            continue
        report(
            f"security.import.{top}",
            category,
            item,
            f"{item.get('kind')} of module {name!r} is not allowed by the policy",
            _network_hint(top in clients)
            if category == "network"
            else "remove it; tools compute results from their parameters and do not reach the system",
        )


def _global_findings(
    report: _Report,
    names: Iterable[Mapping[str, Any]],
    section: Mapping[str, Any],
    permitted_clients: frozenset[str],
    clients: frozenset[str],
) -> None:
    denied: Mapping[str, str] = section.get("denied_globals", {})
    for item in names:
        name = str(item.get("name"))
        if name == "require":
            if not item.get("called"):
                report(
                    "security.import.dynamic",
                    "dynamic_code",
                    item,
                    "'require' is used as a value, which hides which modules are loaded",
                    "call require('module') directly with a literal name",
                )
            continue
        category = denied.get(name)
        if category is None or (category == "network" and name in permitted_clients):
            continue
        report(
            f"security.global.{name}",
            category,
            item,
            f"use of global {name!r} is not allowed by the policy",
            _network_hint(name in clients)
            if category == "network"
            else f"do not use {name}; write the logic directly in the tool",
        )


def _denied_member(path: str, denied: Mapping[str, str]) -> tuple[str, str | None]:
    """The member path as denied (itself or a prefix: process.binding('fs').open is process.binding) and its category."""
    category = denied.get(path)
    if category is not None:
        return path, category
    parts = path.split(".")
    for end in range(len(parts) - 1, 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in denied:
            return prefix, denied[prefix]
    return path, None


def _member_findings(report: _Report, members: Iterable[Mapping[str, Any]], section: Mapping[str, Any]) -> None:
    denied: Mapping[str, str] = section.get("denied_members", {})
    for item in members:
        path, category = _denied_member(str(item.get("path")), denied)
        if category is not None:
            report(
                f"security.member.{path}",
                category,
                item,
                f"use of {path} is not allowed by the policy",
                f"do not use {path}; tools must not reach the runtime's internals",
            )
        elif path.endswith("[*]") and path.split("[")[0] in ("globalThis", "global", "process", "window", "self"):
            report(
                "security.dynamic_access",
                "reflection",
                item,
                f"computed property access on {path.split('[')[0]} can reach any global, including denied ones",
                "access the property by its literal name",
            )


def _value_findings(report: _Report, facts: Mapping[str, Any]) -> None:
    """Aliased globals, timers given strings, and reaching .constructor: ways to hide what code reaches."""
    for item in facts.get("aliases", []):
        name = str(item.get("name"))
        report(
            f"security.alias.{name}",
            "reflection",
            item,
            f"{name!r} is used as a value (aliased, destructured or passed on), which hides what is reached through it",
            f"write {name}.property with a literal property name where you need it",
        )
    for item in facts.get("stringTimers", []):
        report(
            "security.global.eval",
            "dynamic_code",
            item,
            f"{item.get('name')} with a string runs that string as code, like eval",
            "pass a function instead of a string",
        )
    for item in facts.get("constructors", []):
        report(
            "security.function_constructor",
            "dynamic_code",
            item,
            "reaching .constructor (of a function, or of any value through its chain) builds new code from strings, like eval",
            "do not read .constructor; to check a type use typeof, instanceof or Array.isArray",
        )


def entrypoint_findings(facts: Mapping[str, Any], entrypoint: str) -> list[Finding]:
    """Compliance of the entrypoint: it is defined or exported, and it is a function."""
    kind = facts.get("entrypoint")
    functions = ", ".join(facts.get("functions", [])) or "none"
    forms = (
        f"'function {entrypoint}(params) {{...}}', 'export function {entrypoint}(params)', "
        f"'const {entrypoint} = (params) => ...' or 'module.exports = {{ {entrypoint} }}'"
    )
    if kind == "missing":
        return [
            Finding(
                "compliance.entrypoint.missing",
                Severity.ERROR,
                f"no top-level function or export named {entrypoint!r} (top-level functions: {functions})",
                hint=f"define it as {forms}",
            )
        ]
    if kind == "other":
        return [
            Finding(
                "compliance.entrypoint.not_function",
                Severity.ERROR,
                f"{entrypoint!r} is defined but is not a function",
                hint=f"define it as {forms}",
            )
        ]
    if kind == "unknown":
        return [
            Finding(
                "compliance.entrypoint.unverified",
                Severity.WARNING,
                f"{entrypoint!r} is the result of a call; it could not be checked to be a function",
                hint=f"define it directly as {forms}",
            )
        ]
    return []
