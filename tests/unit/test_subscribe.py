"""rt.subscribe: handlers hear each change after it is stored, and cannot fail it."""

from __future__ import annotations

from typing import Any, cast

import pytest

import toolrt
from toolrt.domain.events import DomainEvent, ToolExecuted, ToolRegistered, ToolUpdated

ADD = {
    "name": "add",
    "description": "Add.",
    "language": "python",
    "code": "def handler(a: int) -> int:\n    return a + 1\n",
}


def test_handlers_hear_events_after_the_change_is_stored() -> None:
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        seen: list[Any] = []

        def on_registered(event: DomainEvent) -> None:
            assert isinstance(event, ToolRegistered)
            seen.append(("stored", rt.get_tool(event.tool_id).name))  # already readable

        rt.subscribe(ToolRegistered, on_registered)
        everything: list[str] = []
        stop = rt.subscribe(DomainEvent, lambda e: everything.append(type(e).__name__))
        reg = rt.register_tool("agent-a", ADD)
        rt.execute_tool("agent-a", reg.tool_id, {"a": 1})
        assert seen == [("stored", "add")]
        assert "ToolRegistered" in everything and "ToolExecuted" in everything
        stop()
        rt.update_tool("agent-a", reg.tool_id, {**ADD, "description": "Add one."})
        assert "ToolUpdated" not in everything


def test_a_failing_handler_does_not_fail_the_change_or_silence_others() -> None:
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        heard: list[str] = []

        def broken(event: DomainEvent) -> None:
            raise RuntimeError("subscriber bug")

        rt.subscribe(ToolExecuted, broken)
        rt.subscribe(ToolExecuted, lambda e: heard.append(cast(ToolExecuted, e).execution_id))
        reg = rt.register_tool("agent-a", ADD)
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1}).output == 2
        assert len(heard) == 1


@pytest.mark.parametrize("kind, handler", [(str, print), (ToolUpdated, "not callable")])
def test_bad_subscriptions_are_clear_errors(kind: Any, handler: Any) -> None:
    with toolrt.connect("memory") as rt, pytest.raises(toolrt.ValidationError):
        rt.subscribe(kind, handler)
