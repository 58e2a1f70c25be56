"""Execution records in a dict, listed and aggregated in process."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from toolrt.adapters.shared.executions import count_usage, newest_first, outcomes_of, purgeable, summarize_executions
from toolrt.domain import Execution, NotFoundError
from toolrt.ports import ExecutionOutcome, ExecutionQuery, ExecutionSummary, ToolUsage


class InMemoryExecutionLog:
    """Execution records under one lock (a :class:`~toolrt.ports.ExecutionLog`)."""

    def __init__(self) -> None:
        super().__init__()
        self._executions_lock = threading.RLock()
        self._executions: dict[str, Execution] = {}

    def record_execution(self, execution: Execution) -> None:
        with self._executions_lock:
            self._executions[execution.execution_id] = execution

    def get_execution(self, execution_id: str) -> Execution:
        with self._executions_lock:
            try:
                return self._executions[execution_id]
            except KeyError:
                raise NotFoundError("execution", execution_id) from None

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        return newest_first(self._snapshot(), query)

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        return count_usage(self._snapshot(), tool_ids)

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        return outcomes_of(self._snapshot(), tool_id, since)

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        return summarize_executions(self._snapshot(), since, until, tool_id)

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        with self._executions_lock:
            old = purgeable(self._executions.values(), before, keep_newest)
            if not dry_run:
                for key in old:
                    del self._executions[key]
        return len(old)

    def _snapshot(self) -> list[Execution]:
        with self._executions_lock:
            return list(self._executions.values())
