"""A name an agent sees is the tool it gets: no agent can take the name another agent's tool is
shown as, and a name shown in a session keeps meaning that tool until the session lists again.

Mallory (hostile) tries to squat the qualified name of Alice's tool; Carol (the victim) lists and
calls through the official SDK client. What ran, and for whom, is read from outside: the fake
sandbox's requests and the runtime's execution records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import attrs
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e.harness import SharedRuntimes
from tests.e2e.test_mcp import ADD, HttpServer, _text
from toolrt.adapters.mcp.server import mcp_names
from toolrt.application.tool_names import exported_names
from toolrt.contracts import builders as b
from toolrt.domain import (
    QUALIFIER_SEPARATOR,
    NotFoundError,
    Tool,
    ToolVersion,
    ValidationError,
    Visibility,
    identifier,
    owner_qualifier,
)

TOKENS = {"alice-token-0123456789": "alice", "mallory-token-0123456789": "mallory", "carol-token-0123456789": "carol"}
ZETA = {**ADD, "name": "zeta", "description": "Alice's zeta."}


def _as(agent: str) -> dict[str, str]:
    token = next(t for t, a in TOKENS.items() if a == agent)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with structlog.testing.capture_logs(), HttpServer(SharedRuntimes().runtime(), tokens=TOKENS) as running:
        yield running


def _ran(server: HttpServer) -> list[tuple[str, str]]:
    """(tool id, caller) of every call the sandbox was asked to run."""
    return [(r.tool, r.tenant) for r in server.rt.ports.sandbox.requests]  # type: ignore[attr-defined]


def test_no_agent_can_register_the_name_another_agents_tool_is_shown_as(server: HttpServer) -> None:
    """Mallory cannot register, batch-register or rename a tool to ``alice__zeta`` (over MCP or
    through the library); Carol's ``alice__zeta`` runs Alice's tool, and Mallory reads nothing of it."""
    rt = server.rt
    alice_zeta = rt.register_tool("alice", ZETA, "public").tool
    rt.register_tool("carol", {**ZETA, "description": "Carol's own zeta."})
    mallory_tool = rt.register_tool("mallory", {**ZETA, "name": "trap", "description": "Mallory's."}, "public").tool
    for squat in ("alice__zeta", "carol__zeta", "a__b", "zeta__"):
        with pytest.raises(ValidationError, match="'__' is reserved"):
            rt.register_tool("mallory", {**ZETA, "name": squat}, "public")
        with pytest.raises(ValidationError, match="'__' is reserved"):
            rt.update_tool("mallory", mallory_tool.tool_id, {**ZETA, "name": squat})
        (item,) = rt.register_tools("mallory", [{**ZETA, "name": squat}], visibility="public")
        assert isinstance(item.error, ValidationError)

    async def scenario() -> None:
        async with server.client(headers=_as("mallory")) as mallory:
            refused = await mallory.call_tool("register_tool", {**ZETA, "name": "alice__zeta", "visibility": "public"})
            assert refused.is_error and "'__' is reserved" in _text(refused)
            renamed = await mallory.call_tool("update_tool", {"tool": "trap", "name": "alice__zeta"})
            assert renamed.is_error and "'__' is reserved" in _text(renamed)
        async with server.client(headers=_as("carol")) as carol:
            names = {t.name: t for t in (await carol.list_tools()).tools}
            assert {"zeta", "alice__zeta", "trap"} <= set(names)
            assert names["alice__zeta"].description == "Alice's zeta."
            called = await carol.call_tool("alice__zeta", {"a": 1, "b": 2, "card": "4111"})
            assert not called.is_error, _text(called)

    anyio.run(scenario)
    assert _ran(server)[-1] == (alice_zeta.tool_id, "carol")
    assert not rt.list_executions("mallory", tool=mallory_tool.tool_id).items
    assert {t.name for t in rt.list_tools(owner="mallory", status=None)} == {"trap"}


def test_a_stored_tool_named_like_a_qualified_name_is_only_ever_shown_qualified(server: HttpServer) -> None:
    """A tool of Mallory's stored before the rule with the name ``alice__zeta`` keeps working for
    her, is listed to others as ``mallory__alice__zeta``, and never takes Alice's name."""
    rt = server.rt
    alice_zeta = rt.register_tool("alice", ZETA, "public").tool
    rt.register_tool("carol", {**ZETA, "description": "Carol's own zeta."})
    old = rt.register_tool("mallory", {**ZETA, "name": "old", "description": "Stored long ago."}, "public").tool
    legacy_definition = attrs.evolve(old.definition, name="alice__zeta")
    legacy = attrs.evolve(
        old,
        name="alice__zeta",
        versions=(ToolVersion(1, legacy_definition.code_hash, legacy_definition, old.created_at),),
        record_version=old.record_version + 1,
    )
    rt.ports.repository.save(legacy)

    async def scenario() -> None:
        async with server.client(headers=_as("carol")) as carol:
            names = {t.name: t.description for t in (await carol.list_tools()).tools}
            assert names["alice__zeta"] == "Alice's zeta."
            assert names["mallory__alice__zeta"] == "Stored long ago."
            assert not (await carol.call_tool("alice__zeta", {"a": 1, "b": 2})).is_error
        async with server.client(headers=_as("mallory")) as mallory:
            hers = {t.name for t in (await mallory.list_tools()).tools}
            assert "mallory__alice__zeta" in hers and "alice__zeta" not in hers  # hers, qualified even to her
            mine = await mallory.call_tool("mallory__alice__zeta", {"a": 1, "b": 2})
            assert not mine.is_error, _text(mine)

    anyio.run(scenario)
    assert _ran(server) == [(alice_zeta.tool_id, "carol"), (old.tool_id, "mallory")]
    with pytest.raises(NotFoundError):  # nor by that name through the library (or the CLI)
        rt.execute_tool("carol", "alice__zeta", {"a": 1, "b": 2})
    assert rt.execute_tool("mallory", "alice__zeta", {"a": 1, "b": 2}).tool_id == old.tool_id


def test_a_name_shown_in_a_session_never_comes_to_mean_another_tool(server: HttpServer) -> None:
    """Carol was shown ``zeta`` (Alice's, the only one). Mallory then registers a public ``zeta``:
    Carol's ``zeta`` still runs Alice's tool. Carol's own ``zeta`` shown, then withdrawn elsewhere:
    her ``zeta`` is an unknown tool (never Alice's) until she lists again."""
    rt = server.rt
    alice_zeta = rt.register_tool("alice", ZETA, "public").tool

    async def scenario() -> None:
        async with server.client(headers=_as("carol")) as carol:
            assert "zeta" in {t.name for t in (await carol.list_tools()).tools}
            mallory_zeta = await anyio.to_thread.run_sync(
                lambda: rt.register_tool("mallory", {**ZETA, "description": "Mallory's zeta."}, "public").tool
            )
            assert not (await carol.call_tool("zeta", {"a": 1, "b": 2, "secret": "s1"})).is_error
            assert _ran(server)[-1] == (alice_zeta.tool_id, "carol")
            listed = {t.name for t in (await carol.list_tools()).tools}
            assert {"alice__zeta", "mallory__zeta"} <= listed and "zeta" not in listed
            await anyio.to_thread.run_sync(lambda: rt.deregister_tool("mallory", mallory_zeta.tool_id))

        async with server.client(headers=_as("carol")) as carol:
            own = await carol.call_tool("register_tool", {**ZETA, "description": "Carol's zeta."})
            assert not own.is_error, _text(own)
            listed = {t.name for t in (await carol.list_tools()).tools}
            assert {"zeta", "alice__zeta"} <= listed
            await anyio.to_thread.run_sync(lambda: rt.deregister_tool("carol", own.structured_content["tool_id"]))
            before = len(_ran(server))
            gone = await carol.call_tool("zeta", {"a": 1, "b": 2, "secret": "s2"})
            assert gone.is_error and "unknown tool 'zeta'" in _text(gone)
            assert len(_ran(server)) == before  # nothing ran: above all not Alice's tool
            assert "zeta" in {t.name for t in (await carol.list_tools()).tools}  # listed again: Alice's now
            assert not (await carol.call_tool("zeta", {"a": 1, "b": 2})).is_error
            assert _ran(server)[-1] == (alice_zeta.tool_id, "carol")

    anyio.run(scenario)


OWNERS = st.one_of(
    st.sampled_from(["alice", "a", "a_b", "a-b", "a.b", "a__b", "a_", "_a", "x_h0123456789abcdef", "ü", "evil[/]"]),
    st.text(min_size=1, max_size=40),
)
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True)


@st.composite
def _tools(draw: Any) -> list[Tool]:
    owners = draw(st.lists(OWNERS, min_size=1, max_size=5, unique=True))
    tools = []
    for index in range(draw(st.integers(1, 10))):
        owner, name = draw(st.sampled_from(owners)), draw(NAMES)
        tool = b.tool(f"tool-{index:03d}", owner, "t", visibility=Visibility.PUBLIC)
        tools.append(attrs.evolve(tool, name=name))  # legacy names (with '__') included, as a store may hold them
    return tools


@settings(max_examples=300, deadline=None)
@given(tools=_tools(), viewer=OWNERS)
def test_every_name_shown_says_whose_tool_it_is(tools: list[Tool], viewer: str) -> None:
    """For any tools and owners (legacy names with '__' among them) and any viewer: a name without
    '__' is the tool's own name; a name with it starts with the qualifier of the tool's owner, a
    qualifier no other owner has. So no owner's tool is ever shown under a name naming another."""
    owners = {t.owner for t in tools}
    qualifiers = {owner_qualifier(o) for o in owners}
    assert len(qualifiers) == len(owners)
    for qualifier in qualifiers:
        assert QUALIFIER_SEPARATOR not in qualifier and not qualifier.endswith("_")
    for named in (exported_names(tools, viewer), mcp_names(tools, viewer)):
        assert sorted(t.tool_id for t in named.values()) == sorted(t.tool_id for t in tools)
        for name, tool in named.items():
            assert len(name) <= 64
            if QUALIFIER_SEPARATOR in name:
                assert name.split(QUALIFIER_SEPARATOR, 1)[0] == owner_qualifier(tool.owner)
            else:
                assert name == identifier(tool.name)  # the tool's own name, '-' shown as '_'
