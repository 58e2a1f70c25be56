"""The operator views over HTTP: operator tokens only, agents' tokens refused, figures that match."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import toolrt
from tests.e2e.operator_server import AGENT_TOKENS, OPERATOR, OperatorServer, scripted_runtime
from toolrt.adapters.cli.main import build_app

DATA_ROUTES = ["/metrics", "/api/fleet", "/api/tools", "/api/events"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OperatorServer, dict[str, str]]]:
    rt, ids = scripted_runtime()
    with structlog.testing.capture_logs(), OperatorServer(rt, tokens=AGENT_TOKENS) as server:
        yield server, ids
    rt.close()


def test_a_request_without_a_token_is_refused(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """Every data route answers 401 (with a Bearer challenge) to a request carrying no token or an unknown one."""
    server, ids = served
    for path in [*DATA_ROUTES, f"/api/tools/{ids['ledger']}"]:
        for token in (None, "not-a-token", OPERATOR[:-1]):
            status, headers, body = server.get(path, token)
            assert status == 401, (path, token, body)
            assert headers["www-authenticate"].startswith("Bearer")
            assert b"mallory" not in body and b"ledger" not in body


def test_an_agents_token_reads_no_operator_view(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """Alice's valid MCP token cannot read Mallory's tool or its calls (nor anything else) through the dashboard API."""
    server, ids = served
    for token in AGENT_TOKENS:
        for path in [*DATA_ROUTES, f"/api/tools/{ids['ledger']}", f"/api/tools/{ids['echo']}"]:
            status, _, body = server.get(path, token)
            assert status == 403, (path, body)
            assert b"mallory-private-value" not in body and b"ledger" not in body


def test_the_operator_reads_every_agents_tools_and_calls(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """With the operator token: fleet figures equal rt.fleet_metrics(), and a tool page lists its calls with stdout."""
    server, ids = served
    fleet = server.json("/api/fleet?window=1h")
    expected = server.rt.fleet_metrics("1h")
    assert (fleet["tools"], fleet["agents"], fleet["executions"]) == (
        expected.tools,
        expected.agents,
        expected.executions,
    )
    assert fleet["failure_rate"] == expected.failure_rate and fleet["p95_ms"] == expected.p95_ms
    assert fleet["busiest"][0]["name"] == "echo" and fleet["busiest"][0]["executions"] == 8
    ledger = server.json(f"/api/tools/{ids['ledger']}")
    assert ledger["tool"]["owner"] == "mallory"
    assert [r["stdout"] for r in ledger["recent"]] == ["echo mallory-private-value\n"]
    echo = server.json(f"/api/tools/{ids['echo']}?window=15m&recent=3")
    assert len(echo["recent"]) == 3 and echo["recent"][0]["version"] == 2
    assert {m["version"]: m["executions"] for m in echo["version_metrics"]} == {1: 7, 2: 1}
    assert set(echo["activity"]["series"]) == {"1", "2"}
    found = server.json("/api/tools?q=ledger")
    assert [t["tool_id"] for t in found["tools"]] == [ids["ledger"]]


def test_metrics_is_prometheus_text_that_matches_fleet_metrics(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """``/metrics`` parses as the Prometheus text format and its gauges are the fleet's figures."""
    server, _ = served
    status, headers, body = server.get("/metrics?window=1h", OPERATOR)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    fleet = server.rt.fleet_metrics("1h")
    assert samples[("toolrt_tools", (("state", "active"),))] == fleet.tools
    assert samples[("toolrt_agents", ())] == fleet.agents
    assert samples[("toolrt_executions_window", (("status", "succeeded"),))] == fleet.succeeded
    assert samples[("toolrt_executions_window", (("status", "failed"),))] == fleet.failed
    assert samples[("toolrt_execution_errors_window", (("type", "KeyError"),))] == 2
    assert samples[("toolrt_execution_wall_ms_window", (("quantile", "0.95"),))] == fleet.p95_ms
    assert samples[("toolrt_registrations_window", (("outcome", "success"),))] == fleet.registrations
    assert samples[("toolrt_window_seconds", ())] == 3600


def test_the_page_shell_carries_no_data_and_is_served_without_a_token(
    served: tuple[OperatorServer, dict[str, str]],
) -> None:
    """/dashboard and its script and style need no token, carry no data, and forbid other origins' scripts."""
    server, _ = served
    status, headers, body = server.get("/dashboard")
    assert status == 200 and b"dashboard.js" in body and b"mallory" not in body
    assert "script-src 'self'" in headers["content-security-policy"]
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        status, headers, _ = server.get(f"/dashboard/{asset}")
        assert status == 200 and headers["content-type"].startswith(kind)
    assert server.get("/dashboard/../server.py")[0] == 404
    assert server.get("/dashboard/nothing.js")[0] == 404


def test_a_foreign_host_header_is_refused(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """DNS-rebinding protection: a Host the server does not answer to gets nothing, token or not."""
    server, _ = served
    status, _, body = server.get("/api/fleet", OPERATOR, host="attacker.example")
    assert status == 421 and b"tools" not in body


def test_bad_query_values_are_refused_with_what_was_wrong(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """A window or limit out of range is a 400 naming it; an unknown tool a 404."""
    server, _ = served
    status, _, body = server.get("/api/fleet?window=30d", OPERATOR)
    assert status == 400 and b"at most 7 days" in body
    status, _, body = server.get("/api/tools?limit=0", OPERATOR)
    assert status == 400 and b"limit" in body
    assert server.get("/api/tools/no-such-tool", OPERATOR)[0] == 404


def test_an_agents_token_given_as_an_operator_token_is_refused_at_start() -> None:
    """An operator token that is also an agent's MCP token would let that agent read every agent's
    calls: the server refuses to start with it, naming neither token."""
    from toolrt.adapters.mcp.server import ToolrtMcpServer
    from toolrt.domain import ValidationError

    rt, _ = scripted_runtime()
    mcp = ToolrtMcpServer(rt, tokens=AGENT_TOKENS)
    try:
        alice_token = next(iter(AGENT_TOKENS))
        with pytest.raises(ValidationError) as refused:
            mcp.http_app("127.0.0.1", operator_tokens=[OPERATOR, alice_token])
        assert "--operator-token" in str(refused.value) and alice_token not in str(refused.value)
    finally:
        mcp.close()
        rt.close()


def test_agent_tokens_without_an_operator_token_turn_the_operator_views_off() -> None:
    """A server with agents' tokens but no operator token answers every data route 403, even with no token."""
    rt, _ = scripted_runtime()
    with structlog.testing.capture_logs(), OperatorServer(rt, tokens=AGENT_TOKENS, operator_tokens=()) as server:
        for path in DATA_ROUTES:
            for token in (None, *AGENT_TOKENS):
                status, _, body = server.get(path, token)
                assert status == 403 and b"--operator-token" in body
    rt.close()


def test_without_any_token_loopback_is_open_as_for_mcp() -> None:
    """No tokens at all on loopback: the operator views answer without a token, like /mcp with its agent header."""
    rt, _ = scripted_runtime()
    with structlog.testing.capture_logs(), OperatorServer(rt, operator_tokens=()) as server:
        assert server.json("/api/fleet", token=None)["tools"] == 3
    rt.close()


def test_the_dashboard_command_refuses_a_non_loopback_address_without_a_token(tmp_path: Any) -> None:
    """``toolrt dashboard --host 0.0.0.0`` without --operator-token exits 2 naming the option; nothing is served."""
    result = CliRunner().invoke(
        build_app(toolrt.connect), ["--data-dir", str(tmp_path), "dashboard", "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2, result.output
    assert "--operator-token" in result.output
    short = CliRunner().invoke(build_app(toolrt.connect), ["dashboard", "--operator-token", "short"])
    assert short.exit_code == 2 and "16 characters" in short.output


def test_event_stream_announces_a_call_with_ids_only(served: tuple[OperatorServer, dict[str, str]]) -> None:
    """``/api/events`` sends an ``executed`` event per call recorded here: ids and status, no params or output."""
    import http.client
    import threading

    server, ids = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {OPERATOR}"})
    response = conn.getresponse()
    assert response.status == 200 and (response.getheader("content-type") or "").startswith("text/event-stream")
    assert response.readline().startswith(b"retry:")
    threading.Thread(target=server.rt.execute_tool, args=("alice", ids["echo"], {"secret": "live-secret"})).start()
    lines = [response.readline()]
    while not lines[-1].startswith(b"data:"):  # a comment (": connected") and blank lines come first
        lines.append(response.readline())
    conn.close()
    event = json.loads(lines[-1][len(b"data:") :])
    assert event["tool_id"] == ids["echo"] and event["status"] == "succeeded"
    assert b"live-secret" not in b"".join(lines)


def test_the_dashboard_command_serves_the_page_and_refuses_data_without_its_token(tmp_path: Any) -> None:
    """``toolrt dashboard --operator-token T`` as a real process: the shell loads, data needs T."""
    import http.client
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.e2e.test_mcp import _free_port

    exe = shutil.which("toolrt", path=str(Path(sys.executable).parent))
    assert exe is not None
    port = _free_port()
    process = subprocess.Popen(
        [exe, "--data-dir", str(tmp_path), "dashboard", "--port", str(port), "--operator-token", OPERATOR],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def get(path: str, token: str | None = None) -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        for _ in range(200):  # until it listens
            try:
                get("/dashboard")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else b""
                time.sleep(0.1)
        assert get("/dashboard")[0] == 200
        assert get("/api/fleet")[0] == 401
        assert get("/metrics", "alice-token-0123456789")[0] == 401
        status, body = get("/api/fleet", OPERATOR)
        assert status == 200 and json.loads(body)["tools"] == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
