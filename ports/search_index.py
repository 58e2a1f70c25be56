"""The search index port: active tools ranked for a request, from what the asker may discover."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import Tool, ValidationError
from toolrt.domain.search import Score


def _to_teams(teams: Iterable[str]) -> frozenset[str]:
    return frozenset(teams)


@attrs.frozen
class SearchQuery:
    """A ranked search over active tools.

    ``terms`` are analyzed already (``toolrt.domain.search.query_terms``). ``visible_to`` keeps the
    tools that agent may discover (``teams`` as in :class:`~toolrt.ports.ToolQuery`), and the
    ranking's statistics are those of exactly that set, so nothing outside it moves a score;
    ``None`` searches every active tool. ``tags`` keeps tools whose current version carries every
    one of them.
    """

    terms: tuple[str, ...]
    visible_to: str | None = None
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_to_teams)
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


@runtime_checkable
class SearchIndex(Protocol):
    """Ranks the active tools of the store's records (``toolrt.contracts.SearchIndexContract``)."""

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Active tools matching any of ``query.terms``, best first, exactly as
        ``toolrt.domain.search.rank_tools`` ranks them.

        Scores use the statistics of the tools ``query.visible_to`` may discover, never of others.
        The index changes in the same atomic step as the record it describes.
        """
