"""Tool search: the analyzer, BM25F, visibility of results and of statistics, and hybrid ranking."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import memory_runtime
from toolrt.adapters.embedders import SentenceTransformerEmbedder, build_embedder
from toolrt.adapters.memory import InMemoryToolRepository
from toolrt.adapters.shared.tools import InProcessSearch
from toolrt.contracts import builders as b
from toolrt.domain import MissingDependencyError, NotFoundError, Tool, ValidationError, Visibility
from toolrt.domain.search import (
    FIELDS,
    MAX_QUERY_TERMS,
    CorpusStats,
    SearchDocument,
    analyze,
    query_terms,
    rank,
    score,
)
from toolrt.ports import SearchQuery

WORDS = ["weather", "forecast", "city", "convert", "units", "length", "stock", "price", "email", "send", "tide"]


def test_analyzer_splits_identifiers_folds_case_drops_stop_words_and_stems() -> None:
    """ "getWeatherForecasts for the City" and "get_weather_forecast city" give the same terms."""
    assert analyze("getWeatherForecasts for the City") == ["get", "weather", "forecast", "citi"]
    assert analyze("get_weather_forecast city") == ["get", "weather", "forecast", "citi"]
    assert analyze("HTTPResponse2xx") == ["http", "respons", "2", "xx"]
    assert analyze("") == [] and analyze("the of a") == []


@given(st.text(max_size=200))
def test_analyzed_terms_are_lowercase_words_free_of_separators(text: str) -> None:
    """Whatever the text, terms are non-empty, lower-case and hold no space, underscore or quote
    (so adapters can store them space-separated and quote them in an FTS5 query)."""
    for term in analyze(text):
        assert term and term == term.lower()
        assert not any(c in term for c in ' _"\t\n')


def _doc(tool_id: str, **fields: str) -> SearchDocument:
    return SearchDocument(tool_id, {name: tuple(analyze(fields.get(name, ""))) for name in FIELDS})


fields_strategy = st.fixed_dictionaries({name: st.lists(st.sampled_from(WORDS), max_size=6) for name in FIELDS})


@given(st.lists(fields_strategy, min_size=1, max_size=8), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_a_document_scores_above_zero_exactly_when_it_holds_a_query_term(
    docs: list[dict[str, list[str]]], words: list[str]
) -> None:
    """And the matched fields are exactly the fields holding a query term."""
    documents = [_doc(f"t{i}", **{k: " ".join(v) for k, v in d.items()}) for i, d in enumerate(docs)]
    terms = query_terms(" ".join(words))
    stats = CorpusStats.of(documents, terms)
    for document in documents:
        result = score(terms, document, stats)
        holding = [name for name in FIELDS if set(document.fields[name]) & set(terms)]
        assert (result.value > 0) == bool(holding)
        assert list(result.matched) == holding


def test_a_term_in_the_name_outranks_the_same_term_in_parameters() -> None:
    """Field weights: what a tool is called says more than what it takes."""
    docs = [
        _doc("by-name", name="send_email", description="Deliver a message"),
        _doc("by-param", name="notify", params="email address"),
    ]
    terms = query_terms("email")
    ranked = rank(terms, docs, CorpusStats.of(docs, terms), 10)
    assert [d.tool_id for d, _ in ranked] == ["by-name", "by-param"]


owners = st.sampled_from(["alice", "bob", "mallory"])
visibilities = st.sampled_from([Visibility.PRIVATE, Visibility.PUBLIC])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(owners, visibilities, st.lists(st.sampled_from(WORDS), min_size=1, max_size=5)), max_size=12),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    owners,
)
def test_a_search_is_exactly_the_search_of_the_visible_tools_alone(
    specs: list[tuple[str, Visibility, list[str]]], words: list[str], agent: str
) -> None:
    """What an agent gets (tools, order, scores) is what it would get if other agents' private tools
    did not exist: they are neither returned nor felt through the statistics."""
    tools = [
        Tool.create(
            tool_id=f"t{i}",
            owner=owner,
            definition=b.definition(f"tool_{i}", description=" ".join(desc)),
            visibility=visibility,
            now=b.T0,
        )
        for i, (owner, visibility, desc) in enumerate(specs)
    ]
    visible = [t for t in tools if t.can_discover(agent)]
    query = SearchQuery(query_terms(" ".join(words)), visible_to=agent, limit=100)
    everything, alone = InMemoryToolRepository(), InMemoryToolRepository()
    for tool in tools:
        everything.add(tool)
    for tool in visible:
        alone.add(tool)
    got = [(h.tool.tool_id, h.score.value) for h in everything.search(query)]
    assert got == [(h.tool.tool_id, h.score.value) for h in alone.search(query)]
    assert {tool_id for tool_id, _ in got} <= {t.tool_id for t in visible}
    assert got == [(h.tool.tool_id, h.score.value) for h in InProcessSearch().search(list(reversed(tools)), query)]


# -- the use case, through the runtime ---------------------------------------------------------------

ECHO = "def handler(**params):\n    return params\n"


def _register(
    rt: object,
    agent: str,
    name: str,
    description: str,
    visibility: str = "public",
    on_duplicate: str = "warn",
    **extra: object,
) -> str:
    definition = {"name": name, "description": description, "language": "python", "code": ECHO, **extra}
    registration = rt.register_tool(agent, definition, visibility, on_duplicate=on_duplicate)  # type: ignore[attr-defined]
    return registration.tool_id  # type: ignore[no-any-return]


def test_search_tools_ranks_what_the_agent_may_discover_and_nothing_else() -> None:
    """A hostile agent's search never returns, nor is scored against, another agent's private tool."""
    rt = memory_runtime()
    forecast = _register(rt, "alice", "city_forecast", "Weather forecast for a city")
    _register(rt, "alice", "alice_weather_diary", "Alice's private weather notes", "private")
    mine = _register(rt, "mallory", "probe_weather", "weather weather", "private")
    found = rt.search_tools("mallory", "weather forecast")
    assert [r.tool.tool_id for r in found] == [forecast, mine]
    assert found[0].matched == ("name", "description") and found[0].score == found[0].lexical_score
    assert found[0].semantic_score is None
    assert [r.tool.name for r in rt.search_tools("alice", "weather notes")][0] == "alice_weather_diary"
    assert rt.search_tools(None, "diary")[0].tool.name == "alice_weather_diary"  # the owner's view
    assert rt.metrics()["counters"]["searches|mode=lexical"] == 3


def test_search_tools_filters_by_tags_and_cuts_at_the_limit() -> None:
    rt = memory_runtime()
    _register(rt, "alice", "forecast_a", "weather forecast", tags=["weather"])
    _register(rt, "alice", "forecast_b", "weather forecast")
    assert [r.tool.name for r in rt.search_tools("bob", "forecast", tags=["weather"])] == ["forecast_a"]
    assert len(rt.search_tools("bob", "forecast", limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ("", {}, "needs words"),
        ("   ", {}, "needs words"),
        ("weather", {"limit": 0}, "limit must be"),
        ("weather", {"limit": 101}, "limit must be"),
        ("weather", {"limit": True}, "limit must be"),
    ],
)
def test_bad_searches_are_refused_clearly(query: str, options: dict[str, object], message: str) -> None:
    rt = memory_runtime()
    with pytest.raises(ValidationError, match=message):
        rt.search_tools("alice", query, **options)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="agent_id"):
        rt.search_tools(" ", "weather")


LONG_REQUEST = (
    "Hi! I am planning a road trip across Europe next summer with my family and we keep arguing about "
    "distances, because the maps my kids use are all in miles while the road signs are in kilometres. "
) * 12 + "Could you convert miles to kilometres for each leg of the trip? Thanks a lot, and have a good day."


def test_a_whole_user_request_finds_the_tool_it_asks_for() -> None:
    """A request of several thousand characters (an agent passing the user's message) is searched,
    not refused: the terms it repeats and the rarer ones among the visible tools decide."""
    rt = memory_runtime()
    _register(rt, "alice", "miles_to_km", "Convert a distance in miles to kilometres.")
    _register(rt, "alice", "trip_planner", "Plan a family holiday.")
    _register(rt, "alice", "word_count", "Count the words of a text.")
    assert len(LONG_REQUEST) > 2000
    found = rt.search_tools("alice", LONG_REQUEST)
    assert found and found[0].tool.name == "miles_to_km"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=400))
def test_a_query_keeps_a_bounded_set_of_its_own_terms_in_order(words: list[str]) -> None:
    """However long, a request gives at most MAX_QUERY_TERMS distinct terms, all its own, in the
    order they first appear; a short request keeps every term."""
    text = " ".join(words)
    terms, every = query_terms(text), list(dict.fromkeys(analyze(text)))
    assert len(terms) == len(set(terms)) <= MAX_QUERY_TERMS
    assert set(terms) <= set(every) and list(terms) == [t for t in every if t in terms]
    if len(every) <= MAX_QUERY_TERMS:
        assert list(terms) == every


class ConceptEmbedder:
    """A toy embedder: each word maps to a concept, so synonyms share a vector without sharing a word."""

    CONCEPTS = {"weather": 0, "forecast": 0, "temperature": 0, "rain": 0, "money": 1, "price": 1, "cost": 1}
    model = "concepts-1"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += texts
        vectors = []
        for text in texts:
            vector = [0.0, 0.0, 0.01]
            for word in text.lower().replace(".", " ").split():
                if word in self.CONCEPTS:
                    vector[self.CONCEPTS[word]] += 1.0
            vectors.append(vector)
        return vectors


def test_an_embedder_finds_tools_described_in_other_words_and_fuses_both_rankings() -> None:
    """ "temperature" shares no word with the forecast tool: only the semantic ranking finds it."""
    embedder = ConceptEmbedder()
    rt = memory_runtime(embedder=embedder)
    forecast = _register(rt, "alice", "city_forecast", "Weather forecast for a city")
    _register(rt, "alice", "stock_price", "Price of a stock")
    # on_duplicate="create": bob's own duplicate check would embed his tool (for bob, legitimately)
    _register(rt, "bob", "bobs_rain_log", "rain rain rain", "private", on_duplicate="create")
    found = rt.search_tools("mallory", "temperature tomorrow")
    assert found[0].tool.tool_id == forecast and found[0].matched == ("semantic",)
    assert found[0].lexical_score == 0.0 and found[0].semantic_score is not None and found[0].semantic_score > 0.9
    assert all(r.tool.owner != "bob" for r in found)  # never embedded for, nor shown to, mallory
    assert not any("rain rain" in text for text in embedder.texts)
    both = rt.search_tools("mallory", "weather forecast")
    assert both[0].tool.tool_id == forecast and both[0].matched == ("name", "description", "semantic")
    embedded = len(embedder.texts)
    rt.search_tools("mallory", "stock cost")
    assert len(embedder.texts) == embedded + 1  # tool vectors are cached: only the query is embedded
    assert rt.metrics()["counters"]["searches|mode=hybrid"] == 3


def test_the_sentence_transformer_embedder_wraps_any_model_and_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loaded model is used as given (vectors as floats); without the extra, a clear error."""

    class Model:
        def encode(self, texts: list[str], **options: object) -> list[list[float]]:
            assert options["normalize_embeddings"] is True
            return [[1, 0] for _ in texts]

    embedder = SentenceTransformerEmbedder(Model(), name="tiny")
    assert embedder.model == "sentence-transformers:tiny"
    assert embedder.embed(["a", "b"]) == [[1.0, 0.0], [1.0, 0.0]] and embedder.embed([]) == []
    assert build_embedder("none") is None
    with pytest.raises(ValidationError, match="none, minilm"):
        build_embedder("gpt")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sentence_transformers" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r"toolrt\[semantic\]"):
        SentenceTransformerEmbedder().embed(["weather"])
    with pytest.raises(MissingDependencyError, match=r"search_embedder=\"minilm\".*toolrt\[semantic\]"):
        build_embedder("minilm")  # at connect time, not at the first search
    with pytest.raises(ValidationError, match="batch_size"):
        SentenceTransformerEmbedder(batch_size=0)


def test_usage_counts_recent_calls_by_anyone_as_aggregates_only() -> None:
    """An agent can prefer tools that work: calls, distinct callers and success rate of visible tools,
    never who called or with what; a private tool's usage is not found for anyone else."""
    rt = memory_runtime()
    tool = _register(rt, "alice", "city_forecast", "Weather forecast for a city")
    private = _register(rt, "alice", "diary", "Alice's diary", "private")
    for agent in ("bob", "bob", "carol"):
        assert rt.execute_tool(agent, tool, {"city": "Oslo"}).ok
    found = rt.search_tools("mallory", "weather forecast", with_usage=True)[0]
    assert found.usage is not None
    assert (found.usage.executions, found.usage.distinct_callers, found.usage.success_rate) == (3, 2, 1.0)
    assert rt.search_tools("mallory", "weather forecast")[0].usage is None  # only when asked
    assert rt.tool_usage("mallory", tool).executions == 3
    with pytest.raises(NotFoundError):
        rt.tool_usage("mallory", private)
    assert rt.tool_usage("alice", private).success_rate is None  # no calls yet
