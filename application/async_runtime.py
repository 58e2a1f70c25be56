"""AsyncToolRuntime: the asyncio twin of the ToolRuntime facade, for asyncio agent frameworks.

The twin is derived from the sync facade, one line per method: :func:`in_thread` makes a coroutine
that runs the sync method in a worker thread, :func:`limited` one that also waits its turn among
executions, :func:`at_once` passes a call that needs no thread straight through. Each keeps the sync
method's signature (mypy checks calls against it) and docstring. Only ``wait_execution`` (it polls
with ``asyncio.sleep``) and ``close`` (it also stops the pool) are written out.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from toolrt.application.runtime import ToolRuntime
from toolrt.domain import Execution

__all__ = ["AsyncToolRuntime", "at_once", "in_thread", "limited"]

P = ParamSpec("P")
R = TypeVar("R")


def in_thread(
    method: Callable[Concatenate[ToolRuntime, P], R],
) -> Callable[Concatenate[AsyncToolRuntime, P], Coroutine[Any, Any, R]]:
    """The coroutine twin of ``method``: the sync runtime's method, run in a worker thread."""
    name = method.__name__

    @functools.wraps(method)
    async def twin(self: AsyncToolRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)
        return await asyncio.to_thread(functools.partial(bound, *args, **kwargs))

    return twin


def limited(
    method: Callable[Concatenate[ToolRuntime, P], R],
) -> Callable[Concatenate[AsyncToolRuntime, P], Coroutine[Any, Any, R]]:
    """Like :func:`in_thread`, for methods that run tools: at most ``max_concurrent_executions`` at
    once, the others waiting on the event loop without holding a thread."""
    name = method.__name__

    @functools.wraps(method)
    async def twin(self: AsyncToolRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)
        return await self._run_limited(functools.partial(bound, *args, **kwargs))

    return twin


def at_once(method: Callable[Concatenate[ToolRuntime, P], R]) -> Callable[Concatenate[AsyncToolRuntime, P], R]:
    """``method`` itself, for calls that never block (in memory) or happen at import time (decorators)."""
    name = method.__name__

    @functools.wraps(method)
    def twin(self: AsyncToolRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)
        return bound(*args, **kwargs)

    return twin


class AsyncToolRuntime:
    """The asyncio twin of :class:`ToolRuntime`: the same methods as coroutines.

    Blocking work runs in worker threads, so the event loop stays free while a tool executes. At
    most ``policy.max_concurrent_executions`` executions run at once; the others wait without
    holding a thread (an ``asyncio.Semaphore`` per event loop, and a thread pool of that size).
    ``on_output`` callbacks and ``subscribe`` handlers run in the worker thread that made the call
    or the change; ``tool`` decorates at import time, so it registers synchronously.
    """

    def __init__(self, runtime: ToolRuntime) -> None:
        self.sync = runtime
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    async def _run_limited(self, call: Callable[[], R]) -> R:
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
            return await loop.run_in_executor(pool, call)

    # -- writing -------------------------------------------------------------------------------
    register_tool = in_thread(ToolRuntime.register_tool)
    register_tools = in_thread(ToolRuntime.register_tools)
    register_function = in_thread(ToolRuntime.register_function)
    tool = at_once(ToolRuntime.tool)
    list_templates = at_once(ToolRuntime.list_templates)
    add_template = at_once(ToolRuntime.add_template)
    create_from_template = in_thread(ToolRuntime.create_from_template)
    update_tool = in_thread(ToolRuntime.update_tool)
    deregister_tool = in_thread(ToolRuntime.deregister_tool)
    rollback_tool = in_thread(ToolRuntime.rollback_tool)
    set_traffic = in_thread(ToolRuntime.set_traffic)
    promote = in_thread(ToolRuntime.promote)
    collect_garbage = in_thread(ToolRuntime.collect_garbage)
    environments = in_thread(ToolRuntime.environments)
    referenced_locks = in_thread(ToolRuntime.referenced_locks)
    prune_environments = in_thread(ToolRuntime.prune_environments)
    check_store = in_thread(ToolRuntime.check_store)
    add_team_member = in_thread(ToolRuntime.add_team_member)
    remove_team_member = in_thread(ToolRuntime.remove_team_member)

    # -- running -------------------------------------------------------------------------------
    execute_tool = limited(ToolRuntime.execute_tool)
    test_tool = limited(ToolRuntime.test_tool)
    dispatch = limited(ToolRuntime.dispatch)
    start_execution = in_thread(ToolRuntime.start_execution)
    execution_status = in_thread(ToolRuntime.execution_status)
    cancel_execution = in_thread(ToolRuntime.cancel_execution)

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

    # -- reading -------------------------------------------------------------------------------
    get_tool = in_thread(ToolRuntime.get_tool)
    resolve_tool = in_thread(ToolRuntime.resolve_tool)
    get_tool_status = in_thread(ToolRuntime.get_tool_status)
    list_tools = in_thread(ToolRuntime.list_tools)
    search_tools = in_thread(ToolRuntime.search_tools)
    list_versions = in_thread(ToolRuntime.list_versions)
    tool_schemas = in_thread(ToolRuntime.tool_schemas)
    definition = in_thread(ToolRuntime.definition)
    list_executions = in_thread(ToolRuntime.list_executions)
    tool_usage = in_thread(ToolRuntime.tool_usage)
    tools_usage = in_thread(ToolRuntime.tools_usage)
    tool_metrics = in_thread(ToolRuntime.tool_metrics)
    tool_activity = in_thread(ToolRuntime.tool_activity)
    fleet_metrics = in_thread(ToolRuntime.fleet_metrics)
    teams_of = in_thread(ToolRuntime.teams_of)
    list_teams = in_thread(ToolRuntime.list_teams)
    change_marker = in_thread(ToolRuntime.change_marker)
    subscribe = at_once(ToolRuntime.subscribe)
    metrics = at_once(ToolRuntime.metrics)
    health = in_thread(ToolRuntime.health)

    async def close(self) -> None:
        """See :meth:`ToolRuntime.close`; also stops the executions' thread pool."""
        await asyncio.to_thread(self.sync.close)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    async def __aenter__(self) -> AsyncToolRuntime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
