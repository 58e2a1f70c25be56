"""Runtimes for driving-adapter tests: the product's container, with the fake sandbox and validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes import CountingValidator, EchoSandbox
from toolrt.application import RuntimePorts, ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.services import build_runtime
from toolrt.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class SharedRuntimes:
    """A ``toolrt.connect`` stand-in: every call gives a runtime over the same memory adapters.

    The CLI opens and closes a runtime per command; sharing the ports keeps the tools between
    commands, as the local profile's files would.
    """

    def __init__(self, sandbox: EchoSandbox | None = None) -> None:
        container = build_container(Settings(profile="memory"))
        self.sandbox = sandbox if sandbox is not None else EchoSandbox()
        self.validator = CountingValidator()
        container.adapters.sandbox.override(self.sandbox)
        container.adapters.validator.override(self.validator)
        self.ports: RuntimePorts = container.ports()
        self.calls: list[tuple[str | None, dict[str, Any]]] = []

    def __call__(self, profile: str | None = None, **settings: Any) -> ToolRuntime:
        self.calls.append((profile, settings))
        return build_runtime(self.ports, profile="memory")

    def runtime(self) -> ToolRuntime:
        """A runtime over the shared adapters, for a test to look at what commands did."""
        return build_runtime(self.ports, profile="memory")
