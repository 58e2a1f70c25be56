"""Validation policies as data: the shipped default, JSON files and mappings that override it."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from toolrt.domain import Severity, ToolRuntimeError

# The revision of the rule code; part of every policy version (see Policy.version).
RULES_REVISION = 3

CATEGORIES = (
    "subprocess",
    "network",
    "filesystem",
    "dynamic_code",
    "ffi",
    "reflection",
    "process",
    "unlisted",
    "unavailable",
)
_LEVELS = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}
_OFF = "off"


class PolicyError(ToolRuntimeError):
    """A validation policy cannot be loaded or has a malformed field."""


@attrs.frozen
class Policy:
    """The effective rules: the default policy with the owner's overrides applied.

    ``data`` keeps the JSON shape of ``default_policy.json``; the accessors below read it.
    """

    data: Mapping[str, Any]
    security_checks: bool = True

    @property
    def name(self) -> str:
        """The policy's name (``default`` or the override's ``name``)."""
        return str(self.data.get("name", "custom"))

    @property
    def version(self) -> str:
        """Identifies the effective policy: name, declared version, security switch and a content hash.

        Any change to the effective rules changes the hash, so cached artifacts validated under a
        different (for example looser) policy are validated again. ``RULES_REVISION`` is part of it:
        raise it when the rule code (not the policy data) starts finding more.
        """
        canonical = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{canonical}|{self.security_checks}|{RULES_REVISION}".encode()).hexdigest()[:12]
        switch = "security" if self.security_checks else "nosecurity"
        return f"{self.name}@{self.data.get('version', 0)}+{switch}:{digest}"

    def severity(self, category: str) -> Severity | None:
        """The severity for findings of ``category``, or None when the category is switched off."""
        level = str(self.data.get("categories", {}).get(category, "error"))
        return None if level == _OFF else _LEVELS[level]

    def limit(self, name: str) -> int:
        """A numeric limit from ``limits`` (``max_code_bytes``, ``max_lines``)."""
        return int(self.data["limits"][name])

    def section(self, language: str) -> Mapping[str, Any]:
        """The rules for ``python`` or ``javascript`` (TypeScript shares the JavaScript rules)."""
        key = "javascript" if language == "typescript" else language
        section = self.data.get(key, {})
        return section if isinstance(section, Mapping) else {}


def load_policy(policy: str | Mapping[str, Any] | None = "default", *, security_checks: bool = True) -> Policy:
    """The effective policy for ``policy``: ``"default"``, a path to a JSON file, or a mapping.

    A file or a mapping overrides the default policy: mappings merge key by key, any other value
    (lists included) replaces the default's. Raises :class:`PolicyError` when the result is unusable.
    """
    base = _default_data()
    if policy is None or policy == "default":
        override: Mapping[str, Any] = {}
    elif isinstance(policy, Mapping):
        override = policy
    else:
        path = Path(policy)
        try:
            override = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PolicyError(f"validation policy {policy!r} is neither 'default' nor an existing JSON file") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise PolicyError(f"validation policy file {str(path)!r} cannot be read: {exc}") from exc
        if not isinstance(override, Mapping):
            raise PolicyError(f"validation policy file {str(path)!r} must hold a JSON object")
    if override and "name" not in override:
        override = {**override, "name": "custom"}
    data = _merge(base, override)
    _check(data)
    return Policy(data=data, security_checks=security_checks)


@functools.cache
def _default_text() -> str:
    return resources.files(__package__).joinpath("default_policy.json").read_text(encoding="utf-8")


def _default_data() -> dict[str, Any]:
    data = json.loads(_default_text())
    assert isinstance(data, dict)
    return data


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(copy.deepcopy(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check(data: Mapping[str, Any]) -> None:
    """Reject a policy whose fields would make a rule misbehave later, naming the field."""
    for category, level in dict(data.get("categories", {})).items():
        if level != _OFF and level not in _LEVELS:
            raise PolicyError(f"policy categories.{category} is {level!r}; use one of: error, warning, info, off")
    limits = data.get("limits", {})
    for name in ("max_code_bytes", "max_lines"):
        value = limits.get(name) if isinstance(limits, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PolicyError(f"policy limits.{name} must be a positive integer, got {value!r}")
    known = set(data.get("categories", {}))
    for language in ("python", "javascript"):
        section = data.get(language, {})
        if not isinstance(section, Mapping):
            raise PolicyError(f"policy {language} must be an object")
        for field in ("denied_modules", "denied_builtins", "denied_attributes", "denied_globals", "denied_members"):
            table = section.get(field, {})
            if not isinstance(table, Mapping):
                raise PolicyError(f"policy {language}.{field} must be an object")
            for key, category in table.items():
                categories = category.values() if isinstance(category, Mapping) else [category]
                for item in categories:
                    if item not in known:
                        raise PolicyError(
                            f"policy {language}.{field}.{key} names unknown category {item!r}; "
                            f"known: {', '.join(sorted(known))}"
                        )
        if language == "javascript" and section.get("engine", "auto") not in ("auto", "node", "quickjs"):
            raise PolicyError(f"policy javascript.engine is {section.get('engine')!r}; use one of: auto, node, quickjs")
        for field in ("allowed_modules", "allowed_dunders", "network_clients"):
            value = section.get(field, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"policy {language}.{field} must be a list of strings")
