"""The composition root: the services container builds every use case once; the facade builds none."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import attrs

from tests.fakes import memory_runtime
from toolrt.application import RuntimeServices, TemplateCatalog, ToolRuntime
from toolrt.contracts import builders as b
from toolrt.services import ServicesContainer

ROOT = Path(__file__).resolve().parents[2]


def _use_case_classes() -> dict[str, type]:
    """The classes RuntimeServices holds that do something (not values such as the policies)."""
    hints = typing.get_type_hints(RuntimeServices)
    return {
        t.__name__: t
        for t in hints.values()
        if isinstance(t, type) and t.__module__.startswith("toolrt.application") and not attrs.has(t)
    }


def test_the_facade_builds_no_use_case() -> None:
    """ToolRuntime takes its use cases whole and calls no use case's constructor anywhere in its body:
    a new use case is wired in the services container, not in the facade."""
    assert list(inspect.signature(ToolRuntime.__init__).parameters) == ["self", "services"]
    built = set(_use_case_classes()) | {"DuplicateFinder", "NoEnvironments"}
    tree = ast.parse((ROOT / "application" / "runtime.py").read_text())
    facade = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ToolRuntime")
    calls = [
        f"{node.func.id} (line {node.lineno})"
        for node in ast.walk(facade)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in built
    ]
    assert calls == []


def test_use_cases_take_their_ports_by_keyword() -> None:
    """Every use case with more than two collaborators takes them keyword-only, so the container's
    wiring reads as names and a reordered signature cannot swap two ports silently."""
    positional = {
        name: [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
        for name, cls in _use_case_classes().items()
        if len(params := list(inspect.signature(cls).parameters.values())) > 2
    }
    assert {name: names for name, names in positional.items() if names} == {}


def test_every_use_case_is_one_instance_shared_by_those_that_use_it() -> None:
    """The container builds each use case once: the runtime's services are the container's, and a
    provider overridden in the container is what the runtime uses."""
    ports = memory_runtime().ports
    container = ServicesContainer(ports=ports, profile="memory")
    container.check_dependencies()
    templates = TemplateCatalog()
    container.templates.override(templates)
    rt = container.runtime()
    services = container.services()
    assert rt.templates is templates
    assert services.execute is container.execute() and services.register is container.register()
    for field in attrs.fields(RuntimeServices):
        assert getattr(services, field.name) is not None, field.name
    reg = rt.register_tool("agent-a", b.definition())
    assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).ok
