"""Near-duplicates at registration: structural hashes, on_duplicate, and what a hostile agent may learn."""

from __future__ import annotations

import keyword

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes import memory_runtime
from tests.unit.test_search import ConceptEmbedder
from toolrt.application.duplicates import DuplicateKind
from toolrt.domain import ConflictError, ValidationError
from toolrt.domain.structure import structural_hash

ADD = "def handler(a: int, b: int) -> int:\n    return a + b\n"
ADD_RENAMED = '''def plus(x, y):
    """Sum two numbers."""
    # the same thing, written differently
    total = x + y

    return total
'''
ADD_LOCAL = "def handler(a: int, b: int) -> int:\n    total = a + b\n    return total\n"
SUB = "def handler(a: int, b: int) -> int:\n    return a - b\n"
JS_ADD = "export function handler(a, b) {\n  return a + b; // sum\n}\n"
JS_ADD_RENAMED = "export function run(x, y) { /* add */ return x + y }\n"


def _definition(
    name: str, code: str, language: str = "python", description: str = "Add two numbers"
) -> dict[str, object]:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    return {"name": name, "description": description, "language": language, "code": code, "input_schema": schema}


def test_structural_hashes_ignore_names_layout_comments_and_docstrings_but_not_behaviour() -> None:
    assert structural_hash("python", ADD_LOCAL) == structural_hash("python", ADD_RENAMED)
    assert structural_hash("python", ADD_LOCAL) != structural_hash("python", SUB)
    assert structural_hash("python", "import math\ndef f(x):\n    return math.floor(x)\n") != structural_hash(
        "python", "import math\ndef f(x):\n    return math.ceil(x)\n"
    )
    assert structural_hash("javascript", JS_ADD.replace("export ", "")) == structural_hash(
        "javascript", JS_ADD_RENAMED.replace("export ", "")
    )
    assert structural_hash("javascript", "f(a.max)") != structural_hash("javascript", "f(a.min)")
    assert structural_hash("javascript", JS_ADD) != structural_hash("typescript", JS_ADD)  # languages never mix
    assert structural_hash("python", "def broken(:\n") is None


identifiers = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and s not in dir(__builtins__)
)


@given(identifiers, identifiers)
def test_renaming_a_local_variable_consistently_keeps_the_structural_hash(old: str, new: str) -> None:
    code = "def handler(a, b):\n    {v} = a * b\n    return {v} + a\n"
    assume_distinct = {old, new} & {"a", "b", "handler"}
    if assume_distinct:
        return
    assert structural_hash("python", code.format(v=old)) == structural_hash("python", code.format(v=new))


def test_warn_registers_and_lists_exact_and_structural_matches_the_agent_may_see() -> None:
    rt = memory_runtime()
    exact = rt.register_tool("alice", _definition("add", ADD_LOCAL), "public").tool_id
    structural = rt.register_tool("alice", _definition("plus", ADD_RENAMED), "public").tool_id
    rt.register_tool("alice", _definition("sub", SUB, description="Subtract two numbers"), "public")
    mine = rt.register_tool("bob", _definition("add_numbers", ADD_LOCAL))
    assert mine.tool.owner == "bob" and not mine.reused
    assert [(s.kind, s.tool_id) for s in mine.similar] == [
        (DuplicateKind.EXACT, exact),
        (DuplicateKind.STRUCTURAL, structural),
    ]
    assert any("visible tools already do this" in w for w in mine.warnings)
    assert rt.metrics()["counters"]["duplicates_found|kind=exact"] == 1
    assert rt.register_tool("carol", _definition("add2", ADD), on_duplicate="create").similar == ()


def test_reuse_returns_the_existing_tool_and_error_refuses() -> None:
    rt = memory_runtime()
    existing = rt.register_tool("alice", _definition("add", ADD_LOCAL), "public")
    reused = rt.register_tool("bob", _definition("my_add", ADD_RENAMED), on_duplicate="reuse")
    assert reused.reused and reused.tool_id == existing.tool_id and reused.tool.owner == "alice"
    assert [t.tool_id for t in rt.list_tools(owner="bob")] == []  # nothing was created
    assert rt.metrics()["counters"]["duplicates_avoided|kind=structural"] == 1
    with pytest.raises(ConflictError, match="duplicates visible tools: add"):
        rt.register_tool("bob", _definition("my_add", ADD_LOCAL), on_duplicate="error")
    assert [t.tool_id for t in rt.list_tools(owner="bob")] == []
    other_schema = {
        **_definition("wide_add", ADD_LOCAL),
        "input_schema": {"type": "object", "properties": {"a": {}, "b": {}}},
    }
    created = rt.register_tool("bob", other_schema, on_duplicate="reuse")  # not a drop-in: created
    assert not created.reused and created.tool.owner == "bob"
    with pytest.raises(ValidationError, match="on_duplicate must be one of"):
        rt.register_tool("bob", _definition("x", ADD), on_duplicate="merge")


def test_another_agents_private_tool_is_never_reported_reused_or_refused_against() -> None:
    """A hostile agent registering a victim's exact code learns nothing from the duplicate check."""
    rt = memory_runtime()
    rt.register_tool("victim", _definition("add", ADD_LOCAL))  # private
    probe = rt.register_tool("mallory", _definition("add", ADD_LOCAL), on_duplicate="error")
    assert probe.similar == () and probe.tool.owner == "mallory"
    again = rt.register_tool("mallory", _definition("add_again", ADD_RENAMED), on_duplicate="reuse")
    assert again.reused and again.tool.owner == "mallory"  # only her own tool was a candidate
    assert all(s.tool_id != "victim" and rt.get_tool(s.tool_id).owner == "mallory" for s in again.similar)


def test_duplicates_across_languages_are_not_merged() -> None:
    rt = memory_runtime()
    rt.register_tool("alice", _definition("add", ADD_LOCAL), "public")
    js = rt.register_tool("bob", _definition("add_js", JS_ADD, "javascript"), on_duplicate="reuse")
    assert not js.reused and js.similar == ()
    ts = rt.register_tool("bob", _definition("add_ts", JS_ADD_RENAMED, "typescript"), on_duplicate="reuse")
    assert not ts.reused  # the JavaScript tool has the same structure, but another language


def test_an_embedder_reports_tools_that_mean_the_same_in_other_words() -> None:
    rt = memory_runtime(embedder=ConceptEmbedder())
    forecast = rt.register_tool("alice", _definition("weather", ADD, description="weather forecast"), "public")
    similar = rt.register_tool("bob", _definition("temps", SUB, description="temperature and rain")).similar
    assert [(s.kind, s.tool_id) for s in similar] == [(DuplicateKind.SEMANTIC, forecast.tool_id)]
    assert similar[0].score >= 0.9
    mul = "def handler(a: int, b: int) -> int:\n    return a * b\n"
    refused = rt.register_tool("bob", _definition("temps2", mul, description="temperature"), on_duplicate="error")
    assert not refused.reused  # a semantic match alone never refuses or reuses


def test_many_hidden_copies_of_some_code_never_hide_a_visible_one() -> None:
    """Whether a visible exact match is reported does not depend on how many tools the agent
    cannot see hold the same code (they are filtered out before any cap)."""
    rt = memory_runtime()
    mine = rt.register_tool("mallory", _definition("zz_mine", ADD_LOCAL), on_duplicate="create")
    for i in range(120):
        rt.register_tool(f"victim-{i}", _definition("add", ADD_LOCAL), on_duplicate="create")
    again = rt.register_tool("mallory", _definition("other_name", ADD_LOCAL, description="Sum"))
    assert [(s.kind, s.tool_id) for s in again.similar] == [(DuplicateKind.EXACT, mine.tool_id)]
    assert again.cache_hit and rt.get_tool_status(mine.tool_id, "mallory").shared_by == 2
