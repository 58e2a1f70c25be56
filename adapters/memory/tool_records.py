"""Tool records in a dict, with the code references and search index derived from them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from toolrt.adapters.shared.tools import InProcessSearch, census_of, discoverable_keys
from toolrt.domain import CodeHash, ConflictError, NotFoundError, Tool
from toolrt.ports import SearchHit, SearchQuery, ToolCensus, ToolQuery


class InMemoryToolRecords:
    """Tools under one lock; references and search are computed from them under the same lock
    (a :class:`~toolrt.ports.ToolRecords`, :class:`~toolrt.ports.CodeReferences` and
    :class:`~toolrt.ports.SearchIndex`)."""

    def __init__(self) -> None:
        super().__init__()
        self._tools_lock = threading.RLock()
        self._tools: dict[str, Tool] = {}
        # (owner, name) -> tool id of the active tool holding that name: keeps add/save O(1).
        self._active_names: dict[tuple[str, str], str] = {}
        self._search = InProcessSearch()

    # -- tool records ----------------------------------------------------------------------------

    def add(self, tool: Tool) -> None:
        with self._tools_lock:
            if tool.tool_id in self._tools:
                raise ConflictError(f"tool id {tool.tool_id!r} already exists")
            self._check_name(tool)
            self._store(tool)

    def get(self, tool_id: str) -> Tool:
        with self._tools_lock:
            try:
                return self._tools[tool_id]
            except KeyError:
                raise NotFoundError("tool", tool_id) from None

    def save(self, tool: Tool) -> None:
        with self._tools_lock:
            stored = self.get(tool.tool_id)
            if stored.record_version != tool.record_version - 1:
                raise ConflictError(
                    f"tool {tool.tool_id!r} changed concurrently (stored record version "
                    f"{stored.record_version}, update based on {tool.record_version - 1}); re-read and retry"
                )
            self._check_name(tool)
            self._store(tool)

    def delete(self, tool_id: str) -> None:
        with self._tools_lock:
            removed = self._tools.pop(tool_id, None)
            if removed is None:
                raise NotFoundError("tool", tool_id)
            self._release_name(removed)
            self._search.forget(tool_id)

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        with self._tools_lock:
            found = sorted((t for t in self._tools.values() if query.matches(t)), key=lambda t: (t.name, t.tool_id))
        return found[: query.limit]

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        with self._tools_lock:
            return discoverable_keys(list(self._tools.values()), visible_to, teams)

    def tool_census(self) -> ToolCensus:
        with self._tools_lock:
            return census_of(list(self._tools.values()))

    def change_marker(self) -> None:
        """None: only this process writes a memory store, and its changes are announced as events."""
        return None

    # -- code references -------------------------------------------------------------------------

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        with self._tools_lock:
            return [t for t in self._tools.values() if code_hash in t.code_hashes]

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        with self._tools_lock:
            return frozenset(t.tool_id for t in self._tools.values() if t.is_active and code_hash in t.code_hashes)

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Checks and deletes under the lock every change of a tool takes."""
        deleted: list[CodeHash] = []
        with self._tools_lock:
            for code_hash in code_hashes:
                if not self.references(code_hash):
                    delete(code_hash)
                    deleted.append(code_hash)
        return deleted

    # -- search index ----------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        with self._tools_lock:
            return self._search.search(list(self._tools.values()), query)

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
