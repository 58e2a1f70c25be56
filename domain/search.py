"""Lexical search over tools: one analyzer and one BM25F scorer that every profile shares.

Why the scoring lives here and not in SQLite's ``bm25()``: a score is only private if the corpus
statistics behind it are. FTS5 ranks with statistics over the *whole* table, so the score of an
agent's search would move with the words in other agents' private tools, and a hostile agent could
count them (register a tool holding ``secret_api``, search for it, read the IDF). Here the
statistics are always those of the tools the searching agent may discover (public tools plus its
own), so a search answers the same whatever other agents keep privately. Adapters find candidates
(SQLite through FTS5) and hand the scorer the visible statistics; the memory, SQLite and DynamoDB
profiles then rank the same corpus identically (the repository contract checks it).

The analyzer splits identifiers (``getWeatherForecast``, ``get_weather``; letters of any script stay
in their word), folds case, drops common
English words and stems with the Snowball English stemmer (the ``snowballstemmer`` package, the
one Sphinx uses), so "forecasts for a city" finds ``city_forecast``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import attrs

from toolrt.domain.models import Tool, ToolDefinition, ToolStatus

#: The fields a tool is searched by, in the order adapters store them.
FIELDS: tuple[str, ...] = ("name", "description", "params", "tags")

#: How much a term counts in each field. A term in the name says most about what a tool does; tags
#: are chosen labels; parameter names and descriptions say what a tool takes more than what it does.
FIELD_WEIGHTS: Mapping[str, float] = {"name": 3.0, "description": 1.0, "params": 0.5, "tags": 1.5}

#: Okapi BM25's saturation and length normalisation, at their usual values.
K1 = 1.2
B = 0.75

# Words that carry no meaning in a tool request ("get me the weather for a city"). Kept short on
# purpose: "get", "list" or "find" are not here, since tool names are built from them.
_STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how i if in
    into is it its me my of on or our please should so some than that the their them then there these
    this those to us was we were what when where which while who whom why will with would you your""".split()
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_TERM = 40


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    # Imported here: the package loads the stemmers of its thirty languages (tens of milliseconds),
    # which only a search or a registration needs.
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    stemmed: str = _stemmer().stemWord(word)
    return stemmed


def _parts(token: str) -> Iterator[str]:
    # Splits "getHTTPResponse2xx" into get, HTTP, Response, 2, xx, with Unicode's idea of case
    # ("Zürich", "İstanbul" and "café" stay whole): a cut before an upper-case letter that follows
    # a lower-case one, before the last capital of a run followed by a lower-case letter, and
    # between digits and letters.
    start = 0
    for i in range(1, len(token)):
        before, here = token[i - 1], token[i]
        after = token[i + 1] if i + 1 < len(token) else ""
        if (
            before.isdigit() != here.isdigit()
            or (before.islower() and here.isupper())
            or (before.isupper() and here.isupper() and after.islower())
        ):
            yield token[start:i]
            start = i
    yield token[start:]


def _words(text: str) -> Iterator[str]:
    for token in _WORD.findall(text):
        for part in _parts(token):
            word = part.lower()
            if word and word not in _STOPWORDS and len(word) <= _MAX_TERM:
                yield word


def analyze(text: str) -> list[str]:
    """The search terms of ``text``, in order: identifiers split, lower-cased, stop words gone, stemmed."""
    return [_stem(word) for word in _words(text)]


def _schema_text(schema: Any, depth: int = 0) -> Iterator[str]:
    # Parameter names and descriptions, and the string values of enums, at any depth (bounded).
    if depth > 8 or not isinstance(schema, dict):
        return
    description = schema.get("description")
    if isinstance(description, str):
        yield description
    for value in schema.get("enum", ()) if isinstance(schema.get("enum"), list) else ():
        if isinstance(value, str):
            yield value
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, child in properties.items():
            yield str(name)
            yield from _schema_text(child, depth + 1)
    for child in _subschemas(schema):
        yield from _schema_text(child, depth + 1)


def _subschemas(schema: dict[str, Any]) -> Iterator[Any]:
    # The schemas of array items, of other properties and of each branch.
    yield schema.get("items")
    yield schema.get("additionalProperties")
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            yield from branches


def field_texts(definition: ToolDefinition) -> dict[str, str]:
    """The raw text of each search field of ``definition`` (see :data:`FIELDS`)."""
    return {
        "name": definition.name,
        "description": definition.description,
        "params": " ".join(_schema_text(definition.input_schema)),
        "tags": " ".join(definition.tags),
    }


@attrs.frozen
class SearchDocument:
    """A tool as the scorer sees it: the analyzed terms of each field."""

    tool_id: str
    fields: Mapping[str, tuple[str, ...]]
    # Derived once: every distinct term, and the weighted length BM25F normalises by.
    vocabulary: frozenset[str] = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(lambda self: frozenset().union(*self.fields.values()), takes_self=True),
    )
    length: float = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(
            lambda self: sum(FIELD_WEIGHTS[name] * len(terms) for name, terms in self.fields.items()), takes_self=True
        ),
    )

    @classmethod
    def of(cls, tool_id: str, definition: ToolDefinition) -> SearchDocument:
        """The document of a tool's current definition."""
        return cls(tool_id, {name: tuple(analyze(text)) for name, text in field_texts(definition).items()})

    @classmethod
    def from_columns(cls, tool_id: str, columns: Iterable[str]) -> SearchDocument:
        """Rebuild from stored columns: the analyzed terms of each field, space-separated, in FIELDS order."""
        return cls(tool_id, {name: tuple(column.split()) for name, column in zip(FIELDS, columns, strict=True)})

    def columns(self) -> tuple[str, ...]:
        """The analyzed terms of each field, space-separated, in FIELDS order (what adapters store)."""
        return tuple(" ".join(self.fields.get(name, ())) for name in FIELDS)


@attrs.frozen
class CorpusStats:
    """Statistics of the documents a search may see: their count, total length and term frequencies.

    ``document_frequency`` only needs the query's terms.
    """

    documents: int
    total_length: float
    document_frequency: Mapping[str, int]

    @classmethod
    def of(cls, documents: Iterable[SearchDocument], terms: Iterable[str]) -> CorpusStats:
        """The statistics of ``documents`` for ``terms``."""
        wanted = frozenset(terms)
        count, total, frequency = 0, 0.0, Counter[str]()
        for document in documents:
            count += 1
            total += document.length
            frequency.update(wanted & document.vocabulary)
        return cls(count, total, dict(frequency))

    def idf(self, term: str) -> float:
        """Okapi BM25's inverse document frequency (never negative)."""
        n = self.document_frequency.get(term, 0)
        return math.log(1.0 + (self.documents - n + 0.5) / (n + 0.5))


@attrs.frozen
class Score:
    """A document's relevance to a query, and the fields any query term was found in."""

    value: float
    matched: tuple[str, ...]


#: A request longer than this is read up to here (an agent may pass a user's whole message).
MAX_QUERY_TEXT = 20_000
#: At most this many distinct terms search: the ones the request repeats most, first met first on
#: ties. The ranking then weighs them by rarity (BM25's IDF) among the tools the searcher may see.
MAX_QUERY_TERMS = 32


def query_terms(text: str) -> tuple[str, ...]:
    """The distinct analyzed terms of a search request, in order of first appearance.

    However long the request, the work is bounded: the first :data:`MAX_QUERY_TEXT` characters are
    analyzed and the :data:`MAX_QUERY_TERMS` most frequent terms kept.
    """
    counts = Counter(analyze(text[:MAX_QUERY_TEXT]))  # insertion-ordered: first appearance
    if len(counts) <= MAX_QUERY_TERMS:
        return tuple(counts)
    order = {term: index for index, term in enumerate(counts)}
    kept = sorted(counts, key=lambda term: (-counts[term], order[term]))[:MAX_QUERY_TERMS]
    return tuple(sorted(kept, key=order.__getitem__))


def score(terms: Iterable[str], document: SearchDocument, stats: CorpusStats) -> Score:
    """BM25F of ``document`` for ``terms`` (already analyzed) under ``stats``.

    Each term's frequency is summed over fields with :data:`FIELD_WEIGHTS`, then saturated once
    (Robertson and Zaragoza's BM25F), so a term repeated across fields does not count as many terms.
    """
    average = stats.total_length / stats.documents if stats.documents else 1.0
    norm = K1 * (1.0 - B + B * document.length / (average or 1.0))
    value = 0.0
    matched: set[str] = set()
    for term in terms:
        if term not in document.vocabulary:
            continue
        weighted = 0.0
        for name, field_terms in document.fields.items():
            found = field_terms.count(term)
            if found:
                weighted += FIELD_WEIGHTS[name] * found
                matched.add(name)
        value += stats.idf(term) * weighted * (K1 + 1.0) / (weighted + norm)
    return Score(value, tuple(name for name in FIELDS if name in matched))


def rank(
    terms: tuple[str, ...], documents: Iterable[SearchDocument], stats: CorpusStats, limit: int
) -> list[tuple[SearchDocument, Score]]:
    """The ``limit`` best documents with a positive score, best first (ties by tool id)."""
    scored = [(document, score(terms, document, stats)) for document in documents]
    hits = [(d, s) for d, s in scored if s.value > 0.0]
    hits.sort(key=lambda pair: (-pair[1].value, pair[0].tool_id))
    return hits[:limit]


def discoverable_tools(
    tools: Iterable[Tool], visible_to: str | None, teams: frozenset[str] = frozenset()
) -> list[Tool]:
    """The active tools of ``tools`` that ``visible_to`` (a member of ``teams``) may discover; every
    active tool for None: the corpus a search by ``visible_to`` ranks, and nothing else."""
    return [
        t for t in tools if t.status is ToolStatus.ACTIVE and (visible_to is None or t.can_discover(visible_to, teams))
    ]


def rank_tools(
    tools: Iterable[Tool],
    terms: tuple[str, ...],
    *,
    visible_to: str | None,
    teams: frozenset[str] = frozenset(),
    tags: Iterable[str] = (),
    limit: int,
    document: Callable[[Tool], SearchDocument] | None = None,
) -> list[tuple[Tool, Score]]:
    """The tools a search by ``visible_to`` finds among ``tools``, best first: BM25F over the
    statistics of exactly :func:`discoverable_tools`, keeping those whose current version carries
    every one of ``tags``. The reference every store's search index answers as. ``document`` gives a
    tool's analyzed document (a store may keep them; analyzed afresh when None)."""
    visible = discoverable_tools(tools, visible_to, teams)
    analyzed = document or (lambda t: SearchDocument.of(t.tool_id, t.definition))
    by_id = {t.tool_id: t for t in visible}
    documents = [analyzed(t) for t in visible]
    stats = CorpusStats.of(documents, terms)
    wanted = frozenset(tags)
    candidates = [d for d in documents if wanted <= frozenset(by_id[d.tool_id].definition.tags)]
    return [(by_id[d.tool_id], s) for d, s in rank(terms, candidates, stats, limit)]
