"""ExecuteTool: run one call of a tool in the sandbox, synchronously or in the background."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import jsonschema

from toolrt.application.logs import get_logger
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.register_tool import check_agent
from toolrt.domain import (
    Execution,
    ExecutionError,
    ExecutionFailure,
    ExecutionStatus,
    Finding,
    LimitExceededError,
    NotFoundError,
    OwnershipError,
    Severity,
    Tool,
    ToolExecuted,
    ValidationError,
    ValidationReport,
)
from toolrt.ports import (
    CancelSignal,
    Clock,
    EventPublisher,
    IdGenerator,
    MetricsSink,
    Sandbox,
    SandboxRequest,
    SandboxResult,
    ToolRepository,
)

log = get_logger(__name__)

_MAX_PARAM_FINDINGS = 20


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


def check_params(tool_name: str, schema: dict[str, Any], params: Any, validator: Any = None) -> None:
    """Raise ValidationError listing every way ``params`` breaks ``schema``."""
    if not isinstance(params, dict):
        finding = Finding("params.type", Severity.ERROR, f"params must be a JSON object, got {type(params).__name__}")
        raise ValidationError(f"invalid params for tool {tool_name!r}", ValidationReport((finding,)))
    if validator is None:
        validator = jsonschema.validators.validator_for(schema)(schema)
    try:
        if validator.is_valid(params):
            return
        errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    except Exception as exc:  # an unresolvable $ref in a schema stored before refs were checked
        raise ValidationError(f"the input_schema of tool {tool_name!r} cannot be applied: {type(exc).__name__}: {exc}") from exc
    if not errors:
        return
    findings = tuple(
        Finding(
            "params.schema",
            Severity.ERROR,
            f"{'/'.join(str(p) for p in e.absolute_path) or '(params)'}: {e.message}",
            hint=f"schema rule {e.validator!r} at {'/'.join(str(p) for p in e.absolute_schema_path)}",
        )
        for e in errors[:_MAX_PARAM_FINDINGS]
    )
    raise ValidationError(f"invalid params for tool {tool_name!r}", ValidationReport(findings))


class ExecuteTool:
    """Execute a tool.

    Business rules:
    - the caller must be allowed: the owner, or anyone for a shared or public tool; the tool must
      be active;
    - params are checked against the version's input_schema (jsonschema) before any sandbox starts;
    - limits are the tool's own, else the defaults, always capped by the configured maxima;
    - a return value that breaks the tool's output_schema makes the execution failed;
    - every execution is recorded with its result and metrics, whatever its status.

    ``start``/``status``/``cancel``/``wait`` run executions in the background on a bounded pool;
    ``wait`` polls the repository every ``poll_interval_s`` at most ``poll_max_attempts`` times.
    """

    def __init__(
        self,
        repository: ToolRepository,
        sandbox: Sandbox,
        clock: Clock,
        ids: IdGenerator,
        metrics: MetricsSink,
        events: EventPublisher,
        policy: ExecutionPolicy,
    ) -> None:
        self._repository = repository
        self._sandbox = sandbox
        self._clock = clock
        self._ids = ids
        self._metrics = metrics
        self._events = events
        self._policy = policy
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, tuple[threading.Event, Future[Execution]]] = {}
        # Versions are immutable, so a compiled params validator per (tool, version) stays right.
        self._validators: dict[tuple[str, int], Any] = {}
        self._closed = False

    def execute(self, request: ExecuteToolRequest) -> Execution:
        """Run the call now and return the finished execution."""
        self._check_open()
        tool, sandbox_request = self._prepare(request)
        return self._run(request, tool, sandbox_request, None, self._clock.now())

    def start(self, request: ExecuteToolRequest) -> Execution:
        """Check the call, record it as pending, and run it in the background."""
        self._check_open()
        tool, sandbox_request = self._prepare(request)
        created = self._clock.now()
        pending = self._record(request, tool, sandbox_request.execution_id, ExecutionStatus.PENDING, created)
        cancel = threading.Event()
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._policy.max_concurrent_executions, thread_name_prefix="toolrt-exec"
                )
            future = self._pool.submit(self._run, request, tool, sandbox_request, cancel, created)
            self._running[pending.execution_id] = (cancel, future)
        future.add_done_callback(lambda _: self._forget(pending.execution_id))
        return pending

    def status(self, execution_id: str) -> Execution:
        """The execution as last recorded."""
        return self._repository.get_execution(execution_id)

    def cancel(self, agent_id: str, execution_id: str) -> Execution:
        """Ask a running execution to stop; the caller must be the one who started it."""
        execution = self._repository.get_execution(execution_id)
        if execution.caller != agent_id:
            raise OwnershipError(agent_id, execution.tool_id, f"cancel execution {execution_id} of")
        with self._lock:
            entry = self._running.get(execution_id)
        if entry is None:
            if execution.status.is_final:
                return execution
            raise ExecutionError(f"execution {execution_id!r} is not running in this process")
        entry[0].set()
        return execution

    def wait(self, execution_id: str, poll_interval_s: float | None = None, max_attempts: int | None = None) -> Execution:
        """The execution once final, polling as configured; if still running after the last attempt,
        the execution as it stands (its status says so)."""
        interval = poll_interval_s if poll_interval_s is not None else self._policy.poll_interval_s
        attempts = max_attempts if max_attempts is not None else self._policy.poll_max_attempts
        with self._lock:
            entry = self._running.get(execution_id)
        if entry is not None:
            try:
                return entry[1].result(timeout=interval * attempts)
            except TimeoutError:
                return self._repository.get_execution(execution_id)
        execution = self._repository.get_execution(execution_id)
        for _ in range(attempts):
            if execution.status.is_final:
                break
            time.sleep(interval)
            execution = self._repository.get_execution(execution_id)
        return execution

    def _check_open(self) -> None:
        if self._closed:
            raise ExecutionError("this runtime is closed: connect again to execute tools")

    def close(self) -> None:
        """Cancel background executions and stop the pool; later executions raise ExecutionError."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            pool, self._pool = self._pool, None
        for cancel, _ in running:
            cancel.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _forget(self, execution_id: str) -> None:
        with self._lock:
            self._running.pop(execution_id, None)

    def _prepare(self, request: ExecuteToolRequest) -> tuple[Tool, SandboxRequest]:
        check_agent(request.agent_id)
        if request.version is not None and (isinstance(request.version, bool) or not isinstance(request.version, int)):
            raise ValidationError(f"version must be an integer, got {request.version!r}")
        tool = self._repository.get(request.tool_id)
        if not tool.can_execute(request.agent_id):
            if not tool.is_active:
                raise NotFoundError("active tool", request.tool_id)
            raise OwnershipError(request.agent_id, request.tool_id, "execute")
        version = tool.version(request.version) if request.version is not None else tool.current
        definition = version.definition
        key = (tool.tool_id, version.number)
        validator = self._validators.get(key)
        if validator is None:
            if len(self._validators) > 4096:
                self._validators.clear()
            schema = definition.input_schema
            validator = self._validators[key] = jsonschema.validators.validator_for(schema)(schema)
        check_params(definition.name, definition.input_schema, request.params, validator)
        if not self._sandbox.supports(definition.language):
            raise ExecutionError(f"the sandbox cannot run {definition.language.value} on this machine")
        timeout, memory, output = self._policy.effective(definition.limits)
        timeout = _per_call("timeout_s", request.timeout_s, self._policy.max_timeout_s, timeout)
        memory = int(_per_call("memory_mb", request.memory_mb, self._policy.max_memory_mb, memory))
        return tool, SandboxRequest(
            execution_id=self._ids.new_id("exec"),
            language=definition.language,
            code=definition.code,
            entrypoint=definition.entrypoint,
            params=request.params,
            timeout_s=timeout,
            memory_mb=memory,
            max_output_bytes=output,
            tenant=request.agent_id,
            tool=tool.tool_id,
        )

    def _run(
        self,
        request: ExecuteToolRequest,
        tool: Tool,
        sandbox_request: SandboxRequest,
        cancel: CancelSignal | None,
        created: Any,
    ) -> Execution:
        execution_id = sandbox_request.execution_id
        bound = log.bind(tool_id=tool.tool_id, agent_id=request.agent_id, execution_id=execution_id)
        version = request.version or tool.current_version
        if cancel is not None:
            if cancel.is_set():
                result = SandboxResult(ExecutionStatus.CANCELLED, error=ExecutionFailure("Cancelled", "cancelled before start"))
                return self._finish(request, tool, version, execution_id, created, result, bound)
            self._record(request, tool, execution_id, ExecutionStatus.RUNNING, created)
        try:
            result = self._sandbox.run(sandbox_request, cancel)
        except Exception as exc:
            bound.error("sandbox failed", error=str(exc), error_type=type(exc).__name__)
            result = SandboxResult(ExecutionStatus.FAILED, error=ExecutionFailure(type(exc).__name__, str(exc)))
        try:
            result = self._check_output(tool, version, result)
        except Exception as exc:  # an output_schema that cannot be applied fails the call, recorded
            result = attrs.evolve(
                result, status=ExecutionStatus.FAILED, error=ExecutionFailure("OutputSchemaError", f"output_schema cannot be applied: {exc}")
            )
        return self._finish(request, tool, version, execution_id, created, result, bound)

    def _check_output(self, tool: Tool, version: int, result: SandboxResult) -> SandboxResult:
        schema = tool.version(version).definition.output_schema
        if schema is None or result.status is not ExecutionStatus.SUCCEEDED:
            return result
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
            status=result.status,
            created_at=created,
            finished_at=self._clock.now(),
            output=result.output,
            stdout=result.stdout,
            stderr=result.stderr,
            stdout_truncated=result.stdout_truncated,
            stderr_truncated=result.stderr_truncated,
            error=result.error,
            metrics=result.metrics,
        )
        try:
            self._repository.record_execution(execution)
        except Exception as exc:  # the caller still gets its result; the record is what is lost
            bound.error("recording the execution failed", error=str(exc))
        status = result.status.value
        self._metrics.increment("executions", status=status, language=tool.definition.language.value)
        self._metrics.observe("execution_ms", result.metrics.wall_ms, status=status)
        if result.error is not None:
            self._metrics.increment("errors", type=result.error.type, operation="execute")
        self._events.publish(
            ToolExecuted(execution.finished_at or created, tool.tool_id, execution_id, request.agent_id, result.status, result.metrics.wall_ms)
        )
        bound.info("tool executed", status=status, wall_ms=round(result.metrics.wall_ms, 3), isolation=result.metrics.isolation.value)
        return execution

    def _record(self, request: ExecuteToolRequest, tool: Tool, execution_id: str, status: ExecutionStatus, created: Any) -> Execution:
        execution = Execution(
            execution_id=execution_id,
            tool_id=tool.tool_id,
            version=request.version or tool.current_version,
            caller=request.agent_id,
            status=status,
            created_at=created,
        )
        self._repository.record_execution(execution)
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
