"""The MCP front door holds on the SDK the frameworks resolve (1.x): no token no answer, a session is its agent's, and
an agent sees its own tools only. Two agents, one of them hostile, driven with the frameworks' SDK client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

import toolrt
from tests.frameworks.conftest import ADD, TOOLRT, _free_port, _wait_for

ALICE, MALLORY = "alice-token-0123456789", "mallory-token-0123456789"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("front-door")
    with toolrt.connect("local", data_dir=data) as rt:
        rt.register_tool("alice", {"name": "secret_sum", "description": "Alice's.", "language": "python", "code": ADD})
    port = _free_port()
    log = data / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                TOOLRT,
                "--data-dir",
                str(data),
                "serve",
                "--transport",
                "http",
                "--port",
                str(port),
                "--token",
                f"{ALICE}=alice",
                "--token",
                f"{MALLORY}=mallory",
                "--sessions-per-agent",
                "3",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(port, process, log)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_no_token_gets_401_before_any_session(url: str) -> None:
    """An initialize without a token, or with a wrong one, is refused with 401."""
    for headers in ({}, {"Authorization": "Bearer not-a-token-at-all-000"}):
        reply = httpx.post(url, json=INITIALIZE, headers={**HEADERS, **headers}, timeout=30)
        assert reply.status_code == 401


def test_another_agents_token_cannot_use_a_session(url: str) -> None:
    """Mallory's token on Alice's session gets the answer an unknown session gets (404)."""
    opened = httpx.post(url, json=INITIALIZE, headers={**HEADERS, "Authorization": f"Bearer {ALICE}"}, timeout=30)
    session = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    stolen = httpx.post(
        url,
        json=listing,
        headers={**HEADERS, "Authorization": f"Bearer {MALLORY}", "Mcp-Session-Id": session},
        timeout=30,
    )
    unknown = httpx.post(
        url,
        json=listing,
        headers={**HEADERS, "Authorization": f"Bearer {MALLORY}", "Mcp-Session-Id": "0" * 32},
        timeout=30,
    )
    assert stolen.status_code == unknown.status_code == 404


def test_each_agent_lists_and_calls_only_what_it_may(url: str) -> None:
    """Through the SDK's own client: Alice lists and calls her private tool; Mallory is told it does not exist."""

    async def as_agent(token: str) -> tuple[set[str], Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with streamablehttp_client(url, headers=headers) as (read, write, _), ClientSession(read, write) as s:
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            return names, await s.call_tool("secret_sum", {"a": 1, "b": 2})

    alice_names, alice_call = anyio.run(as_agent, ALICE)
    mallory_names, mallory_call = anyio.run(as_agent, MALLORY)
    assert "secret_sum" in alice_names and alice_call.structuredContent == {"result": 3}
    assert "secret_sum" not in mallory_names and mallory_call.isError
    assert "unknown tool" in mallory_call.content[0].text


def _open(url: str, token: str) -> httpx.Response:
    """initialize, then (when a session opened) notifications/initialized, as a client does."""
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    opened = httpx.post(url, json=INITIALIZE, headers=headers, timeout=30)
    if opened.status_code == 200:
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        done = httpx.post(
            url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**headers, **session},
            timeout=30,
        )
        assert done.status_code == 202, done.text
    return opened


def test_one_agent_cannot_use_up_the_sessions(url: str) -> None:
    """Past its own limit of sessions Mallory gets 429; Alice still opens hers (the SDK's 1.x session manager
    admits per owner as 2.x's does)."""
    codes = [_open(url, MALLORY).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert _open(url, ALICE).status_code == 200
