"""In-memory fakes for the ports that have no memory adapter: a validator, a sandbox, a flaky gateway."""

from __future__ import annotations

import ast
from typing import Any

from toolrt.adapters.events import RecordingEventPublisher
from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryMetrics, InMemoryToolRepository, InProcessGateway
from toolrt.adapters.system import SystemClock, UuidIdGenerator
from toolrt.adapters.wire_formats import ModelApiFormats
from toolrt.application import ExecutionPolicy, RuntimePorts, ToolRuntime
from toolrt.domain import (
    ExecutionMetrics,
    ExecutionStatus,
    Finding,
    IsolationLevel,
    Language,
    Severity,
    StorageError,
    Tool,
    ToolDefinition,
    TransientError,
    ValidationReport,
)
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult
from toolrt.services import build_runtime


class CountingValidator:
    """Checks Python syntax only, and counts how often it is asked."""

    def __init__(self, policy_version: str = "fake-1") -> None:
        self.policy_version = policy_version
        self.calls = 0

    def validate(self, definition: ToolDefinition) -> ValidationReport:
        self.calls += 1
        findings: list[Finding] = []
        if definition.language is Language.PYTHON:
            try:
                ast.parse(definition.code)
            except SyntaxError as exc:
                findings.append(
                    Finding("syntax.python", Severity.ERROR, str(exc.msg), exc.lineno or 0, exc.offset or 0)
                )
        if "forbidden" in definition.code:
            findings.append(Finding("security.fake", Severity.ERROR, "uses the forbidden word", 1, 1))
        return ValidationReport(tuple(findings), self.policy_version)

    def infer_input_schema(self, language: Language, code: str, entrypoint: str) -> dict[str, Any] | None:
        return None

    def runnable_code(self, definition: ToolDefinition) -> str | None:
        return None

    def js_engine(self, definition: ToolDefinition) -> str | None:
        return None


class EchoSandbox:
    """Pretends to run code: returns the params it was given (or fails when asked to)."""

    isolation = IsolationLevel.PROCESS

    def __init__(self) -> None:
        self.requests: list[SandboxRequest] = []

    def supports(self, language: Language) -> bool:
        return True

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        self.requests.append(request)
        if cancel is not None and cancel.wait(float(request.params.get("block_s", 0))):
            return SandboxResult(ExecutionStatus.CANCELLED, metrics=ExecutionMetrics(wall_ms=1.0))
        return SandboxResult(
            ExecutionStatus.SUCCEEDED,
            output=request.params.get("output", {"echo": request.params}),
            stdout="ran\n",
            metrics=ExecutionMetrics(wall_ms=1.0, cpu_ms=0.5, exit_code=0),
        )

    def close(self) -> None:
        pass


class FlakyGateway(InProcessGateway):
    """An in-process gateway whose operations fail on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_on: set[str] = set()

    def register(self, tool: Tool) -> str:
        if "register" in self.fail_on:
            raise TransientError("gateway unavailable (injected)")
        return super().register(tool)

    def update(self, tool: Tool) -> None:
        if "update" in self.fail_on:
            raise StorageError("gateway refused the update (injected)", backend="fake")
        super().update(tool)

    def deregister(self, tool: Tool) -> None:
        if "deregister" in self.fail_on:
            raise TransientError("gateway unavailable (injected)")
        super().deregister(tool)


def memory_runtime(policy: ExecutionPolicy | None = None, **overrides: Any) -> ToolRuntime:
    """A ToolRuntime on memory adapters with the fakes above (each may be overridden)."""
    parts: dict[str, Any] = {
        "repository": InMemoryToolRepository(),
        "artifacts": InMemoryArtifactStore(),
        "validator": CountingValidator(),
        "sandbox": EchoSandbox(),
        "gateway": FlakyGateway(),
        "clock": SystemClock(),
        "ids": UuidIdGenerator(),
        "metrics": InMemoryMetrics(),
        "events": RecordingEventPublisher(),
        "formats": ModelApiFormats(),
    }
    parts.update(overrides)
    return build_runtime(RuntimePorts(**parts), policy=policy, profile="memory")
