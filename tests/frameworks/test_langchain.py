"""LangChain drives toolrt's MCP server: langchain-mcp-adapters' MultiServerMCPClient and a scripted chat model."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient

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


def _connection(served: Served) -> dict[str, Any]:
    if served.transport == "stdio":
        return {"transport": "stdio", "command": served.command, "args": served.args, "env": served.env}
    return {"transport": "streamable_http", "url": served.url}


def _client(served: Served, *names: str) -> MultiServerMCPClient:
    return MultiServerMCPClient({name: _connection(served) for name in names or ("toolrt",)})


async def _run(tools: dict[str, Any], script: list[tuple[str, dict[str, Any]]]) -> list[ToolMessage]:
    """The agent loop: the scripted model's tool calls, each run by the MCP tool LangChain made for it."""
    model = FakeMessagesListChatModel(
        responses=[
            AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"c{i}", "type": "tool_call"}])
            for i, (n, a) in enumerate(script)
        ]
    )
    answers = []
    for _ in script:
        message = await model.ainvoke("use the tools")
        for call in message.tool_calls:
            answers.append(await tools[call["name"]].ainvoke({**call, "type": "tool_call"}))
    return answers


def test_tools_are_called_and_the_model_reads_values_and_toolrts_errors(served: Served) -> None:
    """5 and HI come back as one value each; bad arguments and a failure come back as error tool messages in toolrt's words."""

    async def scenario() -> list[ToolMessage]:
        tools = {tool.name: tool for tool in await _client(served).get_tools()}
        assert {"add", "boom", "chatty"} <= set(tools) and toolrts_own(tools) == TOOLRT_OWN
        return await _run(tools, [CALL_ADD, BAD_ADD, FAIL, PRINT])

    added, bad, failed, printed = anyio.run(scenario)
    assert plain_text(added.content) == "5" and added.status == "success"
    assert added.artifact["structured_content"] == {"result": 5}
    assert bad.status == "error" and BAD_ARGUMENTS_SAY in plain_text(bad.content)
    assert failed.status == "error" and FAILURE_SAYS in plain_text(failed.content)
    assert plain_text(printed.content) == "HI"


def test_two_toolrt_servers_in_one_client_give_no_duplicate_names(served: Served) -> None:
    """Two toolrt servers in one client (with LangChain's server-name prefix) list every name once."""

    async def scenario() -> list[str]:
        client = MultiServerMCPClient({"one": _connection(served), "two": _connection(served)}, tool_name_prefix=True)
        return [tool.name for tool in await client.get_tools()]

    names = anyio.run(scenario)
    assert len(names) == len(set(names))
    assert sum(1 for n in names if n.endswith(("search_tools", "manage_tools"))) <= 4


def test_a_tool_registered_mid_session_is_listed_by_the_next_get_tools(served: Served) -> None:
    """get_tools lists afresh: a tool registered while the application runs is there, and answers 42."""

    async def scenario() -> ToolMessage:
        client = _client(served)
        await client.get_tools()
        name = await anyio.to_thread.run_sync(served.register_late)
        for _ in range(120):
            tools = {tool.name: tool for tool in await client.get_tools()}
            if name in tools:
                break
            await anyio.sleep(0.25)
        return (await _run(tools, [(name, {"x": 21})]))[0]

    answer = anyio.run(scenario)
    assert plain_text(answer.content) == "42"
