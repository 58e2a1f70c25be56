"""smolagents drives toolrt's MCP server: ToolCollection.from_mcp and a ToolCallingAgent with a scripted model."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp import StdioServerParameters
from smolagents import ToolCallingAgent, ToolCollection
from smolagents.models import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, MessageRole, Model

from tests.frameworks.conftest import Served
from tests.frameworks.scripts import (
    BAD_ADD,
    BAD_ARGUMENTS_SAY,
    CALL_ADD,
    FAIL,
    FAILURE_SAYS,
    PRINT,
    TOOLRT_OWN,
    toolrts_own,
    wait_until,
)


class ScriptedModel(Model):
    """Calls the given tools one per step, then gives the final answer; keeps every prompt it saw."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(model_id="scripted")
        self.calls = list(calls)
        self.prompts: list[str] = []

    def generate(
        self,
        messages: list[Any],
        stop_sequences: Any = None,
        response_format: Any = None,
        tools_to_call_from: Any = None,
        **kwargs: Any,
    ) -> ChatMessage:
        self.prompts.append(json.dumps([m.dict() if hasattr(m, "dict") else m for m in messages], default=str))
        name, arguments = self.calls.pop(0) if self.calls else ("final_answer", {"answer": "done"})
        call = ChatMessageToolCall(
            ChatMessageToolCallFunction(arguments=arguments, name=name), id=f"c{len(self.prompts)}", type="function"
        )
        return ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=[call])


def _parameters(served: Served) -> Any:
    if served.transport == "stdio":
        return StdioServerParameters(command=served.command, args=served.args, env=served.env)
    return {"url": served.url, "transport": "streamable-http"}


@contextmanager
def _tools(served: Served, structured: bool = False) -> Iterator[dict[str, Any]]:
    with ToolCollection.from_mcp(
        _parameters(served), trust_remote_code=True, structured_output=structured
    ) as collection:
        yield {tool.name: tool for tool in collection.tools}


def test_tools_are_listed_under_identifier_names_and_called_for_their_values(served: Served) -> None:
    """The agent's tools and at most two of toolrt's own are listed; add returns 5 and chatty 'HI', each one value."""
    with _tools(served, structured=True) as tools, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert {"add", "boom", "chatty"} <= set(tools)
        assert toolrts_own(tools) == TOOLRT_OWN
        assert all(name.isidentifier() for name in tools)
        assert tools["add"](**CALL_ADD[1]) == {"result": 5}
        assert tools["chatty"](**PRINT[1]) == {"result": "HI"}
    assert not [w for w in seen if "multiple content" in str(w.message)]


def test_a_tool_calling_agent_reads_results_and_toolrts_errors(served: Served) -> None:
    """A ToolCallingAgent's model is shown 5, HI, the tool's own failure, and an error naming the bad
    argument (smolagents checks argument types itself before a call reaches toolrt)."""
    model = ScriptedModel([CALL_ADD, BAD_ADD, FAIL, PRINT])
    with _tools(served) as tools:
        agent = ToolCallingAgent(tools=list(tools.values()), model=model, max_steps=8)
        agent.run("use the tools")
    seen = model.prompts[-1]
    assert "Observation:\\n5" in seen and "Observation:\\nHI" in seen
    assert "Argument a has type 'string' but should be 'integer'" in seen
    assert FAILURE_SAYS in seen and "stdout" not in seen


def test_a_call_with_bad_arguments_gets_toolrts_message(served: Served) -> None:
    """Called directly (no agent's type check), bad arguments come back in toolrt's words."""
    with _tools(served) as tools:
        answer = tools["add"](**BAD_ADD[1])
    assert BAD_ARGUMENTS_SAY in str(answer) and "ExceptionGroup" not in str(answer)


def test_a_tool_registered_mid_session_is_reached_through_toolrts_search(served: Served) -> None:
    """smolagents lists tools once: a tool registered later is found with search_tools and called through manage_tools."""
    with _tools(served, structured=True) as tools:
        name = served.register_late()
        found = wait_until(
            lambda: name in [r["name"] for r in tools["search_tools"](query="double a number")["results"]]
        )
        assert found, f"{name} not found by search_tools"
        result = tools["manage_tools"](action="call", tool=name, arguments={"x": 21})
        assert result == {"result": 42}
