"""The MCP server over HTTP is closed by default: identity by token off loopback, Host and Origin checked."""

from __future__ import annotations

import http.client
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import structlog

from tests.e2e.harness import SharedRuntimes
from tests.e2e.test_mcp import ADD, HttpServer, _text
from tests.fakes import EchoSandbox
from toolrt.adapters.mcp.server import ToolrtMcpServer
from toolrt.domain import ValidationError
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

SECRET_TOOL = {**ADD, "name": "payroll", "description": "The victim's private tool."}


def test_a_hostile_agent_with_its_own_token_cannot_act_as_another(runtimes: SharedRuntimes) -> None:
    """Mallory, holding a valid token of her own, forges X-Toolrt-Agent: she sees and touches only her tools."""
    tokens = {"victim-token-0123456789": "victim", "mallory-token-0123456789": "mallory"}
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), tokens=tokens) as server:
        private = server.rt.register_tool("victim", SECRET_TOOL)

        async def scenario() -> None:
            forged = {"Authorization": "Bearer mallory-token-0123456789", "X-Toolrt-Agent": "victim"}
            async with server.client(headers=forged) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "payroll" not in names
                for call in (
                    client.call_tool("payroll", {"a": 1, "b": 2}),
                    client.call_tool(private.tool_id, {"a": 1, "b": 2}),
                    client.call_tool("deregister_tool", {"tool": private.tool_id, "purge": True}),
                    client.call_tool("update_tool", {"tool": private.tool_id, **SECRET_TOOL, "description": "owned"}),
                ):
                    result: types.CallToolResult = await call
                    assert result.is_error, _text(result)
            async with server.client(headers={"Authorization": "Bearer victim-token-0123456789"}) as client:
                ok = await client.call_tool("payroll", {"a": 1, "b": 2})
                assert not ok.is_error, _text(ok)

        anyio.run(scenario)
        tool = server.rt.get_tool_status(private.tool_id)
        assert tool.status.value == "active" and (tool.current_version, tool.latest_version) == (1, 1)


def test_a_wrong_or_missing_token_is_refused(runtimes: SharedRuntimes) -> None:
    """A token that is not configured, or none, gets no agent at all (no fallback to the header):
    the SDK client cannot even initialize, and the victim's tool never runs."""
    tokens = {"victim-token-0123456789": "victim"}
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), tokens=tokens) as server:
        server.rt.register_tool("victim", SECRET_TOOL)

        async def scenario() -> None:
            for headers in (
                {"Authorization": "Bearer victim-token-012345678"},
                {"X-Toolrt-Agent": "victim"},
                {"Authorization": "Basic victim-token-0123456789"},
            ):
                with pytest.raises(Exception) as refused:  # noqa: PT011 (the SDK raises a group)
                    async with server.client(headers=headers) as client:
                        await client.call_tool("payroll", {"a": 1, "b": 2})
                assert "Server returned an error response" in repr(refused.value)

        anyio.run(scenario)
        assert runtimes.sandbox.requests == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example:80"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "https://127.0.0.1.evil.example:443"}, 403),
    ],
)
def test_foreign_host_and_origin_are_refused(runtimes: SharedRuntimes, headers: dict[str, str], status: int) -> None:
    """A request naming another Host, or sent by a page of another Origin (DNS rebinding), is refused."""
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime()) as server:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        sent = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Host": f"127.0.0.1:{server.port}",
            **headers,
        }
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("POST", "/mcp", body=body, headers=sent)
            assert conn.getresponse().status == status
        finally:
            conn.close()


def test_binding_beyond_loopback_without_tokens_is_refused() -> None:
    """Building the HTTP app for a non-loopback address without tokens raises a ValidationError naming the fix."""
    server = ToolrtMcpServer(SharedRuntimes().runtime(), watch_interval_s=0)
    try:
        with pytest.raises(ValidationError, match="--token TOKEN=AGENT.*--insecure-no-auth"):
            server.http_app("0.0.0.0")
        with pytest.raises(ValidationError):
            server.http_app("192.0.2.10")
    finally:
        server.close()


def test_insecure_no_auth_is_allowed_but_logged(caplog: pytest.LogCaptureFixture) -> None:
    """--insecure-no-auth lets a non-loopback server start, with a warning in the logs."""
    server = ToolrtMcpServer(SharedRuntimes().runtime(), watch_interval_s=0)
    try:
        caplog.set_level(logging.WARNING, logger="toolrt")
        server.http_app("0.0.0.0", insecure_no_auth=True, allowed_hosts=["mcp.example.com"])
        assert any("without authentication" in r.getMessage() for r in caplog.records)
    finally:
        server.close()


def test_tokens_make_a_non_loopback_bind_acceptable() -> None:
    """With tokens, binding to another address needs no flag."""
    server = ToolrtMcpServer(SharedRuntimes().runtime(), tokens={"a-token-0123456789": "a"}, watch_interval_s=0)
    try:
        assert server.http_app("0.0.0.0", allowed_hosts=["mcp.example.com:8443"]) is not None
    finally:
        server.close()


def test_cli_refuses_a_wildcard_bind_without_tokens(tmp_path: Path) -> None:
    """`toolrt serve --transport http --host 0.0.0.0` exits 2 with one line naming --token and --insecure-no-auth."""
    exe = Path(sys.executable).parent / "toolrt"
    done = subprocess.run(
        [
            str(exe),
            "--data-dir",
            str(tmp_path / "data"),
            "serve",
            "--transport",
            "http",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--token" in done.stderr and "--insecure-no-auth" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists(), "nothing is opened before the check"


def test_a_warm_name_cache_never_outlives_the_right_to_call(tmp_path: Path) -> None:
    """The server keeps each agent's visible names between changes; a change made by another
    process (here a second runtime on the same store, whose events this server never hears, and a
    watcher too slow to notice) leaves the names cached, yet the hostile agent's next call is
    refused: whether a tool may run is decided from the store on every call."""
    import toolrt

    data = tmp_path / "data"
    rt = toolrt.connect("local", data_dir=data)
    other = toolrt.connect("local", data_dir=data)
    tokens = {"victim-token-0123456789": "victim", "mallory-token-0123456789": "mallory"}
    try:
        rt.add_team_member("finance", "victim")
        rt.add_team_member("finance", "mallory")
        team_tool = rt.register_tool("victim", {**SECRET_TOOL, "name": "ledger"}, "team:finance")
        public = rt.register_tool("victim", {**SECRET_TOOL, "name": "rates"}, "public")
        with structlog.testing.capture_logs(), HttpServer(rt, tokens=tokens, watch_interval_s=300) as server:

            async def scenario() -> None:
                async with server.client(headers={"Authorization": "Bearer mallory-token-0123456789"}) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert {"ledger", "rates"} <= names  # both cached for mallory now
                    for name in ("ledger", "rates"):
                        assert not (await client.call_tool(name, {"a": 1, "b": 2})).is_error
                    await anyio.to_thread.run_sync(other.remove_team_member, "finance", "mallory")
                    await anyio.to_thread.run_sync(other.deregister_tool, "victim", public.tool_id)
                    stale = server.mcp._cached_visible("mallory")  # the server heard nothing of it
                    assert stale is not None and {"ledger", "rates"} <= set(stale)
                    for name in ("ledger", "rates"):
                        refused = await client.call_tool(name, {"a": 5, "b": 6})
                        assert refused.is_error, _text(refused)

            anyio.run(scenario)
        calls = rt.list_executions("victim", tool=team_tool.tool_id).items
        assert [e.caller for e in calls] == ["mallory"]  # the one call made while she was a member
    finally:
        other.close()
        rt.close()


def test_a_change_heard_as_an_event_clears_every_agents_cached_names(runtimes: SharedRuntimes) -> None:
    """A tool made private again (deregistered and re-registered privately by its owner, through
    the runtime the server serves) disappears from the hostile agent's list at once, and a new
    public tool appears: cached names never survive an event."""
    tokens = {"victim-token-0123456789": "victim", "mallory-token-0123456789": "mallory"}
    with (
        structlog.testing.capture_logs(),
        HttpServer(runtimes.runtime(), tokens=tokens, watch_interval_s=300) as server,
    ):
        shared = server.rt.register_tool("victim", {**SECRET_TOOL, "name": "quotes"}, "public")

        async def scenario() -> None:
            async with server.client(headers={"Authorization": "Bearer mallory-token-0123456789"}) as client:
                assert "quotes" in {t.name for t in (await client.list_tools()).tools}
                await anyio.to_thread.run_sync(lambda: server.rt.deregister_tool("victim", shared.tool_id, purge=True))
                cached = server.mcp._cached_visible("mallory")  # gone, or read again since
                assert cached is None or "quotes" not in cached
                await anyio.to_thread.run_sync(lambda: server.rt.register_tool("victim", SECRET_TOOL))
                await anyio.to_thread.run_sync(
                    lambda: server.rt.register_tool("victim", {**SECRET_TOOL, "name": "news"}, "public")
                )
                names = {t.name for t in (await client.list_tools()).tools}
                assert "quotes" not in names and "payroll" not in names and "news" in names

        anyio.run(scenario)


def test_the_param_header_schema_lookup_is_per_caller(runtimes: SharedRuntimes) -> None:
    """The SDK asks the server for a tool's input schema before dispatch (its Mcp-Param header
    check) with no request context: the caller is the agent the front door authenticated for the
    request, so a hostile agent never learns the schema of another agent's private tool that way."""
    from toolrt.adapters.mcp.front_door import REQUEST_AGENT

    rt = runtimes.runtime()
    tokens = {"victim-token-0123456789": "victim", "mallory-token-0123456789": "mallory"}
    server = ToolrtMcpServer(rt, tokens=tokens, watch_interval_s=0)
    try:
        rt.register_tool("victim", SECRET_TOOL)

        def schema_for(agent: str | None) -> object:
            reset = REQUEST_AGENT.set(agent)
            try:
                return server._input_schema("payroll")
            finally:
                REQUEST_AGENT.reset(reset)

        assert schema_for("victim") == SECRET_TOOL["input_schema"]
        assert schema_for("mallory") is None
        assert schema_for(None) is None  # outside a request, or no agent authenticated: nothing
    finally:
        server.close()


class StallingSandbox(EchoSandbox):
    """Holds every call of one agent until released, counting how many it holds at once."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.held = 0
        self.most = 0

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        if request.tenant == self.agent:
            with self._lock:
                self.held += 1
                self.most = max(self.most, self.held)
            try:
                self.release.wait(60)
            finally:
                with self._lock:
                    self.held -= 1
        return super().run(request, cancel)


def test_a_hostile_agents_stalled_calls_never_hold_another_agents_calls() -> None:
    """Mallory fires more stalled calls than anyio's shared pool has threads (40): she holds at most
    max_concurrent_executions threads, the rest of hers wait holding none, and the victim's call
    runs while all of hers are still stalled."""
    sandbox = StallingSandbox("mallory")
    runtimes = SharedRuntimes(sandbox)
    tokens = {"victim-token-0123456789": "victim", "mallory-token-0123456789": "mallory"}
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), tokens=tokens) as server:
        limit = server.rt.policy.max_concurrent_executions
        server.rt.register_tool("victim", ADD)
        server.rt.register_tool("mallory", {**ADD, "name": "stall", "description": "Never returns in time."})
        outcome: dict[str, Any] = {}

        async def scenario() -> None:
            victim = server.client(headers={"Authorization": "Bearer victim-token-0123456789"})
            mallory = server.client(headers={"Authorization": "Bearer mallory-token-0123456789"})
            async with victim as v, mallory as m, anyio.create_task_group() as group:
                try:
                    for i in range(41):
                        group.start_soon(m.call_tool, "stall", {"a": i, "b": 0})
                    with anyio.fail_after(30):
                        while sandbox.held < limit:
                            await anyio.sleep(0.01)
                    await anyio.sleep(0.2)  # room for more of hers to start, were any allowed to
                    with anyio.fail_after(30):  # without a share of its own, this waits for hers
                        outcome["result"] = await v.call_tool("add", {"a": 1, "b": 2})
                    outcome["held"] = sandbox.held
                finally:
                    sandbox.release.set()

        anyio.run(scenario)
    result: types.CallToolResult = outcome["result"]
    assert not result.is_error, _text(result)
    assert outcome["held"] == limit  # all of hers still stalled when the victim's call came back
    assert sandbox.most == limit
