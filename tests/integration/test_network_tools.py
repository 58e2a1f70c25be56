"""A tool that calls a web API, as its author writes it: the HTTP client it imports is accepted when
the definition declares the host, and the call goes through the egress proxy to that host.

The host is a loopback server on this machine; the proxy resolves the test name ``api.test`` to it
(``loopback_resolver``) and the owner names that exact host:port as private, as the egress tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.egress_servers import CountingServer, counting_server, loopback_resolver
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.node import node_usable
from toolrt.application import ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.domain import ExecutionStatus, ValidationError
from toolrt.settings import Settings

pytestmark = pytest.mark.bwrap

PYTHON_FETCH = """
import http.client
import urllib.request


def handler(path: str) -> dict:
    \"\"\"Fetch a page of the API two ways.\"\"\"
    plain = urllib.request.urlopen("http://{target}" + path, timeout=5).read().decode()
    tunnel = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
    tunnel.set_tunnel("{host}", {port})
    tunnel.request("GET", path + "/tunnel")
    return {{"plain": plain, "tunnel": tunnel.getresponse().read().decode()}}
"""

JS_FETCH = """
const http = require('node:http');
async function handler(p) {{
  return await (await fetch(`http://{target}${{p.path}}`)).text();
}}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    with counting_server() as s:
        yield s


@pytest.fixture
def rt(server: CountingServer) -> Iterator[ToolRuntime]:
    target = f"api.test:{server.port}"
    settings = Settings(profile="memory", network_allow=[target], network_private=[target], sandbox_workers=1)
    container = build_container(settings)
    sandbox = SubprocessSandbox(
        isolation="strict", workers=1, egress_resolver=loopback_resolver({"api.test": "127.0.0.1"})
    )
    container.adapters.sandbox.override(sandbox)
    runtime: ToolRuntime = container.runtime()
    try:
        yield runtime
    finally:
        runtime.close()
        sandbox.close()


def _definition(server: CountingServer, code: str, language: str = "python", **extra: Any) -> dict[str, Any]:
    target = f"api.test:{server.port}"
    return {
        "name": "fetch_page",
        "description": "Fetch a page of the API.",
        "language": language,
        "code": code.format(target=target, host="api.test", port=server.port),
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        **extra,
    }


def test_a_python_tool_declaring_its_host_imports_urllib_and_http_client_and_reaches_it(
    rt: ToolRuntime, server: CountingServer
) -> None:
    """With the default validation policy, urllib.request and http.client are accepted for a tool
    that declares network.allow, and both reach the host through the proxy (plain and CONNECT)."""
    network = {"allow": [f"api.test:{server.port}"]}
    reg = rt.register_tool("agent-a", _definition(server, PYTHON_FETCH, network=network))
    assert not [f for f in reg.report.findings if "network" in f.message]
    result = rt.execute_tool("agent-a", reg.tool_id, {"path": "/weather"})
    assert result.status is ExecutionStatus.SUCCEEDED, (result.error, result.stderr)
    assert result.output == {"plain": "hello /weather", "tunnel": "hello /weather/tunnel"}


def test_without_a_declaration_the_import_is_refused_with_one_hint_naming_network_allow(
    rt: ToolRuntime, server: CountingServer
) -> None:
    """The same tool without network is refused; every network finding gives the same one-sentence
    hint, which names network.allow and never says to remove the import."""
    with pytest.raises(ValidationError) as refused:
        rt.register_tool("agent-a", _definition(server, PYTHON_FETCH))
    network = [f for f in refused.value.report.findings if "[network]" in f.message]
    assert {f.rule_id for f in network} == {"security.import.http", "security.import.urllib"}
    hints = {f.hint for f in network}
    assert len(hints) == 1 and "network.allow" in hints.pop()
    assert not any("remove the import" in f.hint for f in refused.value.report.findings)


def test_requests_needs_its_package_and_says_so_consistently(rt: ToolRuntime, server: CountingServer) -> None:
    """``import requests`` with hosts declared but no requirement is refused only for the missing
    package (add it to requirements); raw sockets stay refused even with a declaration."""
    code = "import requests\n\n\ndef handler(path: str) -> str:\n    return requests.get(path).text\n"
    with pytest.raises(ValidationError) as refused:
        rt.register_tool("agent-a", _definition(server, code, network={"allow": [f"api.test:{server.port}"]}))
    findings = refused.value.report.findings
    assert [f.rule_id for f in findings if f.severity.value == "error"] == ["imports.unavailable.requests"]
    assert "requirements" in findings[0].hint
    sockets = "import socket\n\n\ndef handler(path: str) -> str:\n    return path\n"
    with pytest.raises(ValidationError) as raw:
        rt.register_tool("agent-a", _definition(server, sockets, network={"allow": [f"api.test:{server.port}"]}))
    assert [f.rule_id for f in raw.value.report.findings] == ["security.import.socket"]
    assert "HTTP client" in raw.value.report.findings[0].hint


@pytest.mark.node
@pytest.mark.skipif(not node_usable(), reason="needs Node.js 24 (the js extra)")
def test_a_javascript_tool_declaring_its_host_uses_fetch(rt: ToolRuntime, server: CountingServer) -> None:
    """fetch and node:http are accepted for a JavaScript tool that declares its host, and fetch
    reaches it through the proxy; without the declaration the same code is refused."""
    definition = _definition(server, JS_FETCH, "javascript")
    with pytest.raises(ValidationError, match="network"):
        rt.register_tool("agent-a", definition)
    reg = rt.register_tool("agent-a", {**definition, "network": {"allow": [f"api.test:{server.port}"]}})
    result = rt.execute_tool("agent-a", reg.tool_id, {"path": "/js"})
    assert result.status is ExecutionStatus.SUCCEEDED, (result.error, result.stderr)
    assert result.output == "hello /js"
