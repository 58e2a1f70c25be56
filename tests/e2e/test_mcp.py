"""The MCP server driven by the mcp SDK's own client, over streamable HTTP and stdio."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import structlog
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.e2e.harness import EXAMPLES, SharedRuntimes
from tests.fakes import EchoSandbox, memory_runtime
from toolrt.adapters.mcp.server import ToolrtMcpServer, mcp_names
from toolrt.application import ToolRuntime
from toolrt.application.policy import ExecutionPolicy
from toolrt.domain import ValidationError

ADD = {
    "name": "add",
    "description": "Add two numbers.",
    "language": "python",
    "code": "def handler(a: float, b: float) -> float:\n    return a + b\n",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class HttpServer:
    """A ToolrtMcpServer served by uvicorn in a thread on a free loopback port."""

    def __init__(self, rt: ToolRuntime, **options: Any) -> None:
        self.rt = rt
        self.mcp = ToolrtMcpServer(rt, default_agent="fallback-agent", **options)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(self.mcp.http_app(), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.uvicorn.run, name="mcp-http", daemon=True)

    def __enter__(self) -> HttpServer:
        self.thread.start()
        for _ in range(600):  # started is set once the socket listens
            if self.uvicorn.started or not self.thread.is_alive():
                break
            time.sleep(0.05)
        assert self.uvicorn.started, "the MCP HTTP server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=30)
        self.mcp.close()

    def client(
        self,
        *,
        headers: dict[str, str] | None = None,
        mode: str = "legacy",
        on_message: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Client:
        transport = streamable_http_client(self.url, http_client=create_mcp_http_client(headers=headers or {}))
        return Client(transport, mode=mode, message_handler=on_message)  # type: ignore[arg-type]


@pytest.fixture
def http(runtimes: SharedRuntimes) -> Iterator[HttpServer]:
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime()) as server:
        yield server


def _text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


def test_list_and_call_tools_with_names_disambiguated(http: HttpServer) -> None:
    """Each visible tool is an MCP tool; a name clash lists the other agent's tool as owner__name."""
    http.rt.register_tool("alice", ADD)
    http.rt.register_tool("bob", ADD, "public")
    http.rt.register_tool("bob", {**ADD, "name": "secret"})  # private to bob: not listed for alice

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "alice"}) as client:
            listed = await client.list_tools()
            names = {t.name for t in listed.tools}
            assert {"add", "bob__add", "search_tools", "manage_tools"} == names  # two of toolrt's own
            add = next(t for t in listed.tools if t.name == "add")
            assert add.description == "Add two numbers." and add.input_schema["required"] == ["a", "b"]
            result = await client.call_tool("add", {"a": 1, "b": 2})
            assert not result.is_error and result.structured_content == {"echo": {"a": 1, "b": 2}}
            theirs = await client.call_tool("bob__add", {"a": 1, "b": 2})
            assert not theirs.is_error

    anyio.run(scenario)


def _weather(name: str, description: str) -> dict[str, Any]:
    return {**ADD, "name": name, "description": description}


def test_search_mode_lists_own_tools_and_finds_the_rest_by_search(runtimes: SharedRuntimes) -> None:
    """Past the threshold, tools/list holds the caller's own tools plus search_tools and manage_tools; a
    search result carries the schema and the name to call; another agent's private tool is never found."""
    with structlog.testing.capture_logs(), HttpServer(runtimes.runtime(), search_threshold=2) as server:
        rt = server.rt
        rt.register_tool("alice", _weather("my_notes", "Keep notes"))
        rt.register_tool("bob", _weather("city_forecast", "Weather forecast for a city"), "public")
        rt.register_tool("bob", _weather("tide_table", "Tide times at a harbour"), "public")
        rt.register_tool("bob", _weather("forecast_secret", "Bob's private weather forecast"))

        async def scenario() -> None:
            async with server.client(headers={"X-Toolrt-Agent": "alice"}) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"my_notes", "search_tools", "manage_tools"} == names
                assert not names & {"city_forecast", "tide_table", "forecast_secret"}
                found = await client.call_tool("search_tools", {"query": "weather forecast"})
                assert not found.is_error
                results = (found.structured_content or {})["results"]
                assert [r["name"] for r in results] == ["city_forecast"]
                assert results[0]["input_schema"]["required"] == ["a", "b"]
                assert results[0]["usage"] == {"executions": 0, "distinct_callers": 0, "success_rate": None}
                called = await client.call_tool(
                    "manage_tools", {"action": "call", "tool": "city_forecast", "arguments": {"a": 1, "b": 2}}
                )
                assert not called.is_error and called.structured_content == {"echo": {"a": 1, "b": 2}}
                full = await client.call_tool("call_tool", {"name": "city_forecast", "arguments": {"a": 1, "b": 2}})
                assert not full.is_error  # the full set's names are answered in either mode
                direct = await client.call_tool("tide_table", {"a": 1, "b": 2})  # unlisted, still callable
                assert not direct.is_error
                hidden = await client.call_tool("call_tool", {"name": "forecast_secret", "arguments": {}})
                assert hidden.is_error and "unknown tool" in _text(hidden)
            async with server.client(headers={"X-Toolrt-Agent": "bob"}) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"city_forecast", "tide_table", "forecast_secret", "search_tools", "manage_tools"} <= names
                listed = await client.call_tool("list_templates", {})
                assert "unit_converter" in {t["name"] for t in (listed.structured_content or {})["templates"]}
                made = await client.call_tool(
                    "create_from_template",
                    {
                        "template": "unit_converter",
                        "values": {
                            "tool_name": "miles_to_km",
                            "from_unit": "miles",
                            "to_unit": "km",
                            "factor": "1.609344",
                        },
                    },
                )
                assert not made.is_error, _text(made)
                assert "miles_to_km" in {t.name for t in (await client.list_tools()).tools}  # bob's own

        anyio.run(scenario)


def test_search_mode_never_lists_everything(runtimes: SharedRuntimes) -> None:
    """search_mode="never" keeps the full listing past the threshold, without call_tool."""
    with (
        structlog.testing.capture_logs(),
        HttpServer(runtimes.runtime(), search_mode="never", search_threshold=0) as server,
    ):
        server.rt.register_tool("bob", _weather("city_forecast", "Weather forecast for a city"), "public")

        async def scenario() -> None:
            async with server.client(headers={"X-Toolrt-Agent": "alice"}) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "city_forecast" in names and "search_tools" in names and "call_tool" not in names

        anyio.run(scenario)
    with pytest.raises(ValidationError, match="search_mode"):
        ToolrtMcpServer(server.rt, search_mode="sometimes")


def test_register_over_mcp_sends_list_changed_and_the_new_tool_runs(http: HttpServer) -> None:
    """An agent registers its own tool over MCP, hears tools/list_changed, and calls the new tool."""
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "carol"}, on_message=on_message) as client:
            before = {t.name for t in (await client.list_tools()).tools}
            assert "add" not in before
            reg = await client.call_tool("register_tool", {**ADD, "visibility": "public"})
            assert not reg.is_error, _text(reg)
            assert reg.structured_content is not None and reg.structured_content["version"] == 1
            with anyio.fail_after(30):
                await changed.wait()
            after = {t.name for t in (await client.list_tools()).tools}
            assert "add" in after
            run = await client.call_tool("add", {"a": 2, "b": 3})
            assert not run.is_error and run.structured_content == {"echo": {"a": 2, "b": 3}}
            upd = await client.call_tool("update_tool", {"tool": "add", "description": "Adds."})
            assert not upd.is_error and upd.structured_content is not None and upd.structured_content["version"] == 2
            versions = await client.call_tool("list_versions", {"tool": "add"})
            assert versions.structured_content is not None and [
                v["version"] for v in versions.structured_content["versions"]
            ] == [1, 2]
            back = await client.call_tool("rollback_tool", {"tool": "add", "version": 1})
            assert not back.is_error and back.structured_content is not None and back.structured_content["version"] == 1
            gone = await client.call_tool("deregister_tool", {"tool": "add"})
            assert not gone.is_error
            assert "add" not in {t.name for t in (await client.list_tools()).tools}

    anyio.run(scenario)
    assert [t.owner for t in http.rt.list_tools(status=None)] == ["carol"]


def test_tool_errors_come_back_as_is_error(http: HttpServer) -> None:
    """Bad params, unknown tools, someone else's tool, invalid code and requirements a profile cannot
    install are MCP tool errors, not crashes."""
    strict = {
        **ADD,
        "name": "strict",
        "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
    }
    http.rt.register_tool("dave", strict, "public")

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "erin"}) as client:
            bad_params = await client.call_tool("strict", {"x": "seven"})
            assert bad_params.is_error and "ValidationError" in _text(bad_params)
            unknown = await client.call_tool("nope", {})
            assert unknown.is_error and "unknown tool 'nope'" in _text(unknown)
            theirs = await client.call_tool("update_tool", {"tool": "strict", "description": "mine now"})
            assert theirs.is_error and "may not update" in _text(theirs)
            rejected = await client.call_tool(
                "register_tool", {**ADD, "code": "forbidden = 1\ndef handler():\n    return 1\n"}
            )
            assert rejected.is_error and "security.fake" in _text(rejected)
            still = await client.list_tools()
            assert "strict" in {t.name for t in still.tools}
            mine = await client.call_tool("register_tool", {**ADD, "name": "mine"})
            assert not mine.is_error
            stringly = await client.call_tool("deregister_tool", {"tool": "mine", "purge": "false"})
            assert stringly.is_error and "purge" in _text(stringly)
            bogus = await client.call_tool("register_tool", {**ADD, "name": "other", "visibility": "secret"})
            assert bogus.is_error and "visibility" in _text(bogus) and "internal error" not in _text(bogus)
            # The memory profile installs no packages: requirements are refused, never ignored.
            packages = await client.call_tool("register_tool", {**ADD, "name": "pkgs", "requirements": ["six"]})
            assert packages.is_error and "RequirementsUnsupportedError" in _text(packages)
            assert "local profile" in _text(packages)

    anyio.run(scenario)
    assert [t.name for t in http.rt.list_tools("erin")] == ["mine", "strict"]


def test_bearer_tokens_map_to_agents(runtimes: SharedRuntimes) -> None:
    """With tokens configured, the bearer token decides the agent, and requests without one are refused."""
    with (
        structlog.testing.capture_logs(),
        HttpServer(runtimes.runtime(), tokens={"frank-token-0123456789": "frank"}) as server,
    ):
        server.rt.register_tool("frank", ADD)

        async def scenario() -> None:
            async with server.client(
                headers={"Authorization": "Bearer frank-token-0123456789", "X-Toolrt-Agent": "someone"}
            ) as client:
                assert "add" in {t.name for t in (await client.list_tools()).tools}
            with pytest.raises(Exception) as refused:  # noqa: PT011 (401: not even initialize)
                async with server.client(headers={"X-Toolrt-Agent": "frank"}) as client:
                    await client.call_tool("add", {"a": 1, "b": 1})
            assert "Server returned an error response" in repr(refused.value)

        anyio.run(scenario)


def test_modern_clients_hear_changes_on_subscriptions_listen(http: HttpServer) -> None:
    """A 2026-era client subscribed with listen(tools_list_changed=True) hears a registration."""

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "gina"}, mode="auto") as client:
            async with client.listen(tools_list_changed=True) as subscription:
                reg = await client.call_tool("register_tool", ADD)
                assert not reg.is_error, _text(reg)
                with anyio.fail_after(30):
                    async for _event in subscription:
                        break
            assert "add" in {t.name for t in (await client.list_tools()).tools}

    anyio.run(scenario)


def test_name_mapping_is_deterministic() -> None:
    """Names map the same way whatever order the tools come in."""
    rt = SharedRuntimes().runtime()
    a = rt.register_tool("me", ADD).tool
    b = rt.register_tool("you", ADD, "public").tool
    c = rt.register_tool("they", {**ADD, "name": "register_tool"}, "public").tool
    forward = mcp_names([a, b, c], "me")
    assert forward == mcp_names([c, b, a], "me")
    assert {name: t.owner for name, t in forward.items()} == {
        "add": "me",
        "you__add": "you",
        "they__register_tool": "they",
    }
    assert set(mcp_names([a, b], "stranger")) == {"me__add", "you__add"}


def test_stdio_server_as_a_subprocess(tmp_path: Path) -> None:
    """toolrt serve over stdio: list, register over MCP, hear list_changed, call the new tool."""
    pytest.importorskip(
        "toolrt.adapters.local.sandbox",
        reason="toolrt serve builds the product runtime, which needs the local sandbox module",
    )
    script = Path(sys.executable).parent / "toolrt"
    env = {**os.environ, "TOOLRT_DATA_DIR": str(tmp_path)}
    params = StdioServerParameters(
        command=str(script), args=["--profile", "memory", "--agent", "stdio-agent", "serve"], env=env
    )
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def scenario() -> None:
        async with Client(params, mode="legacy", message_handler=on_message) as client:
            assert "manage_tools" in {t.name for t in (await client.list_tools()).tools}
            reg = await client.call_tool("manage_tools", {"action": "register", **ADD})
            assert not reg.is_error, _text(reg)
            with anyio.fail_after(60):
                await changed.wait()
            run = await client.call_tool("add", {"a": 2, "b": 3})
            assert not run.is_error, _text(run)
            assert _text(run) == "5"
            failing = await client.call_tool(
                "register_tool",
                {**ADD, "name": "boom", "code": "def handler(a: float, b: float) -> float:\n    return a / b\n"},
            )
            assert not failing.is_error, _text(failing)
            crashed = await client.call_tool("boom", {"a": 1, "b": 0})
            assert crashed.is_error and "ZeroDivisionError" in _text(crashed)

    anyio.run(scenario)


def test_a_tool_registered_by_another_process_is_announced(tmp_path: Path) -> None:
    """`toolrt register` in another process, next to a running server on the same store, sends list_changed."""
    import shutil
    import subprocess

    import toolrt

    data = tmp_path / "data"
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    rt = toolrt.connect("local", data_dir=data)
    with structlog.testing.capture_logs(), HttpServer(rt, watch_interval_s=0.2) as server:

        async def scenario() -> None:
            async with server.client(headers={"X-Toolrt-Agent": "cli"}, on_message=on_message) as client:
                assert "add" not in {t.name for t in (await client.list_tools()).tools}
                exe = shutil.which("toolrt", path=str(Path(sys.executable).parent))
                assert exe
                done = await anyio.to_thread.run_sync(
                    lambda: subprocess.run(
                        [
                            exe,
                            "--data-dir",
                            str(data),
                            "--agent",
                            "cli",
                            "register",
                            str(EXAMPLES / "python" / "add.py"),
                        ],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                )
                assert done.returncode == 0, done.stderr
                with anyio.fail_after(30):
                    await changed.wait()
                assert "add" in {t.name for t in (await client.list_tools()).tools}

        anyio.run(scenario)
    rt.close()


def test_a_change_made_by_the_embedding_application_is_announced(http: HttpServer) -> None:
    """The server hears the runtime's domain events: a tool registered by the application (not over
    MCP) makes clients hear list_changed, and a deregistration too; an execution does not."""
    heard: list[str] = []
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.append("changed")
            changed.set()

    async def scenario() -> None:
        nonlocal changed
        async with http.client(headers={"X-Toolrt-Agent": "app"}, on_message=on_message) as client:
            await client.list_tools()
            reg = await anyio.to_thread.run_sync(lambda: http.rt.register_tool("app", ADD))
            with anyio.fail_after(30):
                await changed.wait()
            assert "add" in {t.name for t in (await client.list_tools()).tools}
            changed = anyio.Event()
            heard.clear()
            await anyio.to_thread.run_sync(lambda: http.rt.execute_tool("app", reg.tool.tool_id, {"a": 1, "b": 2}))
            ran = await client.call_tool("add", {"a": 2, "b": 2})
            assert not ran.is_error and heard == []
            await anyio.to_thread.run_sync(lambda: http.rt.deregister_tool("app", reg.tool.tool_id))
            with anyio.fail_after(30):
                await changed.wait()
            assert "add" not in {t.name for t in (await client.list_tools()).tools}

    anyio.run(scenario)


SLOW = {
    "name": "stepper",
    "description": "Print steps while working.",
    "language": "python",
    "code": (
        "import time\n"
        "def handler(steps: int, word: str) -> int:\n"
        "    for i in range(steps):\n"
        "        print(f'{word} step {i}', flush=True)\n"
        "        time.sleep(0.3)\n"
        "    return steps\n"
    ),
}


def test_a_long_call_reports_progress_to_its_caller_only() -> None:
    """A call with a progress token hears notifications/progress while the tool runs (increasing
    elapsed time, the timeout as total, the last printed line); another agent calling at the same
    time with its own token hears only its own call's lines, and a call without a token none."""
    import toolrt

    rt = toolrt.connect("memory")  # the real sandbox: the tool prints as it runs
    with structlog.testing.capture_logs(), HttpServer(rt, progress_interval_s=0.25) as server:
        rt.register_tool("alice", SLOW, visibility="public")
        heard: dict[str, list[tuple[float, float | None, str | None]]] = {"alice": [], "mallory": []}

        def recorder(agent: str) -> Callable[[float, float | None, str | None], Awaitable[None]]:
            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                heard[agent].append((progress, total, message))

            return on_progress

        async def call(agent: str, word: str, progress: bool) -> types.CallToolResult:
            async with server.client(headers={"X-Toolrt-Agent": agent}) as client:
                await client.list_tools()
                return await client.call_tool(
                    "stepper",
                    {"steps": 5, "word": word},
                    progress_callback=recorder(agent) if progress else None,  # type: ignore[arg-type]
                )

        async def scenario() -> None:
            results: dict[str, types.CallToolResult] = {}

            async def run(agent: str, word: str, progress: bool) -> None:
                results[agent] = await call(agent, word, progress)

            async with anyio.create_task_group() as group:
                group.start_soon(run, "alice", "alice-secret", True)
                group.start_soon(run, "mallory", "mallory-own", True)
            assert not results["alice"].is_error and not results["mallory"].is_error
            quiet = await call("bob", "bob-word", False)
            assert not quiet.is_error

        anyio.run(scenario)

    rt.close()
    for agent, word in (("alice", "alice-secret"), ("mallory", "mallory-own")):
        notes = heard[agent]
        assert len(notes) >= 2, notes
        progress = [p for p, _, _ in notes]
        assert progress == sorted(progress) and len(set(progress)) == len(progress)
        assert all(total is not None and total > 0 for _, total, _ in notes)
        messages = " ".join(m or "" for _, _, m in notes)
        assert f"{word} step" in messages and messages.startswith("running ")
    assert "alice-secret" not in " ".join(m or "" for _, _, m in heard["mallory"])
    assert "mallory-own" not in " ".join(m or "" for _, _, m in heard["alice"])


def test_team_tools_over_mcp_reach_members_only(http: HttpServer) -> None:
    """A member lists and calls a team tool, hears list_changed when added; a non-member sees nothing
    and cannot share with the team; no MCP tool changes membership."""
    rt = http.rt
    rt.add_team_member("red", "ann")
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "ann"}) as ann:
            reg = await ann.call_tool("register_tool", {**ADD, "name": "red_add", "visibility": "team:red"})
            assert not reg.is_error, _text(reg)
            names = {t.name for t in (await ann.list_tools()).tools}
            assert "red_add" in names and not any("team" in n for n in names - {"red_add"})
        async with http.client(headers={"X-Toolrt-Agent": "mal"}, on_message=on_message) as mal:
            assert "red_add" not in {t.name for t in (await mal.list_tools()).tools}
            refused = await mal.call_tool("red_add", {"a": 1, "b": 2})
            assert refused.is_error
            shared = await mal.call_tool("register_tool", {**ADD, "name": "sneak", "visibility": "team:red"})
            assert shared.is_error and "not a member of team 'red'" in _text(shared)
            found = await mal.call_tool("search_tools", {"query": "add two numbers"})
            assert "red_add" not in _text(found)
            rt.add_team_member("red", "mal")  # the owner's call, in another thread
            with anyio.fail_after(30):
                await changed.wait()
            assert "red_add" in {t.name for t in (await mal.list_tools()).tools}
            ran = await mal.call_tool("red_add", {"a": 1, "b": 2})
            assert not ran.is_error, _text(ran)

    anyio.run(scenario)
    assert [t.name for t in rt.list_tools(status=None)] == ["red_add"]


def test_traffic_over_mcp_is_the_owners_alone(http: HttpServer) -> None:
    """The owner splits, reads metrics and promotes over MCP; another agent changes nothing."""

    async def scenario() -> None:
        async with http.client(headers={"X-Toolrt-Agent": "olga"}) as olga:
            await olga.call_tool("register_tool", {**ADD, "visibility": "public"})
            await olga.call_tool("update_tool", {"tool": "add", "description": "Adds two numbers."})
            split = await olga.call_tool("set_traffic", {"tool": "add", "weights": {"1": 80, "2": 20}})
            assert not split.is_error and split.structured_content is not None
            assert split.structured_content["traffic"] == {"1": 80, "2": 20}
            bad = await olga.call_tool("set_traffic", {"tool": "add", "weights": {"1": 80, "2": 30}})
            assert bad.is_error and "sum to 100" in _text(bad)
            await olga.call_tool("add", {"a": 1, "b": 2})
        async with http.client(headers={"X-Toolrt-Agent": "mal"}) as mal:
            tool_id = http.rt.list_tools(owner="olga")[0].tool_id
            for name, args in (("set_traffic", {"weights": {"2": 100}}), ("promote", {"version": 2})):
                refused = await mal.call_tool(name, {"tool": tool_id, **args})
                assert refused.is_error
            seen = await mal.call_tool("tool_metrics", {"tool": tool_id})  # a public tool: aggregates only
            assert not seen.is_error and seen.structured_content is not None
            assert sum(v["executions"] for v in seen.structured_content["versions"]) == 1
        async with http.client(headers={"X-Toolrt-Agent": "olga"}) as olga:
            promoted = await olga.call_tool("promote", {"tool": "add", "version": 2})
            assert not promoted.is_error

    anyio.run(scenario)
    tool = http.rt.list_tools(owner="olga")[0]
    assert tool.current_version == 2 and tool.traffic is None


def test_every_definition_field_registers_and_updates_over_mcp() -> None:
    """register_tool and update_tool over MCP take every field a definition has: examples and network too."""
    examples = [{"params": {"a": 1, "b": 2}, "output": {"echo": {"a": 1, "b": 2}}}]
    policy = ExecutionPolicy(network_allow=["api.example.com:443", "api.example.org:443"])
    with structlog.testing.capture_logs(), HttpServer(memory_runtime(policy, sandbox=EchoSandbox())) as http:
        anyio.run(_register_and_update_every_field, http, examples)
    (tool,) = http.rt.list_tools(agent_id="dana")
    definition = tool.definition
    assert [str(host) for host in definition.network.allow] == ["api.example.org:443"]
    assert [(e.params, e.output) for e in definition.examples] == [(ex["params"], ex["output"]) for ex in examples]
    assert [v.definition.network.to_json() for v in tool.versions] == [
        {"allow": ["api.example.com:443"]},
        {"allow": ["api.example.org:443"]},
    ]


async def _register_and_update_every_field(http: HttpServer, examples: list[dict[str, Any]]) -> None:
    async with http.client(headers={"X-Toolrt-Agent": "dana"}) as client:
        reg = await client.call_tool(
            "register_tool", {**ADD, "examples": examples, "network": {"allow": ["api.example.com:443"]}}
        )
        assert not reg.is_error, _text(reg)
        upd = await client.call_tool(
            "manage_tools", {"action": "update", "tool": "add", "network": {"allow": ["api.example.org:443"]}}
        )
        assert not upd.is_error, _text(upd)
