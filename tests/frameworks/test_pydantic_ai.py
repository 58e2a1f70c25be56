"""pydantic-ai drives toolrt's MCP server: MCPToolset (FastMCP's client) with FunctionModel and TestModel."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.to_thread
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from tests.frameworks.conftest import Served
from tests.frameworks.scripts import (
    BAD_ADD,
    BAD_ARGUMENTS_SAY,
    CALL_ADD,
    FAIL,
    FAILURE_SAYS,
    PRINT,
    TOOLRT_OWN,
    plain_text,
    toolrts_own,
)


def _toolset(served: Served, **options: Any) -> MCPToolset[Any]:
    if served.transport == "stdio":
        # A transport, not a built Client: pydantic-ai then installs its list_changed handler.
        return MCPToolset(StdioTransport(served.command, served.args, env=served.env), **options)
    return MCPToolset(served.url, **options)


class Script:
    """A FunctionModel's function: the given tool calls one per request, then a text answer; keeps
    what each tool call came back as (a return or a retry prompt) and the tools it was offered."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = list(calls)
        self.seen: list[tuple[str, Any]] = []
        self.tools: list[str] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.tools = [t.name for t in info.function_tools]
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                self.seen.append(("return", part.content))
            elif isinstance(part, RetryPromptPart):
                self.seen.append(("retry", part.model_response()))
        if self.calls:
            name, arguments = self.calls.pop(0)
            return ModelResponse(parts=[ToolCallPart(name, arguments)])
        return ModelResponse(parts=[TextPart("done")])


def test_function_model_reads_values_and_toolrts_errors(served: Served) -> None:
    """pydantic-ai sends a progress token on every call: bad arguments still come back in toolrt's words, a failure as the tool's own error, and values as themselves (5, 'HI')."""
    script = Script([CALL_ADD, BAD_ADD, FAIL, PRINT])
    agent = Agent(FunctionModel(script), toolsets=[_toolset(served)], retries=3)
    anyio.run(agent.run, "use the tools")
    assert {"add", "boom", "chatty"} <= set(script.tools) and toolrts_own(script.tools) == TOOLRT_OWN
    added, bad, failed, printed = script.seen
    assert added == ("return", 5)
    # (a tool's error reaches the model as a retry prompt or as the tool's return, as pydantic-ai decides)
    assert BAD_ARGUMENTS_SAY in plain_text(bad[1]) and "ExceptionGroup" not in plain_text(bad[1])
    assert FAILURE_SAYS in plain_text(failed[1])
    assert printed == ("return", "HI")


def test_test_model_calls_no_destructive_tool_of_toolrt(served: Served) -> None:
    """TestModel calls every tool it is offered: toolrt offers it only search_tools and manage_tools beside the
    agent's own, and manage_tools is annotated destructive so a host can ask before it runs."""

    async def scenario() -> dict[str, Any]:
        toolset = _toolset(served)
        async with toolset:
            return {t.name: t for t in await toolset.client.list_tools()}

    listed = anyio.run(scenario)
    own = set(listed) & TOOLRT_OWN
    assert toolrts_own(listed) == TOOLRT_OWN
    for name in own:
        hints = listed[name].annotations
        assert hints is not None and hints.readOnlyHint is (name == "search_tools")
        assert hints.destructiveHint is (name == "manage_tools")
    # TestModel calls each tool (but the one failing on purpose) with arguments it makes up: afterwards the
    # agent's tools are all still there.
    agent = Agent(TestModel(call_tools=[n for n in listed if n != "boom"]), toolsets=[_toolset(served)])
    anyio.run(agent.run, "go")
    after = anyio.run(scenario)
    assert {"add", "boom", "chatty"} <= set(after)


def test_a_tool_registered_mid_session_is_seen_with_the_default_tool_cache(served: Served) -> None:
    """With cache_tools=True (the default), list_changed from toolrt clears pydantic-ai's cache: the
    new tool is offered and answers 42 within one open toolset."""
    late: list[str] = []

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        names = [t.name for t in info.function_tools]
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart) and part.tool_name == (late[0] if late else None):
                return ModelResponse(parts=[TextPart(f"got {plain_text(part.content)}")])
        if not late:
            late.append(served.register_late())
        elif late[0] in names:
            return ModelResponse(parts=[ToolCallPart(late[0], {"x": 21})])
        else:
            time.sleep(0.3)  # not listed yet: the store watcher tells the server within seconds
        return ModelResponse(parts=[ToolCallPart(*CALL_ADD)])

    toolset = _toolset(served)
    agent = Agent(FunctionModel(script), toolsets=[toolset])

    async def scenario() -> str:
        async with toolset:
            result = await agent.run("go")
            return str(result.output)

    assert anyio.run(scenario) == "got 42"
