"""AsyncToolRuntime: the asyncio twin of the ToolRuntime facade, for asyncio agent frameworks."""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from toolrt.application.collect_garbage import GarbageCollection
from toolrt.application.definitions import DefinitionLike
from toolrt.application.deregister_tool import Deregistration
from toolrt.application.examples import ExampleResult
from toolrt.application.fleet_metrics import FleetMetrics, ToolActivitySeries
from toolrt.application.queries import ToolStatusReport
from toolrt.application.register_tool import Registration
from toolrt.application.register_tools import BatchItem
from toolrt.application.repair_store import RepairReport
from toolrt.application.runtime import ExecutionPage, ToolRuntime
from toolrt.application.search_tools import SearchResult
from toolrt.application.tool_templates import ToolTemplate
from toolrt.application.traffic import ToolMetrics
from toolrt.application.update_tool import ToolUpdate
from toolrt.domain import (
    DomainEvent,
    Execution,
    ExecutionStatus,
    Tool,
    ToolDefinition,
    ToolStatus,
    ToolVersion,
    TrafficGuard,
    Visibility,
)
from toolrt.ports import CodeValidator, EnvironmentInfo, OutputCallback, PruneReport, ToolUsage

T = TypeVar("T")


class AsyncToolRuntime:
    """The asyncio twin of :class:`ToolRuntime`: the same methods as coroutines.

    Blocking work runs in worker threads, so the event loop stays free while a tool executes. At
    most ``policy.max_concurrent_executions`` executions run at once; the others wait without
    holding a thread (an ``asyncio.Semaphore`` per event loop, and a thread pool of that size).
    """

    def __init__(self, runtime: ToolRuntime) -> None:
        self.sync = runtime
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    async def _run_limited(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            limit = self._limits[loop] = asyncio.Semaphore(self.sync.policy.max_concurrent_executions)
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.sync.policy.max_concurrent_executions, thread_name_prefix="toolrt-async"
                )
            pool = self._pool
        async with limit:
            return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))

    async def register_tool(
        self,
        agent_id: str,
        definition: DefinitionLike,
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        validator: CodeValidator | None = None,
        on_duplicate: str = "warn",
    ) -> Registration:
        """See :meth:`ToolRuntime.register_tool`."""
        return await asyncio.to_thread(
            self.sync.register_tool, agent_id, definition, visibility, validator=validator, on_duplicate=on_duplicate
        )

    async def register_function(
        self,
        agent_id: str,
        fn: Callable[..., Any],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        name: str | None = None,
        description: str | None = None,
        requirements: Sequence[str] = (),
        on_duplicate: str = "update",
    ) -> Registration:
        """See :meth:`ToolRuntime.register_function`."""
        return await asyncio.to_thread(
            functools.partial(
                self.sync.register_function,
                agent_id,
                fn,
                visibility,
                name=name,
                description=description,
                requirements=requirements,
                on_duplicate=on_duplicate,
            )
        )

    def tool(
        self,
        agent_id: str,
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        name: str | None = None,
        description: str | None = None,
        requirements: Sequence[str] = (),
        on_duplicate: str = "update",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """See :meth:`ToolRuntime.tool` (decorating happens at import time: it registers synchronously)."""
        return self.sync.tool(
            agent_id,
            visibility,
            name=name,
            description=description,
            requirements=requirements,
            on_duplicate=on_duplicate,
        )

    async def update_tool(
        self,
        agent_id: str,
        tool_id: str,
        definition: DefinitionLike | None = None,
        visibility: Visibility | str | None = None,
        *,
        validator: CodeValidator | None = None,
    ) -> ToolUpdate:
        """See :meth:`ToolRuntime.update_tool`."""
        return await asyncio.to_thread(
            self.sync.update_tool, agent_id, tool_id, definition, visibility, validator=validator
        )

    async def deregister_tool(self, agent_id: str, tool_id: str, purge: bool = False) -> Deregistration:
        """See :meth:`ToolRuntime.deregister_tool`."""
        return await asyncio.to_thread(self.sync.deregister_tool, agent_id, tool_id, purge)

    async def collect_garbage(
        self,
        *,
        older_than: timedelta | str | float | None = None,
        keep_versions: int | None = None,
        grace_s: float | None = None,
        dry_run: bool = True,
        keep_executions: int | None = None,
    ) -> GarbageCollection:
        """See :meth:`ToolRuntime.collect_garbage`."""
        return await asyncio.to_thread(
            functools.partial(
                self.sync.collect_garbage,
                older_than=older_than,
                keep_versions=keep_versions,
                grace_s=grace_s,
                dry_run=dry_run,
                keep_executions=keep_executions,
            )
        )

    async def environments(self) -> list[EnvironmentInfo]:
        """See :meth:`ToolRuntime.environments`."""
        return await asyncio.to_thread(self.sync.environments)

    async def referenced_locks(self) -> frozenset[str]:
        """See :meth:`ToolRuntime.referenced_locks`."""
        return await asyncio.to_thread(self.sync.referenced_locks)

    async def prune_environments(self, *, max_mb: int | None = None, dry_run: bool = False) -> PruneReport:
        """See :meth:`ToolRuntime.prune_environments`."""
        return await asyncio.to_thread(functools.partial(self.sync.prune_environments, max_mb=max_mb, dry_run=dry_run))

    async def rollback_tool(self, agent_id: str, tool_id: str, version: int) -> Tool:
        """See :meth:`ToolRuntime.rollback_tool`."""
        return await asyncio.to_thread(self.sync.rollback_tool, agent_id, tool_id, version)

    async def execute_tool(
        self,
        agent_id: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        version: int | None = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        on_output: OutputCallback | None = None,
        sticky_key: str | None = None,
    ) -> Execution:
        """See :meth:`ToolRuntime.execute_tool` (``on_output`` is called from a worker thread)."""
        return await self._run_limited(
            self.sync.execute_tool,
            agent_id,
            tool,
            params,
            version,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            on_output=on_output,
            sticky_key=sticky_key,
        )

    async def set_traffic(
        self,
        agent_id: str,
        tool: str,
        weights: Mapping[int, int] | None,
        *,
        guard: TrafficGuard | Mapping[str, Any] | None = None,
    ) -> Tool:
        """See :meth:`ToolRuntime.set_traffic`."""
        return await asyncio.to_thread(self.sync.set_traffic, agent_id, tool, weights, guard=guard)

    async def promote(self, agent_id: str, tool: str, version: int) -> Tool:
        """See :meth:`ToolRuntime.promote`."""
        return await asyncio.to_thread(self.sync.promote, agent_id, tool, version)

    async def tool_metrics(self, tool: str, agent_id: str | None = None) -> ToolMetrics:
        """See :meth:`ToolRuntime.tool_metrics`."""
        return await asyncio.to_thread(self.sync.tool_metrics, tool, agent_id)

    async def test_tool(self, agent_id: str, tool: str, version: int | None = None) -> list[ExampleResult]:
        """See :meth:`ToolRuntime.test_tool`."""
        return await self._run_limited(self.sync.test_tool, agent_id, tool, version)

    async def list_executions(
        self,
        agent_id: str | None,
        *,
        tool: str | None = None,
        version: int | None = None,
        status: ExecutionStatus | str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ExecutionPage:
        """See :meth:`ToolRuntime.list_executions`."""
        return await asyncio.to_thread(
            self.sync.list_executions,
            agent_id,
            tool=tool,
            version=version,
            status=status,
            since=since,
            limit=limit,
            cursor=cursor,
        )

    def subscribe(self, event_type: type[DomainEvent], handler: Callable[[DomainEvent], None]) -> Callable[[], None]:
        """See :meth:`ToolRuntime.subscribe` (handlers run in the worker thread that made the change)."""
        return self.sync.subscribe(event_type, handler)

    async def definition(self, data: DefinitionLike) -> ToolDefinition:
        """See :meth:`ToolRuntime.definition`."""
        return await asyncio.to_thread(self.sync.definition, data)

    async def check_store(self, *, repair: bool = False, grace_s: float = 600.0) -> RepairReport:
        """See :meth:`ToolRuntime.check_store`."""
        return await asyncio.to_thread(functools.partial(self.sync.check_store, repair=repair, grace_s=grace_s))

    async def change_marker(self) -> object | None:
        """See :meth:`ToolRuntime.change_marker`."""
        return await asyncio.to_thread(self.sync.change_marker)

    async def start_execution(
        self,
        agent_id: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        version: int | None = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> Execution:
        """See :meth:`ToolRuntime.start_execution`."""
        return await asyncio.to_thread(
            self.sync.start_execution, agent_id, tool, params, version, timeout_s=timeout_s, memory_mb=memory_mb
        )

    async def resolve_tool(self, agent_id: str, ref: str, *, include_inactive: bool = False) -> Tool:
        """See :meth:`ToolRuntime.resolve_tool`."""
        return await asyncio.to_thread(self.sync.resolve_tool, agent_id, ref, include_inactive=include_inactive)

    async def execution_status(self, execution_id: str) -> Execution:
        """See :meth:`ToolRuntime.execution_status`."""
        return await asyncio.to_thread(self.sync.execution_status, execution_id)

    async def cancel_execution(self, agent_id: str, execution_id: str) -> Execution:
        """See :meth:`ToolRuntime.cancel_execution`."""
        return await asyncio.to_thread(self.sync.cancel_execution, agent_id, execution_id)

    async def wait_execution(
        self, execution_id: str, poll_interval_s: float | None = None, max_attempts: int | None = None
    ) -> Execution:
        """Poll with ``asyncio.sleep`` so the loop is never blocked."""
        interval = poll_interval_s if poll_interval_s is not None else self.sync.policy.poll_interval_s
        attempts = max_attempts if max_attempts is not None else self.sync.policy.poll_max_attempts
        execution = await self.execution_status(execution_id)
        for _ in range(attempts):
            if execution.status.is_final:
                break
            await asyncio.sleep(interval)
            execution = await self.execution_status(execution_id)
        return execution

    async def get_tool_status(self, tool_id: str, agent_id: str | None = None) -> ToolStatusReport:
        """See :meth:`ToolRuntime.get_tool_status`."""
        return await asyncio.to_thread(self.sync.get_tool_status, tool_id, agent_id)

    async def get_tool(self, tool_id: str) -> Tool:
        """See :meth:`ToolRuntime.get_tool`."""
        return await asyncio.to_thread(self.sync.get_tool, tool_id)

    async def tool_schemas(self, agent_id: str, format: str = "openai", *, strict: bool = False) -> Any:
        """See :meth:`ToolRuntime.tool_schemas`."""
        return await asyncio.to_thread(functools.partial(self.sync.tool_schemas, agent_id, format, strict=strict))

    async def dispatch(self, agent_id: str, tool_call: Any) -> Any:
        """See :meth:`ToolRuntime.dispatch`."""
        return await self._run_limited(self.sync.dispatch, agent_id, tool_call)

    async def list_tools(
        self,
        agent_id: str | None = None,
        *,
        owner: str | None = None,
        status: ToolStatus | str | None = ToolStatus.ACTIVE,
        name: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        limit: int = 1000,
    ) -> Sequence[Tool]:
        """See :meth:`ToolRuntime.list_tools`."""
        return await asyncio.to_thread(
            self.sync.list_tools, agent_id, owner=owner, status=status, name=name, tag=tag, text=text, limit=limit
        )

    def list_templates(self) -> list[ToolTemplate]:
        """See :meth:`ToolRuntime.list_templates`."""
        return self.sync.list_templates()

    def add_template(self, template: ToolTemplate | Mapping[str, Any], *, replace: bool = False) -> ToolTemplate:
        """See :meth:`ToolRuntime.add_template`."""
        return self.sync.add_template(template, replace=replace)

    async def create_from_template(
        self,
        agent_id: str,
        template: str,
        values: Mapping[str, Any],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        on_duplicate: str = "warn",
    ) -> Registration:
        """See :meth:`ToolRuntime.create_from_template`."""
        return await asyncio.to_thread(
            self.sync.create_from_template, agent_id, template, values, visibility, on_duplicate=on_duplicate
        )

    async def register_tools(
        self,
        agent_id: str,
        definitions: Sequence[DefinitionLike],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        atomic: bool = False,
        on_duplicate: str = "create",
        validator: CodeValidator | None = None,
    ) -> list[BatchItem]:
        """See :meth:`ToolRuntime.register_tools`."""
        return await asyncio.to_thread(
            self.sync.register_tools,
            agent_id,
            definitions,
            visibility,
            atomic=atomic,
            on_duplicate=on_duplicate,
            validator=validator,
        )

    async def search_tools(
        self,
        agent_id: str | None,
        query: str,
        *,
        limit: int = 10,
        tags: Sequence[str] | None = None,
        with_usage: bool = False,
    ) -> list[SearchResult]:
        """See :meth:`ToolRuntime.search_tools`."""
        return await asyncio.to_thread(
            self.sync.search_tools, agent_id, query, limit=limit, tags=tags, with_usage=with_usage
        )

    async def tool_usage(self, agent_id: str, tool: str) -> ToolUsage:
        """See :meth:`ToolRuntime.tool_usage`."""
        return await asyncio.to_thread(self.sync.tool_usage, agent_id, tool)

    async def tools_usage(self, agent_id: str, tool_ids: Sequence[str]) -> dict[str, ToolUsage]:
        """See :meth:`ToolRuntime.tools_usage`."""
        return await asyncio.to_thread(self.sync.tools_usage, agent_id, tool_ids)

    async def add_team_member(self, team: str, agent_id: str) -> bool:
        """See :meth:`ToolRuntime.add_team_member`."""
        return await asyncio.to_thread(self.sync.add_team_member, team, agent_id)

    async def remove_team_member(self, team: str, agent_id: str) -> bool:
        """See :meth:`ToolRuntime.remove_team_member`."""
        return await asyncio.to_thread(self.sync.remove_team_member, team, agent_id)

    async def teams_of(self, agent_id: str) -> frozenset[str]:
        """See :meth:`ToolRuntime.teams_of`."""
        return await asyncio.to_thread(self.sync.teams_of, agent_id)

    async def list_teams(self) -> dict[str, frozenset[str]]:
        """See :meth:`ToolRuntime.list_teams`."""
        return await asyncio.to_thread(self.sync.list_teams)

    async def list_versions(self, tool_id: str, agent_id: str | None = None) -> Sequence[ToolVersion]:
        """See :meth:`ToolRuntime.list_versions`."""
        return await asyncio.to_thread(self.sync.list_versions, tool_id, agent_id)

    async def fleet_metrics(
        self, window: timedelta | str | float = "1h", *, until: datetime | None = None, busiest: int = 10
    ) -> FleetMetrics:
        """See :meth:`ToolRuntime.fleet_metrics`."""
        return await asyncio.to_thread(self.sync.fleet_metrics, window, until=until, busiest=busiest)

    async def tool_activity(
        self, tool: str, window: timedelta | str | float = "1h", agent_id: str | None = None
    ) -> ToolActivitySeries:
        """See :meth:`ToolRuntime.tool_activity`."""
        return await asyncio.to_thread(self.sync.tool_activity, tool, window, agent_id)

    def metrics(self) -> dict[str, Any]:
        """See :meth:`ToolRuntime.metrics` (in memory: no thread needed)."""
        return self.sync.metrics()

    async def health(self) -> dict[str, Any]:
        """See :meth:`ToolRuntime.health`."""
        return await asyncio.to_thread(self.sync.health)

    async def close(self) -> None:
        """See :meth:`ToolRuntime.close`."""
        await asyncio.to_thread(self.sync.close)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    async def __aenter__(self) -> AsyncToolRuntime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
