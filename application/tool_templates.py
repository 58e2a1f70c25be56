"""Tool templates: pre-validated starting points that an agent fills in instead of writing code.

A template is a tool definition whose strings may hold ``{{placeholder}}`` marks, and the list of its
placeholders (each with a description, an optional default, and a pattern every value must match,
so a value put into code can only be what the pattern allows). Instantiating substitutes the values
and registers the result as a normal tool of the agent: same validation cache, same duplicate
check, same isolation. A template whose code holds no placeholder gives the same code every time,
stored once; an instance is a cache hit when the agent can see another instance of it.

toolrt ships a few (``toolrt templates`` lists them); the runtime's owner adds more with
``rt.add_template(...)``. Agents never add templates: a template is not tied to an owner, and
would otherwise be a way to publish code to everyone.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs

from toolrt.domain import ConflictError, NotFoundError, ValidationError
from toolrt.domain.models import NAME_PATTERN

_MARK = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@attrs.frozen
class Placeholder:
    """A value an instance supplies: ``pattern`` (a regular expression) must match it whole."""

    name: str
    description: str
    pattern: str = r"^[^\n]{1,200}$"
    default: str | None = None


@attrs.frozen
class ToolTemplate:
    """A definition with ``{{placeholder}}`` marks in its strings, and those placeholders."""

    name: str
    description: str
    definition: Mapping[str, Any]
    placeholders: tuple[Placeholder, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValidationError(f"template name {self.name!r} must look like a tool name")
        declared = {p.name for p in self.placeholders}
        used = set(_MARK.findall(json.dumps(self.definition)))
        if used - declared:
            raise ValidationError(f"template {self.name!r} uses undeclared placeholders: {sorted(used - declared)}")
        for placeholder in self.placeholders:
            try:
                re.compile(placeholder.pattern)
            except re.error as exc:
                raise ValidationError(f"placeholder {placeholder.name!r}: bad pattern: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolTemplate:
        """A template from its JSON form (the shape of the shipped files)."""
        try:
            placeholders = tuple(Placeholder(**p) for p in data.get("placeholders", ()))
            return cls(str(data["name"]), str(data["description"]), dict(data["definition"]), placeholders)
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"malformed template: {exc}") from None

    def instantiate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The definition with every placeholder replaced; ValidationError naming what is wrong."""
        unknown = set(values) - {p.name for p in self.placeholders}
        if unknown:
            raise ValidationError(f"template {self.name!r} has no placeholders {sorted(unknown)}")
        chosen: dict[str, str] = {}
        problems: list[str] = []
        for placeholder in self.placeholders:
            value = values.get(placeholder.name, placeholder.default)
            if value is None:
                problems.append(f"{placeholder.name} is required ({placeholder.description})")
                continue
            text = str(value)
            if not re.fullmatch(placeholder.pattern, text):
                problems.append(f"{placeholder.name}={text!r} does not match {placeholder.pattern}")
            chosen[placeholder.name] = text
        if problems:
            raise ValidationError(f"cannot instantiate template {self.name!r}: " + "; ".join(problems))
        return _substitute(dict(self.definition), chosen)  # type: ignore[no-any-return]


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _MARK.sub(lambda m: values[m.group(1)], node)
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {_substitute(key, values): _substitute(item, values) for key, item in node.items()}
    return node


def shipped_templates() -> list[ToolTemplate]:
    """The templates in the ``toolrt.application.templates`` package."""
    folder = resources.files("toolrt.application.templates")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            found.append(ToolTemplate.from_dict(json.loads(entry.read_text(encoding="utf-8"))))
    return found


class TemplateCatalog:
    """The templates of one runtime: the shipped ones plus those its owner added."""

    def __init__(self, templates: list[ToolTemplate] | None = None) -> None:
        self._lock = threading.Lock()
        self._templates = {t.name: t for t in (shipped_templates() if templates is None else templates)}

    def add(self, template: ToolTemplate, *, replace: bool = False) -> None:
        """Add (or with ``replace``, replace) a template."""
        with self._lock:
            if template.name in self._templates and not replace:
                raise ConflictError(f"a template named {template.name!r} exists; pass replace=True to replace it")
            self._templates[template.name] = template

    def get(self, name: str) -> ToolTemplate:
        """The template called ``name``, or NotFoundError."""
        with self._lock:
            if name not in self._templates:
                raise NotFoundError("template", name)
            return self._templates[name]

    def list(self) -> list[ToolTemplate]:
        """Every template, by name."""
        with self._lock:
            return sorted(self._templates.values(), key=lambda t: t.name)
