"""Metrics never tell a hostile agent about another agent's private tool: not its name, not its calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import toolrt
from toolrt.domain import NotFoundError

SECRET = "def handler(card: str) -> str:\n    print('charging', card)\n    return 'ok'\n"


@pytest.fixture
def world() -> Iterator[tuple[Any, str]]:
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        schema = {"type": "object", "properties": {"card": {"type": "string"}}, "required": ["card"]}
        reg = rt.register_tool(
            "victim",
            {
                "name": "charge_card",
                "description": "Private.",
                "language": "python",
                "code": SECRET,
                "input_schema": schema,
            },
        )
        rt.execute_tool("victim", reg.tool_id, {"card": "4111-1111"})
        yield rt, reg.tool_id


def test_per_tool_metrics_of_a_private_tool_answer_a_hostile_agent_as_an_unknown_tool(world: tuple[Any, str]) -> None:
    """By id or by name, tool_metrics, tool_activity and tool_usage refuse Mallory exactly as for a tool that does not exist."""
    rt, tool_id = world
    reads: tuple[Callable[[str], object], ...] = (
        lambda r: rt.tool_metrics(r, "mallory"),
        lambda r: rt.tool_activity(r, "1h", "mallory"),
        lambda r: rt.tool_usage("mallory", r),
    )
    for ref in (tool_id, "charge_card"):
        for read in reads:
            with pytest.raises(NotFoundError) as caught:
                read(ref)
            with pytest.raises(NotFoundError) as unknown:
                read("no-such-tool" if ref == tool_id else "no_such_name")
            assert str(caught.value).replace(ref, "X") == str(unknown.value).replace(unknown.value.key, "X")
    assert rt.list_executions("mallory").items == ()


def test_the_hostile_agents_own_history_and_searches_carry_nothing_of_the_victims_calls(world: tuple[Any, str]) -> None:
    """Mallory's history, search usage and schemas never mention the victim's tool, its params or output."""
    rt, _ = world
    seen = repr(rt.list_executions("mallory")) + repr(rt.search_tools("mallory", "charge card", with_usage=True))
    seen += repr(rt.tool_schemas("mallory"))
    assert "charge_card" not in seen and "4111" not in seen and "charging" not in seen
