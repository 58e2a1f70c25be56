"""A dict-backed ToolRepository: fast, thread-safe, gone with the process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from toolrt.domain import CodeHash, ConflictError, Execution, NotFoundError, Tool
from toolrt.ports import (
    CountBook,
    ExecutionOutcome,
    ExecutionQuery,
    ExecutionSummary,
    SearchHit,
    SearchQuery,
    StoredCount,
    TeamBook,
    ToolCensus,
    ToolQuery,
    ToolUsage,
    census_of,
    count_usage,
    newest_first,
    outcomes_of,
    summarize_executions,
)
from toolrt.ports.repository import InProcessSearch, discoverable_keys, purgeable


class InMemoryToolRepository:
    """Keeps tools, references and executions in dicts under one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tools: dict[str, Tool] = {}
        self._executions: dict[str, Execution] = {}
        # (owner, name) -> tool id of the active tool holding that name: keeps add/save O(1).
        self._active_names: dict[tuple[str, str], str] = {}
        self._search = InProcessSearch()
        self._teams = TeamBook()
        self._counts = CountBook()

    def add(self, tool: Tool) -> None:
        with self._lock:
            if tool.tool_id in self._tools:
                raise ConflictError(f"tool id {tool.tool_id!r} already exists")
            self._check_name(tool)
            self._store(tool)

    def get(self, tool_id: str) -> Tool:
        with self._lock:
            try:
                return self._tools[tool_id]
            except KeyError:
                raise NotFoundError("tool", tool_id) from None

    def save(self, tool: Tool) -> None:
        with self._lock:
            stored = self.get(tool.tool_id)
            if stored.record_version != tool.record_version - 1:
                raise ConflictError(
                    f"tool {tool.tool_id!r} changed concurrently (stored record version "
                    f"{stored.record_version}, update based on {tool.record_version - 1}); re-read and retry"
                )
            self._check_name(tool)
            self._store(tool)

    def delete(self, tool_id: str) -> None:
        with self._lock:
            removed = self._tools.pop(tool_id, None)
            if removed is None:
                raise NotFoundError("tool", tool_id)
            self._release_name(removed)
            self._search.forget(tool_id)

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        with self._lock:
            found = sorted((t for t in self._tools.values() if query.matches(t)), key=lambda t: (t.name, t.tool_id))
        return found[: query.limit]

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        with self._lock:
            return discoverable_keys(list(self._tools.values()), visible_to, teams)

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        with self._lock:
            return outcomes_of(list(self._executions.values()), tool_id, since)

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        with self._lock:
            return count_usage(list(self._executions.values()), tool_ids)

    def add_team_member(self, team: str, agent_id: str) -> bool:
        with self._lock:
            return self._teams.add(team, agent_id)

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        with self._lock:
            return self._teams.remove(team, agent_id)

    def teams_of(self, agent_id: str) -> frozenset[str]:
        with self._lock:
            return self._teams.teams_of(agent_id)

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        with self._lock:
            return self._teams.all()

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        with self._lock:
            return self._search.search(list(self._tools.values()), query)

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        with self._lock:
            return [t for t in self._tools.values() if code_hash in t.code_hashes]

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        with self._lock:
            return frozenset(t.tool_id for t in self._tools.values() if t.is_active and code_hash in t.code_hashes)

    def record_execution(self, execution: Execution) -> None:
        with self._lock:
            self._executions[execution.execution_id] = execution

    def get_execution(self, execution_id: str) -> Execution:
        with self._lock:
            try:
                return self._executions[execution_id]
            except KeyError:
                raise NotFoundError("execution", execution_id) from None

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        with self._lock:
            return newest_first(list(self._executions.values()), query)

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Checks and deletes under the lock every change of a tool takes."""
        deleted: list[CodeHash] = []
        with self._lock:
            for code_hash in code_hashes:
                if not self.references(code_hash):
                    delete(code_hash)
                    deleted.append(code_hash)
        return deleted

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        with self._lock:
            old = purgeable(self._executions.values(), before, keep_newest)
            if not dry_run:
                for key in old:
                    del self._executions[key]
        return len(old)

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        with self._lock:
            executions = list(self._executions.values())
        return summarize_executions(executions, since, until, tool_id)

    def tool_census(self) -> ToolCensus:
        with self._lock:
            return census_of(list(self._tools.values()))

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        with self._lock:
            self._counts.add(counts)

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        with self._lock:
            return self._counts.read(since_minute, until_minute)

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        with self._lock:
            return self._counts.purge(before_minute, dry_run=dry_run)

    def change_marker(self) -> None:
        """None: only this process writes a memory store, and its changes are announced as events."""
        return None

    def _check_name(self, tool: Tool) -> None:
        if not tool.is_active:
            return
        holder = self._active_names.get((tool.owner, tool.name))
        if holder is not None and holder != tool.tool_id:
            raise ConflictError(f"agent {tool.owner!r} already has an active tool named {tool.name!r} ({holder})")

    def _store(self, tool: Tool) -> None:
        previous = self._tools.get(tool.tool_id)
        if previous is not None:
            self._release_name(previous)
        self._tools[tool.tool_id] = tool
        if tool.is_active:
            self._active_names[(tool.owner, tool.name)] = tool.tool_id

    def _release_name(self, tool: Tool) -> None:
        if self._active_names.get((tool.owner, tool.name)) == tool.tool_id:
            del self._active_names[(tool.owner, tool.name)]
