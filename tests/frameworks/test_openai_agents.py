"""The OpenAI Agents SDK drives toolrt's MCP server: MCPServerStdio / MCPServerStreamableHttp and Runner.run with a scripted model."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread
from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

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

# No trace leaves this machine: the SDK would export traces to OpenAI when a key is set.
set_tracing_disabled(True)


class ScriptedModel(Model):
    """Calls the given tools one per turn, then answers; keeps every tool output it was shown."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = list(calls)
        self.outputs: list[str] = []
        self.tools: list[str] = []

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        self.tools = [t.name for t in tools]
        if isinstance(input, list):
            self.outputs = [
                plain_text(item.get("output"))
                for item in input
                if isinstance(item, dict) and item.get("type") == "function_call_output"
            ]
        if self.calls:
            name, arguments = self.calls.pop(0)
            n = len(self.outputs)
            item: Any = ResponseFunctionToolCall(
                type="function_call", call_id=f"call_{n}", name=name, arguments=json.dumps(arguments), id=f"fc_{n}"
            )
        else:
            item = ResponseOutputMessage(
                id="msg",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text="done", annotations=[])],
            )
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the matrix runs Runner.run, not streaming")


def _server(served: Served, **options: Any) -> Any:
    if served.transport == "stdio":
        params = {"command": served.command, "args": served.args, "env": served.env}
        return MCPServerStdio(params=params, client_session_timeout_seconds=60, **options)
    return MCPServerStreamableHttp(params={"url": served.url}, client_session_timeout_seconds=60, **options)


def test_runner_calls_toolrt_tools_and_its_model_reads_values_and_errors(served: Served) -> None:
    """Runner.run: the model sees 5, toolrt's message for bad arguments, the tool's failure and HI (one value each)."""
    model = ScriptedModel([CALL_ADD, BAD_ADD, FAIL, PRINT])

    async def scenario() -> None:
        async with _server(served) as server:
            agent = Agent(name="a", instructions="use the tools", model=model, mcp_servers=[server])
            await Runner.run(agent, "go", max_turns=8)

    anyio.run(scenario)
    assert {"add", "boom", "chatty"} <= set(model.tools) and toolrts_own(model.tools) == TOOLRT_OWN
    added, bad, failed, printed = model.outputs
    assert added == "5"
    assert BAD_ARGUMENTS_SAY in bad and "ExceptionGroup" not in bad
    assert FAILURE_SAYS in failed
    assert printed == "HI"


def test_structured_content_carries_the_value(served: Served) -> None:
    """With use_structured_content the model is shown the structured value, {"result": 5}."""
    model = ScriptedModel([CALL_ADD])

    async def scenario() -> None:
        async with _server(served, use_structured_content=True) as server:
            agent = Agent(name="a", model=model, mcp_servers=[server])
            await Runner.run(agent, "go", max_turns=3)

    anyio.run(scenario)
    assert json.loads(model.outputs[0]) == {"result": 5}


def test_a_tool_registered_mid_session_is_listed_on_the_next_turn(served: Served) -> None:
    """The SDK lists the server's tools on every turn (cache_tools_list=False, its default): a tool
    registered while the session is open is listed and called on a later turn."""
    late: list[str] = []

    class Registering(ScriptedModel):
        called = False

        async def get_response(  # type: ignore[override]
            self, system_instructions: Any, input: Any, model_settings: Any, tools: Any, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            listed = [t.name for t in tools]
            if not late:  # the first turn: a tool arrives while the agent runs
                late.append(await anyio.to_thread.run_sync(served.register_late))
                self.calls = [CALL_ADD]
            elif late[0] in listed and not self.called:
                self.called = True
                self.calls = [(late[0], {"x": 21})]
            elif not self.called:  # not listed yet: the store watcher tells the server within seconds
                await anyio.sleep(0.5)
                self.calls = [CALL_ADD]
            return await super().get_response(system_instructions, input, model_settings, tools, *args, **kwargs)

    model = Registering([])

    async def scenario() -> None:
        async with _server(served) as server:
            agent = Agent(name="a", model=model, mcp_servers=[server])
            await Runner.run(agent, "go", max_turns=30)

    anyio.run(scenario)
    assert late[0] in model.tools and model.outputs[-1] == "42"


OPTIONAL = '''
def handler(a: int, b: int = 10) -> int:
    """Add b (10 unless given) to a.

    Args:
        a: The first number.
        b: The second number, 10 when left out.
    """
    return a + b
'''


def test_tool_schemas_as_function_tools_over_dispatch() -> None:
    """The path without MCP: rt.tool_schemas('openai-responses', strict=True) as the SDK's FunctionTools, each
    call run by rt.dispatch: the optional parameter is nullable rather than required, the SDK takes the
    schema as strict (its own check), and a null gets the tool's default."""
    import anyio.to_thread
    from agents import FunctionTool

    import toolrt

    with toolrt.connect("memory") as rt:
        rt.register_tool("agent", {"name": "plus", "description": "Add.", "language": "python", "code": OPTIONAL})
        entries = rt.tool_schemas("agent", "openai-responses", strict=True)

        def function_tool(entry: dict[str, Any]) -> FunctionTool:
            async def invoke(ctx: Any, arguments: str) -> str:
                call = {"type": "function_call", "call_id": "c", "name": entry["name"], "arguments": arguments}
                answer = await anyio.to_thread.run_sync(rt.dispatch, "agent", call)
                return str(answer["output"])

            return FunctionTool(
                name=entry["name"],
                description=entry["description"],
                params_json_schema=entry["parameters"],
                on_invoke_tool=invoke,
                strict_json_schema=bool(entry.get("strict")),
            )

        tools = [function_tool(entry) for entry in entries]
        (plus,) = [e for e in entries if e["name"] == "plus"]
        assert plus["strict"] is True and set(plus["parameters"]["required"]) == {"a", "b"}
        assert "null" in json.dumps(plus["parameters"]["properties"]["b"])
        model = ScriptedModel([("plus", {"a": 1, "b": None}), ("plus", {"a": 1, "b": 2})])

        async def scenario() -> None:
            await Runner.run(Agent(name="a", model=model, tools=tools), "go", max_turns=4)

        anyio.run(scenario)
    assert model.outputs == ["11", "3"]
