"""The tool repository port: tool records, artifact references and execution records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import CodeHash, Execution, ExecutionStatus, Tool, ToolStatus, ValidationError
from toolrt.domain.search import CorpusStats, Score, SearchDocument, rank


@attrs.frozen
class ToolQuery:
    """Which tools to list. Every field narrows; ``None`` means any.

    ``visible_to`` keeps the tools that agent owns plus the public ones; ``text`` matches name or
    description (case-insensitive substring); ``tag`` requires the current version to carry it.
    """

    owner: str | None = None
    visible_to: str | None = None
    status: ToolStatus | None = ToolStatus.ACTIVE
    name: str | None = None
    tag: str | None = None
    text: str | None = None
    limit: int = attrs.field(default=1000)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"limit must be a non-negative integer, got {value!r}")

    def matches(self, tool: Tool) -> bool:
        """True when ``tool`` satisfies every field (adapters that filter in process use this)."""
        if self.owner is not None and tool.owner != self.owner:
            return False
        if self.visible_to is not None and not tool.can_discover(self.visible_to):
            return False
        if self.status is not None and tool.status is not self.status:
            return False
        if self.name is not None and tool.name != self.name:
            return False
        if self.tag is not None and self.tag not in tool.definition.tags:
            return False
        if self.text is not None:
            needle = self.text.lower()
            if needle not in tool.name.lower() and needle not in tool.definition.description.lower():
                return False
        return True


@attrs.frozen
class ExecutionQuery:
    """Which execution records to list, newest first (``created_at``, then ``execution_id``).

    ``caller`` and ``tool_ids`` given together match either (an agent's own calls and every call of
    its tools); each alone narrows. ``tool_id``, ``version``, ``status`` and ``since`` narrow further.
    ``before`` continues a listing: the ``(created_at, execution_id)`` of the last record seen.
    """

    caller: str | None = None
    tool_ids: frozenset[str] | None = None
    tool_id: str | None = None
    version: int | None = None
    status: ExecutionStatus | None = None
    since: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = attrs.field(default=100)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1000:
            raise ValidationError(f"limit must be an integer from 1 to 1000, got {value!r}")

    def matches(self, execution: Execution) -> bool:
        """True when ``execution`` satisfies every field but the limit (adapters filtering in process)."""
        if self.caller is not None and self.tool_ids is not None:
            if execution.caller != self.caller and execution.tool_id not in self.tool_ids:
                return False
        elif self.caller is not None and execution.caller != self.caller:
            return False
        elif self.tool_ids is not None and execution.tool_id not in self.tool_ids:
            return False
        if self.tool_id is not None and execution.tool_id != self.tool_id:
            return False
        if self.version is not None and execution.version != self.version:
            return False
        if self.status is not None and execution.status is not self.status:
            return False
        if self.since is not None and execution.created_at < self.since:
            return False
        if self.before is not None and (execution.created_at, execution.execution_id) >= self.before:
            return False
        return True


@attrs.frozen
class SearchQuery:
    """A ranked search over active tools.

    ``terms`` are analyzed already (``toolrt.domain.search.query_terms``). ``visible_to`` keeps the
    tools that agent may discover, and the ranking's statistics are those of exactly that set, so
    nothing outside it moves a score; ``None`` searches every active tool. ``tags`` keeps tools
    whose current version carries every one of them.
    """

    terms: tuple[str, ...]
    visible_to: str | None = None
    tags: tuple[str, ...] = ()
    limit: int = attrs.field(default=10)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
            raise ValidationError(f"limit must be an integer from 1 to 100, got {value!r}")


@attrs.frozen
class SearchHit:
    """A tool found by a search, with its BM25F score and the fields a query term was found in."""

    tool: Tool
    score: Score


def newest_first(executions: Iterable[Execution], query: ExecutionQuery) -> list[Execution]:
    """The executions ``query`` matches, newest first, at most ``query.limit`` (for adapters)."""
    found = [e for e in executions if query.matches(e)]
    found.sort(key=lambda e: (e.created_at, e.execution_id), reverse=True)
    return found[: query.limit]


@runtime_checkable
class ToolRepository(Protocol):
    """Stores tools and, in the same atomic step, which tools reference which artifact.

    Rules every adapter keeps (``toolrt.contracts.repository`` checks them):

    - ``add`` creates; a second tool with the same id, or an active tool with the same owner and
      name, raises ``ConflictError``.
    - ``save`` replaces the stored record only when its ``record_version`` is exactly one less than
      the given tool's; otherwise ``ConflictError`` (never a lost update).
    - An *active* tool references every code hash of its version history; an inactive or deleted tool
      references none. ``references(h)`` is always exactly the set of tools referencing ``h``, and
      changes atomically with the record.
    """

    def add(self, tool: Tool) -> None:
        """Create ``tool`` and its artifact references."""

    def get(self, tool_id: str) -> Tool:
        """The stored tool, or ``NotFoundError``."""

    def save(self, tool: Tool) -> None:
        """Replace the stored record (optimistic concurrency on ``record_version``)."""

    def delete(self, tool_id: str) -> None:
        """Remove the record and its references; ``NotFoundError`` if absent."""

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        """Tools matching ``query``, ordered by name then tool id."""

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        """Every tool (any status) with ``code_hash`` anywhere in its history."""

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        """Ids of the tools that currently reference ``code_hash``."""

    def record_execution(self, execution: Execution) -> None:
        """Insert or replace an execution record (keyed by ``execution_id``)."""

    def get_execution(self, execution_id: str) -> Execution:
        """The stored execution, or ``NotFoundError``."""

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Execution records ``query`` matches, newest first, at most ``query.limit``."""

    def discoverable(self, visible_to: str | None) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        """``(tool_id, record_version, tags)`` of every active tool ``visible_to`` may discover (all
        active tools for ``None``), in no particular order: what a semantic ranking needs, without
        reading whole records."""

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Active tools matching any of ``query.terms``, best first (``toolrt.domain.search.rank``).

        Scores use the statistics of the tools ``query.visible_to`` may discover, never of others.
        The search index changes in the same atomic step as the record it describes.
        """

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Call ``delete(h)`` for each of ``code_hashes`` no tool references; the hashes deleted.

        The reference check and ``delete`` are one step as far as references go: a tool that
        references ``h`` is stored either before the check (then ``delete`` is not called) or after
        ``delete(h)`` returned (so that its registration, which makes sure the artifact is present
        once its tool is stored, puts it back). A ``delete`` that raises stops the call.
        """

    def purge_executions(self, before: datetime, *, dry_run: bool = False) -> int:
        """Remove the finished execution records created before ``before``; how many (would be) removed.

        Pending and running records are kept whatever their age. ``dry_run`` only counts.
        """


class InProcessSearch:
    """:meth:`ToolRepository.search` for adapters that hold or list every candidate tool in process.

    Keeps each tool's analyzed document until its record changes (keyed by tool id and record
    version), so a search costs one BM25F pass over the visible tools, not one analysis of each.
    """

    def __init__(self, max_documents: int = 200_000) -> None:
        self._documents: dict[str, tuple[int, SearchDocument]] = {}
        self._max = max_documents

    def document(self, tool: Tool) -> SearchDocument:
        """The analyzed document of ``tool``'s current definition."""
        cached = self._documents.get(tool.tool_id)
        if cached is not None and cached[0] == tool.record_version:
            return cached[1]
        document = SearchDocument.of(tool.tool_id, tool.definition)
        if len(self._documents) >= self._max:
            self._documents.clear()
        self._documents[tool.tool_id] = (tool.record_version, document)
        return document

    def forget(self, tool_id: str) -> None:
        """Drop a deleted tool's document."""
        self._documents.pop(tool_id, None)

    def search(self, tools: Iterable[Tool], query: SearchQuery) -> list[SearchHit]:
        """Rank the active tools of ``tools`` that ``query.visible_to`` may discover."""
        visible = _discoverable(tools, query.visible_to)
        by_id = {t.tool_id: t for t in visible}
        documents = [self.document(t) for t in visible]
        stats = CorpusStats.of(documents, query.terms)
        wanted = frozenset(query.tags)
        candidates = [d for d in documents if wanted <= frozenset(by_id[d.tool_id].definition.tags)]
        return [SearchHit(by_id[d.tool_id], s) for d, s in rank(query.terms, candidates, stats, query.limit)]


def _discoverable(tools: Iterable[Tool], visible_to: str | None) -> list[Tool]:
    # The active tools ``visible_to`` may discover (every active tool for None).
    return [t for t in tools if t.status is ToolStatus.ACTIVE and (visible_to is None or t.can_discover(visible_to))]


def discoverable_keys(tools: Iterable[Tool], visible_to: str | None) -> list[tuple[str, int, tuple[str, ...]]]:
    """:meth:`ToolRepository.discoverable` computed from records held in process (for adapters)."""
    return [(t.tool_id, t.record_version, t.definition.tags) for t in _discoverable(tools, visible_to)]
