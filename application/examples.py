"""Examples that must pass: a version is accepted only after it answers its own examples in the sandbox.

Rules:
- Each example runs as a real call of the new version's code in the sandbox, under the version's own
  limits, for the registering agent; nothing is stored before they all pass.
- An example expecting ``output`` passes when the call succeeds and returns it (compared as JSON:
  ``1`` and ``1.0`` are equal, key order does not matter); one expecting ``error`` passes when the
  call fails with an error of that type.
- A failing example refuses the version with one finding per failing example: what was expected,
  what came back, and an excerpt of stdout/stderr.
- The same code with the same examples and limits is run once per runtime, and a later registration
  of it skips them only when a tool the registering agent may discover has a version with exactly
  that code, those examples and those limits (as an artifact cache hit is granted): whether some
  other agent's private tool passed them never changes what happens, or how long it takes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import attrs

from toolrt.application._artifacts import visible_users
from toolrt.application.checks import check_params
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.requirements import Requirements
from toolrt.domain import (
    ExecutionStatus,
    Finding,
    Severity,
    ToolDefinition,
    ToolExample,
    ValidationError,
    ValidationReport,
)
from toolrt.ports import CodeReferences, IdGenerator, Sandbox, SandboxRequest, SandboxResult, Teams, ToolRecords

EXCERPT_CHARS = 300
#: How many of the visible tools using the code are looked at for a version with the same examples.
SEEN_USERS = 20


@attrs.frozen
class ExampleResult:
    """How one example went: ``passed``, and what came back when it did not."""

    index: int
    example: ToolExample
    passed: bool
    status: str
    output: Any = None
    error_type: str | None = None
    message: str = ""
    stdout: str = ""
    stderr: str = ""

    def describe(self) -> str:
        """One line: what was expected and what came back."""
        expected = f"error {self.example.error}" if self.example.error else f"output {_show(self.example.output)}"
        if self.status == ExecutionStatus.SUCCEEDED.value:
            got = f"output {_show(self.output)}"
        else:
            got = f"{self.status}" + (f" with {self.error_type}: {self.message}" if self.error_type else "")
        excerpt = "; ".join(
            f"{name}: {text[:EXCERPT_CHARS]!r}"
            for name, text in (("stdout", self.stdout), ("stderr", self.stderr))
            if text
        )
        return f"example {self.index}: expected {expected}, got {got}" + (f" ({excerpt})" if excerpt else "")


class ExampleRunner:
    """Runs a definition's examples in the sandbox (see the module's rules)."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        policy: ExecutionPolicy,
        ids: IdGenerator,
        requirements: Requirements | None = None,
        tools: ToolRecords | None = None,
        references: CodeReferences | None = None,
        teams: Teams | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._policy = policy
        self._requirements = requirements
        self._ids = ids
        # Where the tools an agent may discover are found (see _seen_by); without them, every
        # registration runs its examples.
        self._stores = None if tools is None or references is None or teams is None else (tools, references, teams)
        self._passed: set[str] = set()
        self._lock = threading.Lock()

    def check(self, definition: ToolDefinition, agent_id: str) -> None:
        """Raise ValidationError with a finding per failing example; return when all pass (or none)."""
        if not definition.examples:
            return
        key = _key(definition)
        # Looked up first and always, so that the work done never depends on what others ran.
        seen = self._seen_by(definition, key, agent_id)
        with self._lock:
            if seen and key in self._passed:
                return
        failed = [r for r in self.run(definition, agent_id) if not r.passed]
        if failed:
            findings = tuple(
                Finding(
                    "examples.failed",
                    Severity.ERROR,
                    r.describe(),
                    hint="fix the code, or the example if it was wrong",
                )
                for r in failed
            )
            raise ValidationError(
                f"tool {definition.name!r} does not pass {len(failed)} of its {len(definition.examples)} examples",
                ValidationReport(findings),
            )
        with self._lock:
            if len(self._passed) > 10_000:
                self._passed.clear()
            self._passed.add(key)

    def _seen_by(self, definition: ToolDefinition, key: str, agent_id: str) -> bool:
        """Whether a tool ``agent_id`` may discover has a version with ``definition``'s example key."""
        if self._stores is None:
            return False
        tools, references, teams = self._stores
        users = visible_users(
            definition.code_hash, agent_id, tools=tools, references=references, teams=teams, limit=SEEN_USERS
        )
        for tool in users:
            if any(v.code_hash == definition.code_hash and _key(v.definition) == key for v in tool.versions):
                return True
        return False

    def run(
        self, definition: ToolDefinition, agent_id: str, *, tool: str = "", owner: str | None = None
    ) -> list[ExampleResult]:
        """Every example's result, in order, run for ``agent_id``. ``tool`` and ``owner``: the stored
        tool whose examples they are and whose code it is (default: a definition of ``agent_id``'s own
        being registered), so that a sandbox keeping sessions apart by them never runs one owner's
        code where another's ran."""
        owner = agent_id if owner is None else owner
        return [self._run_one(definition, agent_id, i, ex, tool, owner) for i, ex in enumerate(definition.examples, 1)]

    def _run_one(
        self, definition: ToolDefinition, agent_id: str, index: int, example: ToolExample, tool: str, owner: str
    ) -> ExampleResult:
        check_params(definition.name, definition.input_schema, example.params)
        timeout, memory, output = self._policy.effective(definition.limits)
        request = SandboxRequest(
            execution_id=self._ids.new_id("example"),
            language=definition.language,
            code=definition.code,
            entrypoint=definition.entrypoint,
            params=dict(example.params),
            timeout_s=timeout,
            memory_mb=memory,
            max_output_bytes=output,
            tenant=agent_id,
            tool=tool,
            owner=owner,
            egress=self._policy.grant(definition),
            environment=self._requirements.location(definition) if self._requirements is not None else None,
        )
        result = self._sandbox.run(request)
        return _judge(index, example, result)


def _judge(index: int, example: ToolExample, result: SandboxResult) -> ExampleResult:
    error = result.error
    if example.error is not None:
        passed = result.status is not ExecutionStatus.SUCCEEDED and error is not None and error.type == example.error
    else:
        passed = result.status is ExecutionStatus.SUCCEEDED and _same_json(result.output, example.output)
    return ExampleResult(
        index,
        example,
        passed,
        result.status.value,
        result.output,
        error.type if error else None,
        error.message if error else "",
        result.stdout,
        result.stderr,
    )


def _same_json(a: Any, b: Any) -> bool:
    return bool(json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True)))


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:200] + "..."


def _key(definition: ToolDefinition) -> str:
    examples = [attrs.asdict(e) for e in definition.examples]
    payload = json.dumps(
        [str(definition.code_hash), definition.entrypoint, attrs.asdict(definition.limits), examples], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()
