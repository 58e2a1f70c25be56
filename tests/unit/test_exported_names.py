"""Every name a model is shown is an identifier in every framework, unique, and no longer than 64 characters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolrt.application.tool_names import exported_names
from toolrt.contracts import builders as b
from toolrt.domain import Tool, ValidationError, Visibility, check_new_tool_name, owner_qualifier

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
owners = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,63}", fullmatch=True).filter(
    lambda n: not any(pair in n for pair in ("__", "--", "-_", "_-"))
)


def _tool(i: int, owner: str, name: str) -> Tool:
    definition = b.definition(name=name)
    return Tool.create(
        tool_id=f"tool-{i:04x}", owner=owner, definition=definition, now=b.T0, visibility=Visibility.PUBLIC
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(owners, names), min_size=1, max_size=12), owners)
def test_every_exported_name_is_a_unique_identifier(entries: list[tuple[str, str]], caller: str) -> None:
    """Whatever the owners' ids and the tools' names, every name is a letter then letters, digits and '_'
    (a Python identifier, an OpenAI function name), at most 64 characters, one per tool."""
    tools = [_tool(i, owner, name) for i, (owner, name) in enumerate(entries)]
    shown = exported_names(tools, caller, reserved={"search_tools", "manage_tools"})
    assert len(shown) == len(tools)
    for name in shown:
        assert IDENTIFIER.fullmatch(name) and name.isidentifier(), name


@pytest.mark.parametrize(("owner", "plain"), [("agent-2", False), ("agent_2", True), ("2agent", False), ("a", True)])
def test_an_owner_is_its_own_qualifier_only_when_it_is_an_identifier(owner: str, plain: bool) -> None:
    """agent_2 qualifies its tools as agent_2; agent-2 (and 2agent) get a digest form, distinct from agent_2's."""
    qualifier = owner_qualifier(owner)
    assert (qualifier == owner) is plain and qualifier.isidentifier()
    assert owner_qualifier("agent-2") != owner_qualifier("agent_2")


def test_a_dash_in_a_tool_name_is_shown_as_an_underscore() -> None:
    """my-tool is listed as my_tool; another agent's my-tool beside it is qualified, also without '-'."""
    mine, theirs = _tool(1, "alice", "my-tool"), _tool(2, "bob-1", "my-tool")
    shown = exported_names([mine, theirs], "alice")
    assert shown["my_tool"] is mine
    (other,) = [n for n in shown if n != "my_tool"]
    assert "-" not in other and other.endswith("__my_tool") and shown[other] is theirs


@pytest.mark.parametrize("name", ["a__b", "a--b", "a-_b", "a_-b"])
def test_names_that_would_be_shown_with_a_double_underscore_are_refused(name: str) -> None:
    """'__' is the qualifier's separator, and '--', '-_', '_-' are shown as '__': none is a new tool's name."""
    with pytest.raises(ValidationError, match="reserved"):
        check_new_tool_name(name)
