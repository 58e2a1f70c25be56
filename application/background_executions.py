"""BackgroundExecutions: start a tool call now, run it on a bounded pool, and let callers follow or cancel it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from toolrt.application.execute_tool import ExecuteTool, ExecuteToolRequest
from toolrt.application.policy import ExecutionPolicy
from toolrt.domain import Execution, ExecutionError, ExecutionStatus, NotFoundError
from toolrt.ports import ExecutionLog


class BackgroundExecutions:
    """Executions that run while the caller does something else.

    Business rules:
    - a call is checked exactly as :class:`ExecuteTool` checks it, before ``start`` returns, and is
      recorded as pending;
    - at most ``max_concurrent_executions`` run at once; the others wait in the pool's queue;
    - only the agent that started an execution may cancel it;
    - ``wait`` polls the execution log every ``poll_interval_s`` at most ``poll_max_attempts`` times.
    """

    def __init__(self, *, execute: ExecuteTool, executions: ExecutionLog, policy: ExecutionPolicy) -> None:
        self._execute = execute
        self._executions = executions
        self._policy = policy
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, tuple[threading.Event, Future[Execution]]] = {}

    def start(self, request: ExecuteToolRequest) -> Execution:
        """Check the call, record it as pending, and run it in the background."""
        call = self._execute.accept(request)
        pending = call.execution(ExecutionStatus.PENDING)
        self._executions.record_execution(pending)
        cancel = threading.Event()
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._policy.max_concurrent_executions, thread_name_prefix="toolrt-exec"
                )
            future = self._pool.submit(self._execute.run, call, cancel)
            self._running[pending.execution_id] = (cancel, future)
        future.add_done_callback(lambda _: self._forget(pending.execution_id))
        return pending

    def status(self, execution_id: str) -> Execution:
        """The execution as last recorded."""
        return self._executions.get_execution(execution_id)

    def cancel(self, agent_id: str, execution_id: str) -> Execution:
        """Ask a running execution to stop; the caller must be the one who started it. Another
        agent's execution is NotFoundError, the answer an unknown id gets (nothing of it, not even
        its tool's id, is told)."""
        execution = self._executions.get_execution(execution_id)
        if execution.caller != agent_id:
            raise NotFoundError("execution", execution_id)
        with self._lock:
            entry = self._running.get(execution_id)
        if entry is None:
            if execution.status.is_final:
                return execution
            raise ExecutionError(f"execution {execution_id!r} is not running in this process")
        entry[0].set()
        return execution

    def wait(
        self, execution_id: str, poll_interval_s: float | None = None, max_attempts: int | None = None
    ) -> Execution:
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
                return self._executions.get_execution(execution_id)
        execution = self._executions.get_execution(execution_id)
        for _ in range(attempts):
            if execution.status.is_final:
                break
            time.sleep(interval)
            execution = self._executions.get_execution(execution_id)
        return execution

    def close(self) -> None:
        """Cancel the executions still running and stop the pool."""
        with self._lock:
            running = list(self._running.values())
            pool, self._pool = self._pool, None
        for cancel, _ in running:
            cancel.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _forget(self, execution_id: str) -> None:
        with self._lock:
            self._running.pop(execution_id, None)
