"""Tool-record answers computed over records held in process, and the in-process search index (for
stores with no text index: memory, DynamoDB, or a new store that implements tool records only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from toolrt.domain import Tool, ToolStatus
from toolrt.domain.search import SearchDocument, discoverable_tools, rank_tools
from toolrt.ports import SearchHit, SearchQuery, ToolCensus, ToolQuery, ToolRecords

#: A listing limit no store reaches: "every tool".
EVERY_TOOL = 10**9


def census_of(tools: Iterable[Tool]) -> ToolCensus:
    """:meth:`~toolrt.ports.ToolRecords.tool_census` over records held in process."""
    active = inactive = 0
    owners: set[str] = set()
    visibility: dict[str, int] = {}
    for tool in tools:
        if tool.status is ToolStatus.ACTIVE:
            active += 1
            owners.add(tool.owner)
            visibility[tool.visibility.value] = visibility.get(tool.visibility.value, 0) + 1
        else:
            inactive += 1
    return ToolCensus(active, inactive, len(owners), tuple(sorted(visibility.items())))


def discoverable_keys(
    tools: Iterable[Tool], visible_to: str | None, teams: frozenset[str] = frozenset()
) -> list[tuple[str, int, tuple[str, ...]]]:
    """:meth:`~toolrt.ports.ToolRecords.discoverable` over records held in process."""
    return [(t.tool_id, t.record_version, t.definition.tags) for t in discoverable_tools(tools, visible_to, teams)]


class InProcessSearch:
    """Ranks tools held in process as ``toolrt.domain.search.rank_tools`` does.

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
        ranked = rank_tools(
            tools,
            query.terms,
            visible_to=query.visible_to,
            teams=query.teams,
            tags=query.tags,
            limit=query.limit,
            document=self.document,
        )
        return [SearchHit(tool, score) for tool, score in ranked]


class ListedSearchIndex:
    """A :class:`~toolrt.ports.SearchIndex` over any :class:`~toolrt.ports.ToolRecords`: each search
    lists the tools the asker may discover and ranks them in process. What a store without a text
    index offers (DynamoDB); past tens of thousands of tools, a store's own index is faster."""

    def __init__(self, records: ToolRecords) -> None:
        self._records = records
        self._search = InProcessSearch()

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """The visible active tools, listed from the records, ranked here."""
        listed = self._records.list(ToolQuery(visible_to=query.visible_to, teams=query.teams, limit=EVERY_TOOL))
        return self._search.search(listed, query)
