"""Tools exported in the shapes of the official SDKs' own types, and tool calls from them dispatched back."""

from __future__ import annotations

import json
from typing import Any

import mcp_types
import pytest
from anthropic.types import ToolParam, ToolResultBlockParam, ToolUseBlock
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionToolMessageParam,
)
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall
from openai.types.responses.response_input_param import FunctionCallOutput
from openapi_spec_validator import validate as validate_openapi
from pydantic import TypeAdapter

from tests.fakes import EchoSandbox
from toolrt.application import ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.domain import ValidationError, Visibility
from toolrt.settings import Settings

LONG = "n" + "x" * 63  # a 64-character tool name


@pytest.fixture
def rt() -> ToolRuntime:
    container = build_container(Settings(profile="memory"))
    container.adapters.sandbox.override(EchoSandbox())
    runtime: ToolRuntime = container.runtime()
    runtime.register_tool("alice", b.definition(name="add"))
    runtime.register_tool("bob", b.definition(name="add"), Visibility.PUBLIC)  # same name, another owner
    runtime.register_tool("very-long-owner-name-" + "o" * 40, b.definition(name=LONG), Visibility.PUBLIC)
    runtime.register_tool("carol", b.definition(name="secret"))  # private: never exported to alice
    return runtime


def _strict(adapter_type: Any, value: Any) -> None:
    TypeAdapter(adapter_type).validate_python(value, strict=False)


def test_openai_chat_completions_tools_match_the_sdk_type(rt: ToolRuntime) -> None:
    """Each entry validates as the openai SDK's ChatCompletionFunctionToolParam; names are unique and at most 64 characters."""
    tools = rt.tool_schemas("alice", "openai")
    for tool in tools:
        _strict(ChatCompletionFunctionToolParam, tool)
    names = [t["function"]["name"] for t in tools]
    assert len(set(names)) == len(names) == 3
    assert all(len(n) <= 64 for n in names)
    assert "add" in names and "bob__add" in names and "secret" not in names


def test_openai_responses_and_anthropic_and_mcp_shapes_match_their_types(rt: ToolRuntime) -> None:
    """The Responses, Anthropic and MCP exports validate against the SDKs' own types."""
    for tool in rt.tool_schemas("alice", "openai-responses"):
        _strict(FunctionToolParam, tool)
    for tool in rt.tool_schemas("alice", "anthropic"):
        _strict(ToolParam, tool)
    for tool in rt.tool_schemas("alice", "mcp"):
        mcp_types.Tool.model_validate(tool)


@pytest.mark.parametrize("fmt", ["openapi", "openapi-3.0"])
def test_openapi_documents_are_valid(rt: ToolRuntime, fmt: str) -> None:
    """The OpenAPI 3.1 and 3.0 documents pass openapi-spec-validator."""
    document = rt.tool_schemas("alice", fmt)
    validate_openapi(document)
    assert len(document["paths"]) == 3


def test_an_unknown_format_is_a_validation_error(rt: ToolRuntime) -> None:
    """Asking for a shape toolrt does not know says which ones it does."""
    with pytest.raises(ValidationError, match="openai-responses"):
        rt.tool_schemas("alice", "gemini")


def test_dispatch_an_openai_tool_call_object(rt: ToolRuntime) -> None:
    """An SDK tool-call object runs the named tool and comes back as a tool message the SDK accepts."""
    call = ChatCompletionMessageFunctionToolCall(
        id="call_1", type="function", function={"name": "add", "arguments": json.dumps({"a": 1, "b": 2})}
    )
    message = rt.dispatch("alice", call)
    _strict(ChatCompletionToolMessageParam, message)
    assert message["tool_call_id"] == "call_1" and json.loads(message["content"]) == {"echo": {"a": 1, "b": 2}}


def test_dispatch_responses_and_anthropic_calls(rt: ToolRuntime) -> None:
    """A Responses function_call and an Anthropic tool_use come back in their own result shapes."""
    responses = ResponseFunctionToolCall(
        type="function_call", call_id="fc_1", name="bob__add", arguments='{"a": 2, "b": 3}'
    )
    out = rt.dispatch("alice", responses)
    _strict(FunctionCallOutput, out)
    assert out["call_id"] == "fc_1"
    use = ToolUseBlock(type="tool_use", id="toolu_1", name="add", input={"a": 1, "b": 1})
    block = rt.dispatch("alice", use)
    _strict(ToolResultBlockParam, block)
    assert block["tool_use_id"] == "toolu_1" and block["is_error"] is False


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ({"type": "tool_use", "id": "t", "name": "secret", "input": {}}, "no tool named"),
        ({"type": "function", "id": "c", "function": {"name": "add", "arguments": "{not json"}}, "not valid JSON"),
        ({"type": "tool_use", "id": "t", "name": "add", "input": {"a": "one"}}, "invalid params"),
    ],
    ids=["another agent's private tool", "bad JSON", "bad params"],
)
def test_what_the_model_got_wrong_comes_back_as_an_error_result(
    rt: ToolRuntime, call: dict[str, Any], words: str
) -> None:
    """Unknown names (another agent's private tool included), bad JSON and bad params are error results, not exceptions."""
    result = rt.dispatch("alice", call)
    assert words in result["content"]
    assert result.get("is_error", True) is True


def test_something_that_is_not_a_tool_call_raises(rt: ToolRuntime) -> None:
    """A message that is no tool call at all is a ValidationError."""
    with pytest.raises(ValidationError, match="not a tool call"):
        rt.dispatch("alice", {"role": "user", "content": "hi"})
