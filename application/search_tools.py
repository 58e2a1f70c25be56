"""Search: ranked discovery of the tools an agent may use, lexical and (with an embedder) semantic."""

from __future__ import annotations

import functools
import math
import operator
import threading
from collections.abc import Sequence
from typing import Any

import attrs

from toolrt.domain import Tool, ValidationError
from toolrt.domain.search import field_texts, query_terms
from toolrt.ports import (
    Embedder,
    ExecutionLog,
    MetricsSink,
    SearchHit,
    SearchIndex,
    SearchQuery,
    Teams,
    ToolRecords,
    ToolUsage,
)

#: Reciprocal rank fusion's constant (Cormack et al.): damps the weight of the very first ranks.
RRF_K = 60
#: What an embedder is given of a long request (models read a few hundred tokens at most).
MAX_EMBEDDED_QUERY_CHARS = 2000
MAX_CACHED_VECTORS = 500_000


@functools.cache
def _numpy() -> Any:
    """NumPy, which makes the semantic ranking a matrix product (any embedder worth using brings it),
    or None. Imported at the first semantic search: lexical search never needs it."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - exercised where NumPy is absent
        return None
    return numpy


@attrs.frozen
class SearchResult:
    """One tool found by :meth:`ToolRuntime.search_tools`, best first.

    ``score`` orders the results: the BM25F score when search is lexical only, the reciprocal rank
    fusion of both rankings when an embedder is configured. ``matched`` names the fields a query
    term was found in (``name``, ``description``, ``params``, ``tags``) and ``semantic`` when the
    embedder ranked the tool among the closest.
    """

    tool: Tool
    score: float
    matched: tuple[str, ...]
    lexical_score: float
    semantic_score: float | None = None
    usage: ToolUsage | None = None


def _embedding_text(tool: Tool) -> str:
    texts = field_texts(tool.definition)
    name = tool.name.replace("_", " ").replace("-", " ")
    return f"{name}. {texts['description']} Parameters: {texts['params']}"


def _unit(vector: Sequence[float]) -> Any:
    # Stored normalised, so that cosine similarity is a dot product (a matrix product with NumPy).
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    np = _numpy()
    if np is not None:
        return np.asarray(vector, dtype=np.float32) / norm
    return [x / norm for x in vector]


def _similarities(query: Any, vectors: list[Any]) -> list[float]:
    if not vectors:
        return []
    np = _numpy()
    if np is not None:
        return [float(x) for x in np.stack(vectors) @ query]
    return [sum(map(operator.mul, query, v)) for v in vectors]


class SearchTools:
    """Rank the tools an agent may discover for a request in natural language.

    Business rules:

    - Only tools ``agent_id`` may discover are searched, and only their statistics shape the
      scores (see ``toolrt.domain.search``); ``agent_id=None`` is the owner's view of every tool.
    - Lexical ranking (BM25F) always runs. With an embedder, the visible tools are also ranked by
      cosine similarity to the request and both rankings are fused (reciprocal rank fusion), so a
      tool described in other words is still found.
    - Vectors are cached per tool version and embedder model, in process.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        index: SearchIndex,
        teams: Teams,
        executions: ExecutionLog,
        metrics: MetricsSink,
        embedder: Embedder | None = None,
    ) -> None:
        self._tools = tools
        self._index = index
        self._teams = teams
        self._executions = executions
        self._metrics = metrics
        self._embedder = embedder
        self._vectors: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def execute(
        self,
        agent_id: str | None,
        text: str,
        *,
        limit: int = 10,
        tags: Sequence[str] = (),
        counted: bool = True,
        with_usage: bool = False,
    ) -> list[SearchResult]:
        """Rank for ``text``; ``counted=False`` keeps internal searches (duplicate checks) out of the
        metrics; ``with_usage`` adds each tool's :class:`ToolUsage`."""
        results = self._rank(agent_id, text, limit=limit, tags=tags, counted=counted)
        if with_usage and results:
            usage = self._executions.tool_usage([r.tool.tool_id for r in results])
            results = [attrs.evolve(r, usage=usage[r.tool.tool_id]) for r in results]
        return results

    def usage(self, tool_id: str) -> ToolUsage:
        """The usage of one tool (the caller checks it may see the tool)."""
        return self._executions.tool_usage([tool_id])[tool_id]

    def _rank(
        self, agent_id: str | None, text: str, *, limit: int, tags: Sequence[str], counted: bool
    ) -> list[SearchResult]:
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("a search needs words: say what the tool should do, e.g. 'convert miles to km'")
        if isinstance(tags, str):
            tags = (tags,)
        teams = frozenset() if agent_id is None else self._teams.teams_of(agent_id)
        query = SearchQuery(query_terms(text), visible_to=agent_id, teams=teams, tags=tuple(tags), limit=limit)
        depth = min(100, max(limit * 3, 30)) if self._embedder is not None else limit
        lexical = self._index.search(attrs.evolve(query, limit=depth)) if query.terms else []
        if counted:
            self._metrics.increment("searches", mode="hybrid" if self._embedder else "lexical")
        if self._embedder is None:
            return [SearchResult(h.tool, h.score.value, h.score.matched, h.score.value) for h in lexical]
        semantic = self._semantic(self._embedder, agent_id, teams, text, query.tags, depth)
        return self._fuse(lexical, semantic, limit)

    def _semantic(
        self,
        embedder: Embedder,
        agent_id: str | None,
        teams: frozenset[str],
        text: str,
        tags: tuple[str, ...],
        depth: int,
    ) -> list[tuple[Tool, float]]:
        wanted = frozenset(tags)
        keys = [
            (tool_id, version)
            for tool_id, version, tool_tags in self._tools.discoverable(agent_id, teams)
            if wanted <= frozenset(tool_tags)
        ]
        missing = [key for key in keys if key not in self._vectors]
        if missing:
            tools = [self._tools.get(tool_id) for tool_id, _ in missing]
            vectors = embedder.embed([_embedding_text(t) for t in tools])
            with self._lock:
                if len(self._vectors) + len(tools) > MAX_CACHED_VECTORS:
                    self._vectors.clear()  # old versions pile up; the next searches embed afresh
                for tool, vector in zip(tools, vectors, strict=True):
                    self._vectors[(tool.tool_id, tool.record_version)] = _unit(vector)
        query_vector = _unit(embedder.embed([text[:MAX_EMBEDDED_QUERY_CHARS]])[0])
        held = [key for key in keys if key in self._vectors]
        scored = list(zip(held, _similarities(query_vector, [self._vectors[key] for key in held]), strict=True))
        scored.sort(key=lambda pair: (-pair[1], pair[0][0]))
        best: list[tuple[Tool, float]] = []
        for (tool_id, _version), similarity in scored[:depth]:
            tool = self._tools.get(tool_id)
            # Re-checked on the record itself: it may have changed since it was listed.
            if tool.is_active and (agent_id is None or tool.can_discover(agent_id, teams)):
                best.append((tool, similarity))
        return best

    @staticmethod
    def _fuse(lexical: Sequence[SearchHit], semantic: list[tuple[Tool, float]], limit: int) -> list[SearchResult]:
        fused: dict[str, float] = {}
        tools: dict[str, Tool] = {}
        for rank, lexical_hit in enumerate(lexical):
            fused[lexical_hit.tool.tool_id] = 1.0 / (RRF_K + rank + 1)
            tools[lexical_hit.tool.tool_id] = lexical_hit.tool
        for rank, (tool, _) in enumerate(semantic):
            fused[tool.tool_id] = fused.get(tool.tool_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            tools[tool.tool_id] = tool
        lexical_by_id = {h.tool.tool_id: h for h in lexical}
        semantic_by_id = {t.tool_id: s for t, s in semantic}
        order = sorted(fused, key=lambda tool_id: (-fused[tool_id], tool_id))[:limit]
        results = []
        for tool_id in order:
            hit = lexical_by_id.get(tool_id)
            matched = hit.score.matched if hit is not None else ()
            if tool_id in semantic_by_id:
                matched += ("semantic",)
            results.append(
                SearchResult(
                    tools[tool_id],
                    fused[tool_id],
                    matched,
                    hit.score.value if hit is not None else 0.0,
                    semantic_by_id.get(tool_id),
                )
            )
        return results
