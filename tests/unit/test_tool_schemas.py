"""Tools exported in the shapes of the official SDKs' own types, and tool calls from them dispatched back."""

from __future__ import annotations

import json
import threading
from typing import Any

import mcp_types
import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageParam, ToolParam, ToolResultBlockParam, ToolUseBlock
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionToolMessageParam,
)
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall, ResponseOutputMessage
from openai.types.responses.response_input_param import FunctionCallOutput
from openapi_spec_validator import validate as validate_openapi
from pydantic import TypeAdapter

from tests.fakes import EchoSandbox
from toolrt.application import ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.domain import ValidationError, Visibility
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult
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
        id="call_1",
        type="function",
        function={"name": "add", "arguments": json.dumps({"a": 1, "b": 2})},  # type: ignore[arg-type]  # the SDK model takes the dict
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


def _openai_message(*calls: tuple[str, str, dict[str, Any]]) -> ChatCompletionMessage:
    return ChatCompletionMessage(
        role="assistant",
        content=None,
        tool_calls=[
            ChatCompletionMessageFunctionToolCall(
                id=call_id,
                type="function",
                function={"name": name, "arguments": json.dumps(args)},  # type: ignore[arg-type]  # the SDK model takes the dict
            )
            for call_id, name, args in calls
        ],
    )


def test_dispatch_a_whole_openai_message_returns_every_tool_message_in_order(rt: ToolRuntime) -> None:
    """A ChatCompletionMessage with several tool_calls (and a whole ChatCompletion) gives one tool
    message per call, in the calls' order, each valid for the SDK; a message without calls gives none."""
    message = _openai_message(("c1", "add", {"a": 1, "b": 2}), ("c2", "bob__add", {"a": 3, "b": 4}), ("c3", "nope", {}))
    results = rt.dispatch("alice", message)
    for result in results:
        _strict(ChatCompletionToolMessageParam, result)
    assert [r["tool_call_id"] for r in results] == ["c1", "c2", "c3"]
    assert json.loads(results[1]["content"]) == {"echo": {"a": 3, "b": 4}} and "no tool named" in results[2]["content"]
    completion = ChatCompletion(
        id="x",
        created=0,
        model="m",
        object="chat.completion",
        choices=[{"index": 0, "finish_reason": "tool_calls", "message": message}],  # type: ignore[list-item]  # the SDK model takes the dict
    )
    assert rt.dispatch("alice", completion) == results
    assert rt.dispatch("alice", ChatCompletionMessage(role="assistant", content="no tools needed")) == []


def test_dispatch_responses_output_and_an_anthropic_message_with_several_calls(rt: ToolRuntime) -> None:
    """Responses output items (text skipped) give function_call_output items; an Anthropic Message with
    text and two tool_use blocks gives two tool_result blocks, which make one valid user message."""
    output = [
        ResponseOutputMessage(
            id="m1",
            type="message",
            role="assistant",
            status="completed",
            content=[{"type": "output_text", "text": "calling", "annotations": []}],  # type: ignore[list-item]  # the SDK model takes the dict
        ),
        ResponseFunctionToolCall(type="function_call", call_id="f1", name="add", arguments='{"a": 1, "b": 1}'),
        ResponseFunctionToolCall(type="function_call", call_id="f2", name="add", arguments='{"a": 2, "b": 2}'),
    ]
    items = rt.dispatch("alice", output)
    for item in items:
        _strict(FunctionCallOutput, item)
    assert [i["call_id"] for i in items] == ["f1", "f2"]
    message = AnthropicMessage(
        id="msg_1",
        type="message",
        role="assistant",
        model="claude",
        stop_reason="tool_use",
        usage={"input_tokens": 1, "output_tokens": 1},  # type: ignore[arg-type]  # the SDK model takes the dict
        content=[
            {"type": "text", "text": "Let me add both."},  # type: ignore[list-item]  # the SDK model takes the dict
            ToolUseBlock(type="tool_use", id="toolu_1", name="add", input={"a": 1, "b": 2}),
            ToolUseBlock(type="tool_use", id="toolu_2", name="add", input={"a": 5, "b": 5}),
        ],
    )
    blocks = rt.dispatch("alice", message)
    assert [b["tool_use_id"] for b in blocks] == ["toolu_1", "toolu_2"]
    _strict(MessageParam, {"role": "user", "content": blocks})


class _Rendezvous(EchoSandbox):
    """Runs calls in pairs: each waits until another is running too, and records how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=30)
        self.lock = threading.Lock()
        self.running = self.most = 0

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.barrier.wait()  # a call alone (dispatched one by one) would wait here for ever
            return super().run(request, cancel)
        finally:
            with self.lock:
                self.running -= 1


def test_a_messages_calls_run_concurrently_within_the_runtimes_limit() -> None:
    """Four calls of one message run two at a time when max_concurrent_executions is 2: they overlap
    (each waits for a partner) and never exceed the limit."""
    container = build_container(Settings(profile="memory", max_concurrent_executions=2))
    sandbox = _Rendezvous()
    container.adapters.sandbox.override(sandbox)
    runtime: ToolRuntime = container.runtime()
    runtime.register_tool("alice", b.definition(name="add"))
    message = _openai_message(*((f"c{i}", "add", {"a": i, "b": i}) for i in range(4)))
    results = runtime.dispatch("alice", message)
    assert [json.loads(r["content"])["echo"]["a"] for r in results] == [0, 1, 2, 3]
    assert sandbox.most == 2


WEATHER = "def handler(a, b=4, where=None):\n    return a\n"
FREE = "def handler(tags=None):\n    return tags\n"
OPTIONAL_SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "number"},
        "b": {"type": "number", "description": "defaults to 4", "default": 4},
        "where": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
    "required": ["a"],
}


def test_strict_openai_schemas_close_every_object_and_make_optional_parameters_nullable(rt: ToolRuntime) -> None:
    """tool_schemas(strict=True) validates as the SDK's strict function types; every object lists all
    its properties as required with additionalProperties false, optional ones taking null; a free-form
    object has no strict form and stays non-strict."""
    rt.register_tool("alice", b.definition("weather", WEATHER, input_schema=OPTIONAL_SCHEMA))
    free = {"type": "object", "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}}}}
    rt.register_tool("alice", b.definition("tagger", FREE, input_schema=free))
    chat = {t["function"]["name"]: t["function"] for t in rt.tool_schemas("alice", "openai", strict=True)}
    for entry in rt.tool_schemas("alice", "openai", strict=True):
        _strict(ChatCompletionFunctionToolParam, entry)
    for entry in rt.tool_schemas("alice", "openai-responses", strict=True):
        _strict(FunctionToolParam, entry)
    weather = chat["weather"]
    assert weather["strict"] is True and chat["tagger"]["strict"] is False
    params = weather["parameters"]
    assert params["required"] == ["a", "b", "where"] and params["additionalProperties"] is False
    assert params["properties"]["a"]["type"] == "number"
    assert params["properties"]["b"] == {"type": ["number", "null"], "description": "defaults to 4"}
    where = params["properties"]["where"]
    assert where["type"] == ["object", "null"] and where["additionalProperties"] is False
    assert where["required"] == ["city", "unit"] and where["properties"]["unit"] == {
        "anyOf": [{"enum": ["c", "f"]}, {"type": "null"}]
    }
    with pytest.raises(ValidationError, match="strict"):
        rt.tool_schemas("alice", "anthropic", strict=True)


def test_dispatch_drops_the_nulls_a_strict_model_sends_for_optional_parameters(rt: ToolRuntime) -> None:
    """A strict-mode call fills every optional parameter with null; the tool receives only what the
    model gave a value, so its own defaults apply, at any depth."""
    rt.register_tool("alice", b.definition("weather", WEATHER, input_schema=OPTIONAL_SCHEMA))
    args = {"a": 1, "b": None, "where": {"city": "Oslo", "unit": None}}
    result = rt.dispatch(
        "alice", {"type": "function", "id": "c", "function": {"name": "weather", "arguments": json.dumps(args)}}
    )
    assert json.loads(result["content"]) == {"echo": {"a": 1, "where": {"city": "Oslo"}}}
