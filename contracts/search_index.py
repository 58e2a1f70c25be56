"""The contract every SearchIndex adapter must pass (with the tool records it indexes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import Tool, Visibility
from toolrt.domain.search import query_terms, rank_tools
from toolrt.ports import SearchHit, SearchIndex, SearchQuery, ToolQuery, ToolRecords


def reference_hits(tools: Sequence[Tool], query: SearchQuery) -> list[SearchHit]:
    """What every search index answers for ``query`` over ``tools`` (``toolrt.domain.search.rank_tools``)."""
    ranked = rank_tools(
        tools, query.terms, visible_to=query.visible_to, teams=query.teams, tags=query.tags, limit=query.limit
    )
    return [SearchHit(tool, score) for tool, score in ranked]


class SearchIndexContract:
    """Subclass and implement :meth:`make_search_index`: a fresh, empty store's tool records and the
    search index over them (often one object, returned twice)."""

    def make_search_index(self) -> tuple[ToolRecords, SearchIndex]:
        raise NotImplementedError

    @pytest.fixture
    def search_store(self) -> tuple[ToolRecords, SearchIndex]:
        return self.make_search_index()

    @pytest.fixture
    def records(self, search_store: tuple[ToolRecords, SearchIndex]) -> ToolRecords:
        return search_store[0]

    @pytest.fixture
    def index(self, search_store: tuple[ToolRecords, SearchIndex]) -> SearchIndex:
        return search_store[1]

    def test_is_a_search_index(self, index: SearchIndex) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(index, SearchIndex)

    def test_search_ranks_as_the_shared_scorer_does(self, records: ToolRecords, index: SearchIndex) -> None:
        """Hits, order, scores and matched fields are those of BM25F over exactly the visible tools."""
        tools = b.catalog(records)
        for agent in ("a", "b", None):
            for text in ("weather forecast for a city", "convert length", "city", "weather"):
                query = SearchQuery(query_terms(text), visible_to=agent)
                expected = reference_hits(tools, query)
                got = index.search(query)
                assert [(h.tool.tool_id, h.score.matched) for h in got] == [
                    (h.tool.tool_id, h.score.matched) for h in expected
                ], (agent, text)
                for mine, reference in zip(got, expected, strict=True):
                    assert mine.score.value == pytest.approx(reference.score.value)
                    assert mine.tool == reference.tool

    def test_search_never_shows_or_feels_another_agents_private_tools(
        self, records: ToolRecords, index: SearchIndex
    ) -> None:
        """b's private tools are not found by a, and do not move a's scores (corpus statistics are a's)."""
        b.catalog(records)
        query = SearchQuery(query_terms("weather station secret"), visible_to="a")
        before = [(h.tool.tool_id, h.score.value) for h in index.search(query)]
        assert before and all(tool_id != "s1" for tool_id, _ in before)
        for i in range(5):  # many private tools of b full of the same words
            records.add(
                b.searchable(
                    f"s{i + 2}", "b", f"weather_{i}", "weather station secret weather", visibility=Visibility.PRIVATE
                )
            )
        after = [(h.tool.tool_id, h.score.value) for h in index.search(query)]
        assert after == before

    def test_search_follows_updates_deactivation_and_deletion(self, records: ToolRecords, index: SearchIndex) -> None:
        """The index changes with the record: a new description is found, an old one not, inactive never."""
        tools = {t.tool_id: t for t in b.catalog(records)}
        changed = tools["u1"].with_version(b.definition("convert_units", description="Translate text to French"), b.T0)
        records.save(changed)
        assert [h.tool.tool_id for h in index.search(SearchQuery(query_terms("french"), visible_to="a"))] == ["u1"]
        assert index.search(SearchQuery(query_terms("imperial"), visible_to="a")) == []
        records.save(records.get("w1").deactivated(b.T0))
        found = [h.tool.tool_id for h in index.search(SearchQuery(query_terms("weather forecast"), visible_to="a"))]
        assert "w1" not in found and found == ["w2"]
        records.delete("w2")
        assert index.search(SearchQuery(query_terms("weather"), visible_to="a")) == []

    def test_search_returns_only_records_the_asker_may_see_while_they_change(
        self, records: ToolRecords, index: SearchIndex
    ) -> None:
        """While b flips its tool between public and private (another thread), every record a search
        returns to a is one a may see: visibility is decided on the very record returned."""
        b.catalog(records)
        flipped = b.searchable("f1", "b", "weather_flip", "weather now and then")
        records.add(flipped)
        stop = threading.Event()

        def flip() -> None:
            private = True
            while not stop.is_set():
                current = records.get("f1")
                visibility = Visibility.PRIVATE if private else Visibility.PUBLIC
                records.save(current.with_visibility(visibility, b.T0))
                private = not private

        flipper = threading.Thread(target=flip, name="contract-flipper")
        flipper.start()
        try:
            query = SearchQuery(query_terms("weather"), visible_to="a")
            for _ in range(150):
                for hit in index.search(query):
                    assert hit.tool.is_active and hit.tool.can_discover("a"), hit.tool.tool_id
        finally:
            stop.set()
            flipper.join(timeout=60)

    def test_search_by_tags_and_limit(self, records: ToolRecords, index: SearchIndex) -> None:
        """Tags keep tools carrying every one of them; the limit cuts the ranked list."""
        b.catalog(records)
        tagged = index.search(SearchQuery(query_terms("weather"), visible_to="a", tags=("weather",)))
        assert [h.tool.tool_id for h in tagged] == ["w2"]
        assert len(index.search(SearchQuery(query_terms("weather city"), visible_to="a", limit=1))) == 1
        assert index.search(SearchQuery((), visible_to="a")) == []

    def test_team_tools_are_listed_and_searched_only_through_their_team(
        self, records: ToolRecords, index: SearchIndex
    ) -> None:
        """A member of red finds red's tools, never blue's; scores use exactly its visible tools."""
        tools = b.team_catalog(records)
        stored = {t.tool_id: records.get(t.tool_id) for t in tools}
        assert stored["r1"].team == "red" and stored["r1"].visibility is Visibility.TEAM
        cases = [("a", frozenset({"red"})), ("a", frozenset()), ("b", frozenset()), ("c", frozenset({"blue", "red"}))]
        for agent, teams in cases:
            listed = {t.tool_id for t in records.list(ToolQuery(visible_to=agent, teams=teams))}
            assert listed == {t.tool_id for t in tools if t.can_discover(agent, teams)}, (agent, teams)
            keys = {tool_id for tool_id, _, _ in records.discoverable(agent, teams)}
            assert keys == listed
            for text in ("weather station", "red team radar", "city"):
                query = SearchQuery(query_terms(text), visible_to=agent, teams=teams)
                expected = reference_hits(tools, query)
                got = index.search(query)
                assert [h.tool.tool_id for h in got] == [h.tool.tool_id for h in expected], (agent, teams, text)
                for mine, reference in zip(got, expected, strict=True):
                    assert mine.score.value == pytest.approx(reference.score.value)
        # b owns k1 (blue) without being in blue: its owner still finds it.
        assert "k1" in {h.tool.tool_id for h in index.search(SearchQuery(query_terms("blue"), visible_to="b"))}

    def test_a_tool_moving_to_and_from_a_team_moves_in_search(self, records: ToolRecords, index: SearchIndex) -> None:
        """Visibility changes re-index the tool: found by the team while team, by nobody else after."""
        tools = b.team_catalog(records)
        del tools
        query = SearchQuery(query_terms("radar"), visible_to="a", teams={"red"})
        assert [h.tool.tool_id for h in index.search(query)] == ["r1"]
        records.save(records.get("r1").with_visibility(Visibility.PRIVATE, b.T0))
        assert (
            index.search(query) == []
            and records.list(ToolQuery(visible_to="a", teams={"red"}, name="red_weather")) == []
        )
        records.save(records.get("r1").with_visibility(Visibility.TEAM, b.T0, team="red"))
        assert [h.tool.tool_id for h in index.search(query)] == ["r1"]
