"""ExecuteTool: check one call of a tool, run it in the sandbox and record its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from toolrt.application._tools import tool_span_attributes
from toolrt.application.access import check_execute
from toolrt.application.checks import check_agent, check_params
from toolrt.application.output_relay import OutputRelay
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.requirements import Requirements
from toolrt.application.traffic import TrafficControl
from toolrt.domain import (
    Execution,
    ExecutionError,
    ExecutionFailure,
    ExecutionStatus,
    Language,
    LimitExceededError,
    Tool,
    ToolDefinition,
    ToolExecuted,
    ToolRuntimeError,
    ValidationError,
)
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    AttributeValue,
    CancelSignal,
    Clock,
    EventPublisher,
    ExecutionLog,
    IdGenerator,
    MetricsSink,
    NoTracer,
    OutputCallback,
    Sandbox,
    SandboxRequest,
    SandboxResult,
    Teams,
    ToolRecords,
    Tracer,
)

log = get_logger(__name__)


@attrs.frozen(hash=False)
class ExecuteToolRequest:
    """A caller asks to run a tool with ``params`` (a JSON object); ``version`` pins one version."""

    agent_id: str
    tool_id: str
    params: dict[str, Any] = attrs.field(factory=dict)
    version: int | None = None
    # Per-call limits: override the tool's own, within the configured maxima.
    timeout_s: float | None = None
    memory_mb: int | None = None
    # Receives ("stdout" | "stderr", text) as the tool prints (see OutputRelay).
    on_output: OutputCallback | None = attrs.field(default=None, eq=False, repr=False)
    # Under a traffic split, calls with one sticky key run the same version (None: a weighted draw).
    sticky_key: str | None = None


@attrs.frozen
class AcceptedCall:
    """A call that passed every check, with its execution id and limits fixed; nothing has run yet."""

    request: ExecuteToolRequest
    tool: Tool
    sandbox_request: SandboxRequest
    created: datetime

    @property
    def execution_id(self) -> str:
        return self.sandbox_request.execution_id

    def execution(self, status: ExecutionStatus) -> Execution:
        """The call as an execution in ``status``, without a result."""
        return Execution(
            execution_id=self.execution_id,
            tool_id=self.tool.tool_id,
            version=self.request.version or self.tool.current_version,
            caller=self.request.agent_id,
            status=status,
            created_at=self.created,
        )


class ExecuteTool:
    """Execute a tool.

    Business rules:
    - the caller must be allowed: the owner, or anyone for a shared or public tool; the tool must
      be active;
    - params are checked against the version's input_schema (jsonschema) before any sandbox starts;
    - limits are the tool's own, else the defaults, always capped by the configured maxima;
    - the call may reach the hosts its version declares in ``network`` that the owner's egress
      policy permits *now* (a host withdrawn from the policy is not reached by older tools);
    - a version with requirements runs with its lock's environment (rebuilt from the lock if it was
      pruned); a version without requirements sees no environment at all;
    - a return value that breaks the tool's output_schema makes the execution failed;
    - every execution is recorded with its result and metrics, whatever its status;
    - an un-pinned call of a tool with a traffic split runs the version the split picks (the same
      for one ``sticky_key``), and the record says which; a pinned ``version`` bypasses the split;
      after a candidate version's call, the split's guard is kept (see TrafficControl).

    ``execute`` is :meth:`accept` then :meth:`run`; :class:`BackgroundExecutions` runs the two
    apart, on its own threads.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        executions: ExecutionLog,
        teams: Teams,
        sandbox: Sandbox,
        clock: Clock,
        ids: IdGenerator,
        metrics: MetricsSink,
        events: EventPublisher,
        policy: ExecutionPolicy,
        artifacts: ArtifactStore | None = None,
        traffic: TrafficControl | None = None,
        tracer: Tracer | None = None,
        requirements: Requirements | None = None,
    ) -> None:
        self._tracer = tracer or NoTracer()
        self._requirements = requirements
        self._tools = tools
        self._executions = executions
        self._teams = teams
        self._artifacts = artifacts
        self._traffic = traffic
        # Runnable forms of artifacts (TypeScript stripped at registration) and the JavaScript engine
        # chosen for them, by code hash: immutable.
        self._runnable: dict[str, tuple[str | None, str | None]] = {}
        self._sandbox = sandbox
        self._clock = clock
        self._ids = ids
        self._metrics = metrics
        self._events = events
        self._policy = policy
        # Versions are immutable, so a compiled params checker (a jsonschema validator object; "validator"
        # in toolrt means the CodeValidator port) per (tool, version) stays right.
        self._param_checkers: dict[tuple[str, int], Any] = {}
        self._closed = False

    def execute(self, request: ExecuteToolRequest) -> Execution:
        """Run the call now and return the finished execution."""
        try:
            call = self.accept(request)
        except ToolRuntimeError as exc:  # refused before it ran: a span says so, with no tool details
            attributes: dict[str, AttributeValue] = {
                "gen_ai.operation.name": "execute_tool",
                "toolrt.agent.id": request.agent_id,
            }
            with self._tracer.span("execute_tool", attributes) as span:
                # The type only: the message may quote the params (a schema error names the value).
                span.record_error(type(exc).__name__, "refused before it ran")
            raise
        return self.run(call)

    def accept(self, request: ExecuteToolRequest) -> AcceptedCall:
        """Check the call (caller, params, limits) and give it an execution id; raise if it may not run."""
        if self._closed:
            raise ExecutionError("this runtime is closed: connect again to execute tools")
        try:
            tool, sandbox_request, request = self._prepare(request)
        except ToolRuntimeError as exc:  # the store keeps refusals for fleet metrics (the type only)
            self._metrics.increment("executions_refused", type=type(exc).__name__)
            raise
        return AcceptedCall(request, tool, sandbox_request, self._clock.now())

    def run(self, call: AcceptedCall, cancel: CancelSignal | None = None) -> Execution:
        """Run an accepted call in the sandbox and record its result; a call that can be cancelled is
        recorded as running first, and as cancelled if the signal came before it started."""
        request, tool = call.request, call.tool
        version = request.version or tool.current_version
        attributes = tool_span_attributes(request.agent_id, tool.name, tool.definition.language.value)
        attributes |= {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": call.execution_id,
            "toolrt.tool.id": tool.tool_id,
            "toolrt.tool.version": version,
        }
        with self._tracer.span(f"execute_tool {tool.name}", attributes) as span:
            execution = self._run(call, cancel, version)
            m = execution.metrics
            span.set_attribute("toolrt.execution.status", execution.status.value)
            span.set_attribute("toolrt.sandbox.wall_ms", m.wall_ms)
            span.set_attribute("toolrt.sandbox.cpu_ms", m.cpu_ms)
            span.set_attribute("toolrt.sandbox.max_rss_kb", m.max_rss_kb)
            span.set_attribute("toolrt.isolation", m.isolation.value)
            if execution.error is not None:
                # The type only: the tool's own message may carry its params or its data.
                span.record_error(execution.error.type, f"execution {execution.status.value}")
        return execution

    def _run(self, call: AcceptedCall, cancel: CancelSignal | None, version: int) -> Execution:
        request, tool, sandbox_request, created = call.request, call.tool, call.sandbox_request, call.created
        execution_id = sandbox_request.execution_id
        bound = log.bind(tool_id=tool.tool_id, agent_id=request.agent_id, execution_id=execution_id)
        if cancel is not None:
            if cancel.is_set():
                result = SandboxResult(
                    ExecutionStatus.CANCELLED, error=ExecutionFailure("Cancelled", "cancelled before start")
                )
                return self._finish(request, tool, version, execution_id, created, result, bound)
            self._executions.record_execution(call.execution(ExecutionStatus.RUNNING))
        try:
            result = self._sandbox.run(sandbox_request, cancel)
        except Exception as exc:
            bound.error("sandbox failed", error=str(exc), error_type=type(exc).__name__)
            result = SandboxResult(ExecutionStatus.FAILED, error=ExecutionFailure(type(exc).__name__, str(exc)))
        if isinstance(sandbox_request.on_output, OutputRelay):
            sandbox_request.on_output.finish(result.stdout, result.stderr)
        try:
            result = self._check_output(tool, version, result)
        except Exception as exc:  # an output_schema that cannot be applied fails the call, recorded
            result = attrs.evolve(
                result,
                status=ExecutionStatus.FAILED,
                error=ExecutionFailure("OutputSchemaError", f"output_schema cannot be applied: {exc}"),
            )
        return self._finish(request, tool, version, execution_id, created, result, bound)

    def close(self) -> None:
        """Refuse later calls: they raise ExecutionError."""
        self._closed = True

    def _prepare(self, request: ExecuteToolRequest) -> tuple[Tool, SandboxRequest, ExecuteToolRequest]:
        check_agent(request.agent_id)
        if request.version is not None and (isinstance(request.version, bool) or not isinstance(request.version, int)):
            raise ValidationError(f"version must be an integer, got {request.version!r}")
        tool = self._tools.get(request.tool_id)
        check_execute(self._teams, tool, request.agent_id)
        if request.version is None and tool.traffic is not None:
            request = attrs.evolve(request, version=tool.route(request.sticky_key))  # fixed from here on
        version = tool.version(request.version) if request.version is not None else tool.current
        definition = version.definition
        key = (tool.tool_id, version.number)
        checker = self._param_checkers.get(key)
        if checker is None:
            if len(self._param_checkers) > 4096:
                self._param_checkers.clear()
            schema = definition.input_schema
            import jsonschema

            checker = self._param_checkers[key] = jsonschema.validators.validator_for(schema)(schema)
        check_params(definition.name, definition.input_schema, request.params, checker)
        if not self._sandbox.supports(definition.language):
            # A sandbox may say why (the local one names the Node.js it needs and how to install it).
            why = getattr(self._sandbox, "unsupported_reason", lambda language: None)(definition.language)
            raise ExecutionError(
                f"the sandbox cannot run {definition.language.value} on this machine" + (f": {why}" if why else "")
            )
        language, code = definition.language, definition.code
        engine = None
        if language is not Language.PYTHON:
            runnable, engine = self._runnable_form(definition.code_hash)
            if language is Language.TYPESCRIPT and runnable is not None:
                # Stripped once at registration: it runs as the JavaScript it is, with no stripper.
                language, code = Language.JAVASCRIPT, runnable
        timeout, memory, output = self._policy.effective(definition.limits)
        timeout = _per_call("timeout_s", request.timeout_s, self._policy.max_timeout_s, timeout)
        memory = int(_per_call("memory_mb", request.memory_mb, self._policy.max_memory_mb, memory))
        sandbox_request = SandboxRequest(
            execution_id=self._ids.new_id("exec"),
            language=language,
            code=code,
            entrypoint=definition.entrypoint,
            params=request.params,
            timeout_s=timeout,
            memory_mb=memory,
            max_output_bytes=output,
            tenant=request.agent_id,
            tool=tool.tool_id,
            owner=tool.owner,
            on_output=OutputRelay(request.on_output) if request.on_output is not None else None,
            egress=self._policy.grant(definition),
            engine=engine,
            environment=self._environment(definition),
        )
        return tool, sandbox_request, request

    def _environment(self, definition: ToolDefinition) -> str | None:
        if definition.lock is None:
            return None
        if self._requirements is None:
            raise ExecutionError(f"tool {definition.name!r} has requirements and this runtime installs none")
        return self._requirements.location(definition)

    def _runnable_form(self, code_hash: Any) -> tuple[str | None, str | None]:
        """The artifact's runnable form and JavaScript engine (None, None when unknown)."""
        key = str(code_hash)
        if key in self._runnable:
            return self._runnable[key]
        if self._artifacts is None:
            return None, None
        try:
            artifact = self._artifacts.get(code_hash)
        except Exception as exc:  # the source form still runs (on Node): a store hiccup costs speed, not the call
            log.warning("reading the runnable form failed; running the source", code_hash=key, error=str(exc))
            return None, None
        form = (artifact.runnable, artifact.engine) if artifact is not None else (None, None)
        if len(self._runnable) > 4096:
            self._runnable.clear()
        self._runnable[key] = form
        return form

    def _check_output(self, tool: Tool, version: int, result: SandboxResult) -> SandboxResult:
        schema = tool.version(version).definition.output_schema
        if schema is None or result.status is not ExecutionStatus.SUCCEEDED:
            return result
        import jsonschema

        errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(result.output))
        if not errors:
            return result
        message = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(output)'}: {e.message}" for e in errors[:5])
        return attrs.evolve(
            result,
            status=ExecutionStatus.FAILED,
            error=ExecutionFailure("OutputSchemaError", f"return value breaks output_schema: {message}"),
        )

    def _finish(
        self,
        request: ExecuteToolRequest,
        tool: Tool,
        version: int,
        execution_id: str,
        created: Any,
        result: SandboxResult,
        bound: Any,
    ) -> Execution:
        execution = Execution(
            execution_id=execution_id,
            tool_id=tool.tool_id,
            version=version,
            caller=request.agent_id,
            created_at=created,
            finished_at=self._clock.now(),
            # The sandbox's result is the execution's outcome, field for field (a test keeps it so).
            **attrs.asdict(result, recurse=False),
        )
        try:
            self._executions.record_execution(execution)
        except Exception as exc:  # the caller still gets its result; the record is what is lost
            bound.error("recording the execution failed", error=str(exc))
        status = result.status.value
        self._metrics.increment("executions", status=status, language=tool.definition.language.value)
        self._metrics.observe("execution_ms", result.metrics.wall_ms, status=status)
        if result.error is not None:
            self._metrics.increment("errors", type=result.error.type, operation="execute")
        self._events.publish(
            ToolExecuted(
                execution.finished_at or created,
                tool.tool_id,
                execution_id,
                request.agent_id,
                result.status,
                result.metrics.wall_ms,
            )
        )
        bound.info(
            "tool executed",
            status=status,
            wall_ms=round(result.metrics.wall_ms, 3),
            isolation=result.metrics.isolation.value,
        )
        if self._traffic is not None and tool.traffic is not None:
            try:
                self._traffic.after_execution(tool, execution)
            except Exception as exc:  # the call's result stands; the guard looks again next call
                bound.error("keeping the traffic guard failed", error=str(exc))
        return execution


def _per_call(name: str, asked: float | None, maximum: float, default: float) -> float:
    """A per-call limit: positive, at most the configured maximum (asking for more is an error)."""
    if asked is None:
        return default
    if isinstance(asked, bool) or not isinstance(asked, (int, float)) or asked <= 0:
        raise ValidationError(f"{name} must be a positive number, got {asked!r}")
    if asked > maximum:
        raise LimitExceededError(f"{name}={asked:g} is above this runtime's maximum of {maximum:g}")
    return asked
