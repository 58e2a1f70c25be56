"""Attacks on tenancy through the channels around the sandbox, by a hostile agent (mallory) against
a victim (alice), asserted from outside: the runtime's agent-facing calls, the CLI run with
``--agent``, and the MCP server over HTTP with agent tokens through the official SDK client.

The rule under attack (DESIGN, Tenancy: Answers): every answer an agent gets is computed from what
it may see, the same for another agent's private tool, or execution, as for one that does not
exist. An id is no key: knowing one must not tell mallory that the tool or execution behind it
exists, whose it is, or let it act on it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import toolrt
from tests.e2e.harness import SharedRuntimes
from tests.e2e.test_mcp import ADD, HttpServer, _text
from tests.security.test_mcp_front_door import MALLORY, TOKENS, _bearer
from toolrt.adapters.cli.main import build_app
from toolrt.adapters.mcp import management
from toolrt.application import ToolRuntime
from toolrt.domain import ToolRuntimeError

DOUBLE = {
    "name": "payroll",
    "description": "Alice's payroll: doubles a salary.",
    "language": "python",
    "code": "def handler(x: int) -> int:\n    return x * 2\n",
    "examples": [{"params": {"x": 2}, "output": 4}],
}
UNKNOWN = "tool-00000000000000000000000000000000"


def _answer(call: Callable[[], object], ref: str) -> tuple[str, str]:
    """What a call told its caller: the error's type and text with ``ref`` blanked, or 'ok'."""
    try:
        call()
    except ToolRuntimeError as exc:
        return type(exc).__name__, str(exc).replace(ref, "<ref>")
    return "ok", ""


# Every runtime call an agent makes about one tool, by reference (what a host passes on for it).
TOOL_CALLS: dict[str, Callable[[ToolRuntime, str], object]] = {
    "execute_tool": lambda rt, ref: rt.execute_tool("mallory", ref, {"x": 1}),
    "start_execution": lambda rt, ref: rt.start_execution("mallory", ref, {"x": 1}),
    "test_tool": lambda rt, ref: rt.test_tool("mallory", ref),
    "update_tool(code)": lambda rt, ref: rt.update_tool(
        "mallory", ref, {**DOUBLE, "code": "def handler(x):\n    return 0\n"}
    ),
    "update_tool(visibility)": lambda rt, ref: rt.update_tool("mallory", ref, visibility="public"),
    "deregister_tool": lambda rt, ref: rt.deregister_tool("mallory", ref, purge=True),
    "rollback_tool": lambda rt, ref: rt.rollback_tool("mallory", ref, 1),
    "promote": lambda rt, ref: rt.promote("mallory", ref, 1),
    "set_traffic": lambda rt, ref: rt.set_traffic("mallory", ref, {1: 50, 2: 50}),
    "tool_metrics": lambda rt, ref: rt.tool_metrics(ref, "mallory"),
    "tool_activity": lambda rt, ref: rt.tool_activity(ref, "1h", "mallory"),
    "tool_usage": lambda rt, ref: rt.tool_usage("mallory", ref),
    "list_versions": lambda rt, ref: rt.list_versions(ref, "mallory"),
    "get_tool_status": lambda rt, ref: rt.get_tool_status(ref, "mallory"),
    "list_executions(tool)": lambda rt, ref: rt.list_executions("mallory", tool=ref),
    "resolve_tool": lambda rt, ref: rt.resolve_tool("mallory", ref, include_inactive=True),
}


@pytest.fixture(scope="module")
def hidden() -> Iterator[tuple[ToolRuntime, dict[str, str]]]:
    """Alice's tools mallory may not see, each with two versions and a call: private, shared with a
    team mallory is not in, and private and withdrawn."""
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        rt.add_team_member("red", "alice")
        ids = {}
        for kind, visibility in (("private", "private"), ("team", "team:red"), ("withdrawn", "private")):
            tool_id = rt.register_tool("alice", {**DOUBLE, "name": f"payroll_{kind}"}, visibility).tool_id
            rt.update_tool("alice", tool_id, {**DOUBLE, "name": f"payroll_{kind}", "description": "Version two."})
            rt.execute_tool("alice", tool_id, {"x": 21})
            ids[kind] = tool_id
        rt.deregister_tool("alice", ids["withdrawn"])
        yield rt, ids


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=st.sampled_from(sorted(TOOL_CALLS)), kind=st.sampled_from(["private", "team", "withdrawn"]))
def test_every_call_by_tool_id_answers_another_agents_hidden_tool_as_an_unknown_one(
    hidden: tuple[ToolRuntime, dict[str, str]], call: str, kind: str
) -> None:
    """By id, each call answers mallory about alice's private, team or withdrawn tool exactly as
    about an id no tool has (type and text), and alice's tool is unchanged afterwards."""
    rt, ids = hidden
    tool_id = ids[kind]
    before = rt.get_tool(tool_id)
    hostile = _answer(lambda: TOOL_CALLS[call](rt, tool_id), tool_id)
    unknown = _answer(lambda: TOOL_CALLS[call](rt, UNKNOWN), UNKNOWN)
    assert hostile == unknown
    assert hostile[0] == "NotFoundError"
    assert rt.get_tool(tool_id) == before


def test_cancelling_another_agents_execution_tells_nothing_of_it() -> None:
    """Mallory holding the id of alice's running call can neither stop it nor learn its tool's id."""
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        slow = "import time\n\ndef handler(s: float) -> str:\n    time.sleep(s)\n    return 'paid'\n"
        reg = rt.register_tool("alice", {**DOUBLE, "code": slow, "examples": []})
        running = rt.start_execution("alice", reg.tool_id, {"s": 1.0})
        hostile = _answer(lambda: rt.cancel_execution("mallory", running.execution_id), running.execution_id)
        unknown = _answer(lambda: rt.cancel_execution("mallory", "exec-unknown"), "exec-unknown")
        assert hostile == unknown == ("NotFoundError", "execution '<ref>' not found")
        done = rt.wait_execution(running.execution_id, poll_interval_s=0.05, max_attempts=400)
        assert done.ok and done.output == "paid"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[HttpServer, str]]:
    runtimes = SharedRuntimes()
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), tokens=TOKENS) as server:
        reg = server.rt.register_tool("alice", {**ADD, "name": "payroll", "description": "Alice's private payroll."})
        server.rt.update_tool("alice", reg.tool_id, {**ADD, "name": "payroll", "description": "Version two."})
        server.rt.execute_tool("alice", reg.tool_id, {"a": 1, "b": 2})
        yield server, reg.tool_id


# What each manage_tools action needs beside its tool to get as far as the tool is looked at.
_ACTION_ARGS: dict[str, dict[str, Any]] = {
    "update": {"description": "Taken over."},
    "rollback": {"version": 1},
    "promote": {"version": 1},
    "traffic": {"weights": {"1": 50, "2": 50}},
    "deregister": {"purge": True},
    "call": {"arguments": {"a": 1, "b": 2}},
}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_every_mcp_action_on_a_tool_answers_a_hidden_tool_as_an_unknown_one(
    served: tuple[HttpServer, str], mode: str
) -> None:
    """Over HTTP with mallory's token (handshake-era sessions, and the newest protocol), every
    manage_tools action that names a tool, the full-set tool it stands for, and a direct call answer
    alice's private tool, by id, plain name or owner-qualified name, as a tool that does not exist;
    alice's tool is unchanged and holds no call of mallory's."""
    server, tool_id = served
    before = server.rt.get_tool(tool_id)
    actions = [a for a, full in management.ACTIONS.items() if "tool" in management.SCHEMAS[full].get("required", [])]
    actions.append("call")
    refs = (tool_id, "payroll", "alice__payroll")

    async def answers() -> dict[tuple[str, str], tuple[bool, str]]:
        got: dict[tuple[str, str], tuple[bool, str]] = {}

        def note(kind: str, ref: str, result: types.CallToolResult) -> None:
            got[kind, ref] = (bool(result.is_error), _text(result).replace(ref, "<ref>"))

        async with server.client(headers=_bearer(MALLORY), mode=mode) as client:
            for action in actions:
                extra = _ACTION_ARGS.get(action, {})
                for ref in (*refs, UNKNOWN, "no_such_tool"):
                    note(action, ref, await client.call_tool("manage_tools", {"action": action, "tool": ref, **extra}))
                    full = management.ACTIONS[action]
                    if full != "call_tool":
                        note(full, ref, await client.call_tool(full, {"tool": ref, **extra}))
            for ref in (*refs, "no_such_tool"):
                note("direct", ref, await client.call_tool(ref, {"a": 1, "b": 2}))
        return got

    got = anyio.run(answers)
    for kind in {kind for kind, _ in got}:
        unknown = got[kind, "no_such_tool"]
        assert unknown[0], (kind, unknown)
        for ref in refs:
            assert got[kind, ref] == unknown, (kind, ref)
    assert server.rt.get_tool(tool_id) == before
    assert server.rt.list_executions("mallory").items == ()


# Each CLI command that names a tool, as mallory would run it (``{}``: the tool reference).
CLI_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("show", "{}"),
    ("versions", "{}"),
    ("history", "--tool", "{}"),
    ("invoke", "{}", "x=1"),
    ("test", "{}"),
    ("update", "--tool", "{}", "--visibility", "public"),
    ("deregister", "{}"),
    ("rollback", "{}", "1"),
    ("traffic", "{}"),
    ("traffic", "{}", "1=50", "2=50"),
    ("promote", "{}", "1"),
    ("metrics", "{}"),
)


@pytest.mark.parametrize("output", ["text", "json"])
def test_every_cli_command_answers_another_agents_hidden_tool_as_an_unknown_one(output: str) -> None:
    """``toolrt --agent mallory CMD REF``: the exit code and everything printed are the same for
    alice's private tool (by id or name) as for a tool that does not exist; alice's tool is unchanged."""
    runtimes = SharedRuntimes()
    rt = runtimes.runtime()
    secret = {**DOUBLE, "examples": []}  # the CLI's runtimes echo their params: no example holds
    tool_id = rt.register_tool("alice", secret).tool_id
    rt.update_tool("alice", tool_id, {**secret, "description": "Version two."})
    rt.execute_tool("alice", tool_id, {"x": 21})
    before = rt.get_tool(tool_id)
    flags = ("--json",) if output == "json" else ()

    def run(command: tuple[str, ...], ref: str) -> tuple[int, str]:
        args = [*flags, "--agent", "mallory", *(part.replace("{}", ref) for part in command)]
        with structlog.testing.capture_logs():
            result = CliRunner().invoke(build_app(runtimes), args)
        return result.exit_code, (result.stdout + result.stderr).replace(ref, "<ref>")

    for command in CLI_COMMANDS:
        for hidden, unknown in ((tool_id, UNKNOWN), ("payroll", "no_such_tool")):
            answer = run(command, hidden)
            assert answer == run(command, unknown), command
            assert answer[0] != 0, (command, answer)
    assert rt.get_tool(tool_id) == before


@pytest.mark.xfail(
    strict=True,
    reason="a split's guard counts every caller's calls of a candidate, pinned ones too: another agent "
    "pinning the candidate with inputs every version fails on ends the owner's rollout. Needs execution "
    "records to say whether the split chose the version (a field in every store), so the guard counts "
    "only the calls it routed.",
)
def test_another_agent_cannot_end_a_public_tools_traffic_split() -> None:
    """Mallory may call alice's public tool, but her calls pinned to the candidate version, with
    an input on which every version fails, must not end alice's guarded split."""
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        code = "def handler(x: int) -> int:\n    return 10 // x\n"
        tool = {**DOUBLE, "code": code, "examples": []}
        tool_id = rt.register_tool("alice", tool, "public").tool_id
        rt.update_tool("alice", tool_id, {**tool, "description": "Version two."})
        split = rt.set_traffic("alice", tool_id, {1: 10, 2: 90}, guard={"margin": 0.1, "min_calls": 3}).traffic
        for _ in range(3):
            assert not rt.execute_tool("mallory", tool_id, {"x": 0}, version=1).ok  # fails on every version
        assert rt.get_tool(tool_id).traffic == split


_IDS = re.compile(r"(tool|exec)-[0-9a-f]{32}")
_TIMES = re.compile(r"datetime\.datetime\([^)]*\)|\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?")
_ELAPSED = re.compile(r"(elapsed_ms|wall_ms|duration_ms|p50_ms|p95_ms)=[\d.e-]+")


def _transcript(rt: ToolRuntime, code: str, words: str) -> list[str]:
    """Everything mallory's own calls answer about her own tool, ids, times and durations blanked."""
    said: list[str] = []

    def say(call: Callable[[], object]) -> None:
        try:
            answer = repr(call())
        except ToolRuntimeError as exc:
            answer = f"{type(exc).__name__}: {exc}"
        said.append(_ELAPSED.sub(r"\1=_", _TIMES.sub("T", _IDS.sub("ID", answer))))

    mine = {"name": "payroll", "description": words, "language": "python", "code": code, "examples": []}
    say(lambda: rt.register_tool("mallory", mine, on_duplicate="warn"))
    tool_id = rt.resolve_tool("mallory", "payroll").tool_id
    say(lambda: rt.register_tool("mallory", {**mine, "name": "payroll_again"}, on_duplicate="reuse"))
    say(lambda: rt.register_tool("mallory", {**mine, "name": "payroll_strict"}, on_duplicate="error"))
    say(lambda: rt.get_tool_status(tool_id, "mallory"))
    say(lambda: rt.execute_tool("mallory", tool_id, {"x": 3}).output)
    say(lambda: rt.search_tools("mallory", words, with_usage=True))
    say(lambda: rt.tool_schemas("mallory", format="mcp"))
    say(lambda: rt.tool_usage("mallory", tool_id))
    say(lambda: rt.list_executions("mallory").items[0].output)
    say(lambda: rt.deregister_tool("mallory", tool_id, purge=True))
    say(lambda: rt.register_tool("mallory", mine, "public", on_duplicate="warn"))
    return said


_CODES = (
    "def handler(x: int) -> int:\n    return x * 2\n",
    "def handler(x: int) -> int:\n    # doubled\n    return x * 2\n",
    "def handler(x: int) -> int:\n    return x + 40\n",
)
_WORDS = ("Compute the payroll bonus", "payroll payroll salary", "Doubles a number")


@contextmanager
def _runtime(backend: str) -> Iterator[ToolRuntime]:
    """A runtime on ``backend``: the memory adapters, or the local profile's SQLite store."""
    if backend == "memory":
        with toolrt.connect("memory", sandbox="inprocess") as rt:
            yield rt
        return
    with tempfile.TemporaryDirectory() as data, toolrt.connect("local", data_dir=data, sandbox="inprocess") as rt:
        yield rt


@pytest.mark.parametrize("backend", ["memory", "local"])
@settings(max_examples=20, deadline=None)
@given(
    hidden=st.lists(
        st.tuples(
            st.sampled_from(["private", "shared", "team:red", "withdrawn"]),
            st.sampled_from(_CODES),
            st.sampled_from(_WORDS),
            st.sampled_from(["payroll", "payroll_again", "bonus"]),
        ),
        min_size=1,
        max_size=4,
    ),
    code=st.sampled_from(_CODES),
    words=st.sampled_from(_WORDS),
)
def test_what_an_agent_hears_of_its_own_tool_is_the_same_beside_any_hidden_tools(
    backend: str, hidden: list[tuple[str, str, str, str]], code: str, words: str
) -> None:
    """Mallory registers (warn, reuse, error on duplicates), inspects, runs, searches, deregisters
    and registers again a tool of her own: every answer is the same whether or not alice holds
    private, shared (run by id only), team or withdrawn tools with the same code, words or names
    beside it."""
    with _runtime(backend) as alone:
        expected = _transcript(alone, code, words)
    with _runtime(backend) as rt:
        rt.add_team_member("red", "alice")
        for i, (kind, their_code, their_words, name) in enumerate(hidden):
            theirs = {"name": f"{name}_{i}" if i else name, "description": their_words, "language": "python"}
            visibility = "private" if kind == "withdrawn" else kind
            reg = rt.register_tool("alice", {**theirs, "code": their_code}, visibility, on_duplicate="create")
            rt.execute_tool("alice", reg.tool_id, {"x": 5})
            if kind == "withdrawn":
                rt.deregister_tool("alice", reg.tool_id)
        assert _transcript(rt, code, words) == expected
