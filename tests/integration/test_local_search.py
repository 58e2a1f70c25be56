"""The local search index: SQLite FTS5 in the store's own file, kept with the records, rebuilt by the doctor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.adapters.local.sqlite_repository import SCHEMA_VERSION, SEARCH_SCHEMA, SqliteToolRepository
from toolrt.adapters.system import SystemClock
from toolrt.application.repair_store import Problem, RepairRequest, RepairStore
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, Tool, ValidationReport, Visibility, normalize_code
from toolrt.domain.search import query_terms
from toolrt.ports import SearchQuery


def _tool(tool_id: str, owner: str, name: str, description: str, public: bool = True) -> Tool:
    visibility = Visibility.PUBLIC if public else Visibility.PRIVATE
    definition = b.definition(name, description=description)
    return Tool.create(tool_id=tool_id, owner=owner, definition=definition, visibility=visibility, now=b.T0)


def _found(
    repo: SqliteToolRepository, text: str, agent: str = "a", teams: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    return [h.tool.tool_id for h in repo.search(SearchQuery(query_terms(text), visible_to=agent, teams=teams))]


def test_a_store_from_before_search_is_indexed_when_opened(tmp_path: Path) -> None:
    """Opening a schema-1 database adds the index and fills it from the records in the same step."""
    db = tmp_path / "tools.sqlite"
    with SqliteToolRepository(db) as repo:
        repo.add(_tool("w1", "a", "city_forecast", "Weather forecast"))
        repo.add(_tool("p1", "a", "my_notes", "Private weather notes", public=False))
    _downgrade(db, SEARCH_SCHEMA - 1)  # back to what an older toolrt wrote: no search tables at all
    with SqliteToolRepository(db) as repo:
        assert repo.schema_version() == SCHEMA_VERSION
        assert sorted(_found(repo, "weather")) == ["p1", "w1"]
        assert _found(repo, "weather", agent="b") == ["w1"]
        assert repo.search_index_problems() == []


def test_a_store_from_before_teams_keeps_its_index_and_learns_teams(tmp_path: Path) -> None:
    """A schema-2 database (search, no teams) opens as the current schema: same hits, and team
    tools are indexed and found by members only."""
    db = tmp_path / "tools.sqlite"
    with SqliteToolRepository(db) as repo:
        repo.add(_tool("w1", "a", "city_forecast", "Weather forecast"))
        repo.add(_tool("p1", "a", "my_notes", "Private weather notes", public=False))
    _downgrade(db, SEARCH_SCHEMA)
    with SqliteToolRepository(db) as repo:
        assert repo.schema_version() == SCHEMA_VERSION
        assert sorted(_found(repo, "weather")) == ["p1", "w1"]
        repo.add(
            attrs.evolve(
                _tool("r1", "b", "red_radar", "Weather radar", public=False), visibility=Visibility.TEAM, team="red"
            )
        )
        assert _found(repo, "radar", agent="c") == []
        assert _found(repo, "radar", agent="c", teams={"red"}) == ["r1"]
        assert repo.search_index_problems() == []


def _downgrade(db: Path, version: int) -> None:
    # Undo the schema steps past ``version`` on a database this toolrt wrote (its records kept).
    raw = sqlite3.connect(db)
    if version < 4:
        raw.execute("DROP INDEX executions_by_time")
        raw.execute("DROP INDEX executions_by_tool_time")
        raw.execute("CREATE INDEX executions_by_tool ON executions (tool_id, created_at)")
        for column in ("created_min", "version", "wall_ms", "error_type", "isolation"):
            raw.execute(f"ALTER TABLE executions DROP COLUMN {column}")
        raw.execute("DROP TABLE counters")
    if version < 3:
        raw.execute("DROP INDEX tools_by_team")
        raw.execute("ALTER TABLE tools DROP COLUMN team")
        raw.execute("DROP TABLE team_members")
        raw.execute("ALTER TABLE executions DROP COLUMN caller")
        raw.execute("ALTER TABLE search_totals DROP COLUMN owner")
        raw.execute("ALTER TABLE search_totals DROP COLUMN team")
    if version < SEARCH_SCHEMA:
        for table in ("search_public_vocab", "search_public", "search_private", "search_totals"):
            raw.execute(f"DROP TABLE {table}")
    raw.execute(f"PRAGMA user_version = {version}")
    raw.commit()
    raw.close()


def test_the_doctor_finds_a_damaged_index_and_rebuilds_it(tmp_path: Path) -> None:
    """Entries lost or left behind are reported; --repair rebuilds the index from the records."""
    db = tmp_path / "tools.sqlite"
    repo, artifacts = SqliteToolRepository(db), FileArtifactStore(tmp_path / "artifacts")
    for tool in (_tool("w1", "a", "city_forecast", "Weather forecast"), _tool("w2", "a", "tide_table", "Tides")):
        definition = tool.definition
        artifacts.put(
            Artifact(
                code_hash=definition.code_hash,
                language=definition.language,
                code=normalize_code(definition.code),
                entrypoint=definition.entrypoint,
                report=ValidationReport(policy_version="test-1"),
                created_at=b.T0,
            )
        )
        repo.add(tool)
    doctor = RepairStore(tools=repo, references=repo, index=repo, artifacts=artifacts, clock=SystemClock())
    assert doctor.execute(RepairRequest()).clean
    raw = sqlite3.connect(db)
    raw.execute("DELETE FROM search_public WHERE rowid = (SELECT rowid FROM tools WHERE tool_id = 'w1')")
    raw.commit()
    raw.close()
    assert _found(repo, "forecast") == []
    report = doctor.execute(RepairRequest())
    assert [(f.problem, f.repairable) for f in report.findings] == [(Problem.SEARCH_INDEX, True)]
    assert "missing from the search index" in report.findings[0].message
    repaired = doctor.execute(RepairRequest(repair=True))
    assert [a.ok for a in repaired.actions] == [True] and "2 tools" in repaired.actions[0].action
    assert _found(repo, "forecast") == ["w1"]
    assert doctor.execute(RepairRequest()).clean
    repo.close()


def test_visibility_changes_move_a_tool_between_the_public_and_private_index(tmp_path: Path) -> None:
    """Making a tool private takes it out of every other agent's search at once, and back."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    tool = _tool("w1", "a", "city_forecast", "Weather forecast")
    repo.add(tool)
    assert _found(repo, "forecast", agent="b") == ["w1"]
    repo.save(tool.with_visibility(Visibility.PRIVATE, b.T0))
    assert _found(repo, "forecast", agent="b") == [] and _found(repo, "forecast") == ["w1"]
    assert repo.search_index_problems() == []
    repo.close()


def test_shipped_templates_run_for_real_in_the_sandbox(tmp_path: Path) -> None:
    """Each shipped template, filled in, registers on the local profile and answers correctly."""
    import toolrt

    with toolrt.connect("local", data_dir=tmp_path / "data") as rt:
        values = {
            "tool_name": "c_to_f",
            "from_unit": "Celsius",
            "to_unit": "Fahrenheit",
            "factor": "1.8",
            "offset": "32",
        }
        converter = rt.create_from_template("alice", "unit_converter", values)
        assert rt.execute_tool("alice", converter.tool_id, {"value": 100}).output == 212
        field = rt.create_from_template("alice", "json_field", {"tool_name": "second_b", "what": "b"})
        call = rt.execute_tool("alice", field.tool_id, {"document": '{"a": [1, {"b": 2}]}', "path": "a.1.b"})
        assert call.ok and call.output == 2
        assert [r.tool.name for r in rt.search_tools("bob", "fahrenheit")] == []  # alice's, private
        assert [r.tool.name for r in rt.search_tools("alice", "fahrenheit")] == ["c_to_f"]


def test_which_own_tools_are_scored_never_depends_on_other_agents_private_tools(tmp_path: Path) -> None:
    """Candidates in the agent's own scope are not ordered or cut by FTS5's table-wide bm25(): the
    same search gives the same answer whatever another agent keeps privately (helper's attack)."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    for i in range(60):
        repo.add(_tool(f"m{i:03}", "mallory", f"alpha_{i}", "alpha alpha", public=False))
    repo.add(_tool("mz", "mallory", "zebra_tool", "zebraword", public=False))
    query = SearchQuery(query_terms("alpha zebraword"), visible_to="mallory", limit=10)
    before = [(h.tool.tool_id, h.score.value) for h in repo.search(query)]
    for i in range(80):
        repo.add(_tool(f"v{i:03}", "victim", f"secret_{i}", "zebraword zebraword", public=False))
    assert [(h.tool.tool_id, h.score.value) for h in repo.search(query)] == before
    assert before[0][0] == "mz"
    repo.close()


def test_tools_holding_only_common_words_still_fill_the_results(tmp_path: Path) -> None:
    """Candidates come from rare terms first, then from common ones while there is room, so the
    local profile answers as the memory profile does."""
    repo = SqliteToolRepository(tmp_path / "tools.sqlite")
    for i in range(150):
        repo.add(_tool(f"w{i:03}", "alice", f"weather_{i}", "weather report"))
    repo.add(_tool("zoo", "alice", "zoo", "zebra facts"))
    repo.add(_tool("mine", "mallory", "my_weather", "weather", public=False))
    found = [h.tool.tool_id for h in repo.search(SearchQuery(query_terms("weather zebra"), visible_to="mallory"))]
    assert found[0] == "zoo" and "mine" in found and len(found) == 10
    repo.close()


def test_a_whole_user_request_is_searched_on_the_local_store(tmp_path: Path) -> None:
    """An agent that passes a user's whole message (thousands of characters, hundreds of words) gets
    the tool it asks for from the local profile, as from the memory profile, never a refusal."""
    import toolrt

    request = (
        "Hello there, I hope you are well. I have a long story about my garden, my neighbours, my cat "
        "and the weather last spring, and many other things that do not matter at all. "
    ) * 30 + "In the end what I need: count the words of this text, please."
    with toolrt.connect("local", data_dir=tmp_path / "data") as rt:
        for name, description in [
            ("word_count", "Count the words of a text."),
            ("garden_planner", "Plan the beds of a garden."),
            ("cat_feeder", "Schedule the cat's meals."),
        ]:
            rt.register_tool("alice", b.definition(name, description=description), "public")
        assert len(request) > 4000
        found = rt.search_tools("bob", request)
        assert found and found[0].tool.name == "word_count"
