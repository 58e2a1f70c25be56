"""Attacks on the MCP server's HTTP front door, each by a hostile agent (or a client with no token)
against a victim, asserted from outside: the official SDK client and raw HTTP on loopback.

With agent tokens configured nothing passes without one (401 before any session, stream or
method), a session is its agent's alone, no agent or anonymous client can use up the sessions and
listen streams others need, and an agent hears list_changed only when its own list changed.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import mcp_types as types
import pytest
import structlog
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.harness import SharedRuntimes
from tests.e2e.test_mcp import ADD, HttpServer, _free_port, _text

ALICE, MALLORY, BOB = "alice-token-0123456789", "mallory-token-0123456789", "bob-token-0123456789"
TOKENS = {ALICE: "alice", MALLORY: "mallory", BOB: "bob"}
SECRET = {**ADD, "name": "payroll", "description": "Alice's private tool."}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
HANDSHAKE = "2025-06-18"
MODERN = "2026-07-28"


def _initialize(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }


def _bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server() -> Iterator[HttpServer]:
    runtimes = SharedRuntimes()
    with (
        structlog.testing.capture_logs(),
        HttpServer(runtimes.runtime(), tokens=TOKENS, sessions_per_agent=3, listens_per_agent=2) as running,
    ):
        running.rt.register_tool("alice", SECRET)
        yield running


class Response:
    """What a raw HTTP request got back."""

    def __init__(self, status: int, headers: dict[str, str], text: str) -> None:
        self.status_code = status
        self.headers = headers
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class Raw:
    """Raw HTTP/1.1 requests to the server's /mcp (a new connection each, as a flood would)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path

    def request(self, method: str, headers: dict[str, str], body: Any = None) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, self.path, body=data, headers=headers)
            reply = conn.getresponse()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read().decode())
        finally:
            conn.close()

    def post(self, body: Any, headers: dict[str, str]) -> Response:
        return self.request("POST", headers, body)


def _open_session(http: Raw, token: str) -> str:
    """A session opened with ``token`` by raw HTTP (initialize, then initialized): its id."""
    opened = http.post(_initialize(), {**ACCEPT, **_bearer(token)})
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    done = http.post(
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {**ACCEPT, **_bearer(token), "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE},
    )
    assert done.status_code == 202, done.text
    return session


def _in_session(http: Raw, token: str | None, session: str, method: str = "tools/list") -> Response:
    return http.post(
        {"jsonrpc": "2.0", "id": 7, "method": method, "params": {}},
        {**ACCEPT, **_bearer(token), "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE},
    )


def _sse_result(response: Response) -> dict[str, Any]:
    """The JSON-RPC message of a response (JSON, or the last data line of an SSE body)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body: dict[str, Any] = response.json()
        return body
    lines = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    message: dict[str, Any] = json.loads(lines[-1])
    return message


def test_nothing_gets_past_the_front_door_without_a_token(server: HttpServer) -> None:
    """No token, a wrong one, or the identity header: every kind of request is 401 with a Bearer
    challenge (initialize, any method, a modern request, a listen, a GET stream and a DELETE on the
    victim's live session), a flood of them opens nothing, and the victim's tool never runs."""
    sandbox_before = len(server.rt.ports.sandbox.requests)  # type: ignore[attr-defined]
    http = Raw(server.url)
    session = _open_session(http, ALICE)
    modern = {**ACCEPT, "MCP-Protocol-Version": MODERN}
    attempts: list[tuple[str, dict[str, str], Any]] = [
        ("POST", ACCEPT, _initialize()),
        ("POST", ACCEPT, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "payroll"}}),
        ("POST", ACCEPT, {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}),
        ("POST", ACCEPT, [_initialize(4), _initialize(5)]),
        ("POST", modern, {"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {}}),
        ("POST", modern, {"jsonrpc": "2.0", "id": 8, "method": "subscriptions/listen", "params": {}}),
        ("POST", {**ACCEPT, "Mcp-Session-Id": session}, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
        ("GET", {"Accept": "text/event-stream", "Mcp-Session-Id": session}, None),
        ("DELETE", {"Mcp-Session-Id": session}, None),
    ]
    for credentials in ({}, {"Authorization": "Bearer " + ALICE[:-1]}, {"X-Toolrt-Agent": "alice"}):
        for method, headers, body in attempts:
            response = http.request(method, {**headers, **credentials}, body)
            assert response.status_code == 401, (method, body, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer ")
            assert "mcp-session-id" not in response.headers
    for _ in range(300):
        assert http.post(_initialize(), ACCEPT).status_code == 401
    listed = _sse_result(_in_session(http, ALICE, session))
    assert "payroll" in {tool["name"] for tool in listed["result"]["tools"]}  # her session survived it all
    assert len(server.rt.ports.sandbox.requests) == sandbox_before  # type: ignore[attr-defined]


def test_a_hostile_agent_cannot_use_up_the_sessions_the_victim_needs(server: HttpServer) -> None:
    """Mallory opens sessions up to her limit (3 here): the next is refused with 429 and what to do,
    while Alice opens hers and calls; a session Mallory ends makes room for Mallory only."""
    http = Raw(server.url)
    hers = [_open_session(http, MALLORY) for _ in range(3)]
    refused = http.post(_initialize(), {**ACCEPT, **_bearer(MALLORY)})
    assert refused.status_code == 429, refused.text
    assert "'mallory' already has 3 open MCP sessions" in refused.json()["error"]["message"]
    assert "mcp-session-id" not in refused.headers
    alice = [_open_session(http, ALICE) for _ in range(2)]  # and the SDK client's below: her 3
    listed = _sse_result(_in_session(http, ALICE, alice[0]))
    assert "payroll" in {tool["name"] for tool in listed["result"]["tools"]}
    assert http.request("DELETE", {**_bearer(MALLORY), "Mcp-Session-Id": hers[0]}).status_code == 200
    _open_session(http, MALLORY)  # room again, for her
    assert http.post(_initialize(), {**ACCEPT, **_bearer(MALLORY)}).status_code == 429

    async def victim_still_calls() -> None:
        async with server.client(headers=_bearer(ALICE)) as client:
            result = await client.call_tool("payroll", {"a": 1, "b": 2})
            assert not result.is_error, _text(result)

    anyio.run(victim_still_calls)


def test_a_session_answers_only_the_agent_that_opened_it(server: HttpServer) -> None:
    """Mallory's token on Alice's session id (a method, a GET listen stream, a DELETE) gets exactly
    what an unknown session id gets: 404 and the same body; Alice's session goes on unharmed."""
    http = Raw(server.url)
    session = _open_session(http, ALICE)
    unknown = uuid.uuid4().hex
    for target in (session, unknown):
        answers = [
            _in_session(http, MALLORY, target),
            _in_session(http, MALLORY, target, "tools/call"),
            http.request("GET", {**_bearer(MALLORY), "Accept": "text/event-stream", "Mcp-Session-Id": target}),
            http.request("DELETE", {**_bearer(MALLORY), "Mcp-Session-Id": target}),
        ]
        assert [(a.status_code, a.text) for a in answers] == [(404, answers[0].text)] * 4
        if target == session:
            mallory_saw = answers[0].text
        else:
            assert answers[0].text == mallory_saw  # not a byte of difference
    listed = _sse_result(_in_session(http, ALICE, session))
    assert "payroll" in {tool["name"] for tool in listed["result"]["tools"]}


def test_listen_streams_need_a_token_and_are_limited_per_agent(server: HttpServer) -> None:
    """A tokenless listen is 401; Mallory holds at most her 2 listen streams (the third is refused),
    and Alice's listen stream opens beside them and hears her own change."""
    http = Raw(server.url)
    listen = {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {}}
    for _ in range(50):
        response = http.post(listen, {**ACCEPT, "MCP-Protocol-Version": MODERN})
        assert response.status_code == 401

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            mallory = await stack.enter_async_context(server.client(headers=_bearer(MALLORY), mode="auto"))
            for _ in range(2):
                await stack.enter_async_context(mallory.listen(tools_list_changed=True))
            with pytest.raises(MCPError, match="'mallory' already has 2 listen streams"):
                async with mallory.listen(tools_list_changed=True):
                    pass
            async with (
                server.client(headers=_bearer(ALICE), mode="auto") as alice,
                alice.listen(tools_list_changed=True) as heard,
            ):
                registered = await alice.call_tool("register_tool", {**ADD, "name": "ledger"})
                assert not registered.is_error, _text(registered)
                with anyio.fail_after(30):
                    async for _event in heard:
                        break

    anyio.run(scenario)


async def _count(events: Any, counter: list[int]) -> None:
    async for _event in events:
        counter.append(1)


def test_no_agent_hears_of_changes_to_tools_it_may_not_see(server: HttpServer) -> None:
    """Bob registers, updates and withdraws private tools while Alice listens on both kinds of
    stream: she hears nothing of it. Her own change is heard once on each, and Bob's public tool
    (which is in her list) once more; nothing else."""
    handshake: list[int] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            handshake.append(1)

    async def bob_works_in_private(bob: Any, round_: int) -> None:
        name = f"hidden{round_}"
        made = await bob.call_tool("register_tool", {**ADD, "name": name})
        assert not made.is_error, _text(made)
        assert not (await bob.call_tool("update_tool", {"tool": name, "description": "Still hidden."})).is_error
        assert not (await bob.call_tool("deregister_tool", {"tool": name})).is_error

    async def scenario() -> None:
        modern: list[int] = []
        async with (
            server.client(headers=_bearer(ALICE), on_message=on_message) as alice,
            server.client(headers=_bearer(ALICE), mode="auto") as alice_modern,
            alice_modern.listen(tools_list_changed=True) as subscription,
            server.client(headers=_bearer(BOB)) as bob,
            anyio.create_task_group() as group,
        ):
            group.start_soon(_count, subscription, modern)
            await alice.list_tools()
            for round_ in range(3):
                await bob_works_in_private(bob, round_)
            # Alice's own change: heard on both streams, after anything sent for Bob's (one stream, in order).
            assert not (await alice.call_tool("register_tool", {**ADD, "name": "mine"})).is_error
            with anyio.fail_after(30):
                while not (handshake and modern):
                    await anyio.sleep(0.01)
            await bob_works_in_private(bob, 3)
            assert not (await bob.call_tool("register_tool", {**ADD, "name": "open", "visibility": "public"})).is_error
            with anyio.fail_after(30):
                while len(handshake) < 2 or len(modern) < 2:
                    await anyio.sleep(0.01)
            await bob_works_in_private(bob, 4)
            await alice.list_tools()  # a round trip after Bob's last change was heard by the server
            await anyio.sleep(0.5)  # room for a wrongly sent notification to arrive
            assert (len(handshake), len(modern)) == (2, 2)
            names = {t.name for t in (await alice.list_tools()).tools}
            assert {"mine", "open"} <= names and not {n for n in names if n.startswith("hidden")}
            group.cancel_scope.cancel()

    anyio.run(scenario)


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "toolrt"
    command = [str(exe), "--profile", "memory", "--data-dir", str(tmp_path / "data"), "serve", "--transport", "http"]
    return subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True)


def test_a_short_agent_token_is_refused_before_anything_is_served(tmp_path: Path) -> None:
    """`toolrt serve --token TOKEN=AGENT` with a token under 16 characters exits 2, naming the agent
    and the remedy, without echoing the token."""
    server = _serve(tmp_path, "--port", str(_free_port()), "--token", "short-secret=alice")
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 2, stderr
    assert "token for agent 'alice' is too weak" in stderr and "--new-token" in stderr
    assert "short-secret" not in stderr and "Traceback" not in stderr


def test_serve_makes_a_token_prints_it_once_and_only_it_opens_the_door(tmp_path: Path) -> None:
    """`toolrt serve --new-token alice` prints one strong token for alice on stderr: with it the SDK
    client lists alice's tools; without it, 401."""
    port = _free_port()
    server = _serve(tmp_path, "--port", str(port), "--new-token", "alice")
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert line.startswith("token for agent alice: "), line
        token = line.split(": ", 1)[1].strip()
        assert len(token) >= 16
        url = f"http://127.0.0.1:{port}/mcp"
        for _ in range(600):
            if server.stderr.readline().startswith("toolrt MCP server on"):
                break
        raw = Raw(url)
        for _ in range(600):
            try:
                assert raw.post(_initialize(), ACCEPT).status_code == 401
                break
            except ConnectionRefusedError:
                time.sleep(0.05)

        async def scenario() -> None:
            transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=_bearer(token)))
            async with Client(transport, mode="legacy") as client:
                assert "manage_tools" in {t.name for t in (await client.list_tools()).tools}

        anyio.run(scenario)
    finally:
        server.terminate()
        _, rest = server.communicate(timeout=30)
    assert token not in rest  # printed once
