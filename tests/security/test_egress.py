"""Egress from the sandbox: declared hosts through the proxy, nothing else, and never another agent's hosts.

Every server here listens on this machine's loopback (127.0.0.1) only; test names (``api.test``)
reach it through the proxy's injectable resolver. The sandbox is bubblewrap's (strict), as in CI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.egress_servers import CountingServer, counting_server, loopback_resolver
from tests.fakes import memory_runtime
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.node import find_node
from toolrt.application.policy import ExecutionPolicy
from toolrt.contracts import builders as b
from toolrt.domain import EgressDeniedError, EgressGrant, ExecutionStatus, HostPort, Language
from toolrt.ports import SandboxRequest, SandboxResult

NAMES = {"api.test": "127.0.0.1", "other.test": "127.0.0.1"}


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    with counting_server() as s:
        yield s


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=2, egress_resolver=loopback_resolver(NAMES))
    try:
        yield sb
    finally:
        sb.close()


def private_grant(*targets: str) -> EgressGrant:
    """What the owner's policy grants when it names each target exactly as private (a loopback server)."""
    entries = frozenset(HostPort(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in targets)
    return EgressGrant(entries, entries)


def run(
    sb: SubprocessSandbox,
    code: str,
    grant: EgressGrant | None,
    *,
    language: Language = Language.PYTHON,
    execution_id: str = "exec",
    tenant: str = "",
    params: dict[str, Any] | None = None,
) -> SandboxResult:
    request = SandboxRequest(
        execution_id, language, code, "handler", params or {}, 15.0, 128, 64 * 1024, tenant=tenant, egress=grant
    )
    return sb.run(request)


PY_CLIENT = """
import http.client, os, socket, urllib.request

def get(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except Exception as exc:
        return "refused: %s" % exc

def tunnel(host, port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
        c.set_tunnel(host, port)
        c.request("GET", path)
        return c.getresponse().read().decode()
    except Exception as exc:
        return "refused: %s" % exc

def direct(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return "refused: %s" % exc

def handler(port):
    return {
        "proxy": os.environ.get("HTTPS_PROXY"),
        "plain": get("http://api.test:%d/plain" % port),
        "tunnel": tunnel("api.test", port, "/tunnel"),
        "other_host": get("http://other.test:%d/x" % port),
        "other_port": get("http://api.test:%d/x" % (port + 1 if port < 65535 else port - 1)),
        "literal": get("http://127.0.0.1:%d/x" % port),
        "direct": direct(port),
    }
"""


def test_a_python_tool_reaches_its_declared_host_and_nothing_else(
    sandbox: SubprocessSandbox, server: CountingServer
) -> None:
    """urllib through HTTP_PROXY (plain and CONNECT) reaches the declared host; another name, another
    port, an IP literal and a direct socket bypassing the proxy are all refused."""
    before = list(server.paths)
    result = run(sandbox, PY_CLIENT, private_grant(f"api.test:{server.port}"), params={"port": server.port})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    out = result.output
    assert out["proxy"] == "http://127.0.0.1:3128"
    assert out["plain"] == "hello /plain"
    assert out["tunnel"] == "hello /tunnel"
    for refused in ("other_host", "other_port", "literal"):
        assert out[refused].startswith("refused") and "403" in out[refused], (refused, out[refused])
    assert out["direct"].startswith("refused")
    assert server.paths[len(before) :] == ["/plain", "/tunnel"]


def test_a_name_resolving_to_loopback_is_refused_unless_the_owner_names_it_private(
    sandbox: SubprocessSandbox, server: CountingServer
) -> None:
    """Permitted as a public host only, api.test (which resolves to 127.0.0.1) is refused."""
    target = HostPort("api.test", server.port)
    before = server.connections
    result = run(sandbox, PY_CLIENT, EgressGrant(frozenset({target})), params={"port": server.port})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert "403" in result.output["plain"] and "403" in result.output["tunnel"]
    assert server.connections == before


NO_NETWORK = """
import glob, os, socket, urllib.request

def handler(port):
    out = {"env": sorted(k for k in os.environ if "proxy" in k.lower()), "sockets": glob.glob("/run/toolrt/*")}
    for name, attempt in (
        ("direct", lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
        ("forwarder", lambda: socket.create_connection(("127.0.0.1", 3128), timeout=2)),
        ("dns", lambda: socket.getaddrinfo("api.test", port)),
        ("url", lambda: urllib.request.urlopen("http://api.test:%d/" % port, timeout=2)),
    ):
        try:
            attempt()
            out[name] = "reached"
        except Exception as exc:
            out[name] = type(exc).__name__
    return out
"""


def test_a_tool_without_network_has_no_way_out(sandbox: SubprocessSandbox, server: CountingServer) -> None:
    """No proxy variables, no egress socket, no forwarder, no DNS: the server sees no connection."""
    before = server.connections
    for grant in (None, EgressGrant()):
        result = run(sandbox, NO_NETWORK, grant, params={"port": server.port})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        out = result.output
        assert out["env"] == [] and out["sockets"] == []
        assert all(out[k] != "reached" for k in ("direct", "forwarder", "dns", "url")), out
    assert server.connections == before


@pytest.mark.skipif(find_node() is None, reason="needs Node.js 24")
def test_a_javascript_tool_reaches_its_declared_host_with_fetch_and_http(
    sandbox: SubprocessSandbox, server: CountingServer
) -> None:
    """Node's fetch and http module honour the proxy (NODE_USE_ENV_PROXY); an undeclared name is refused."""
    code = """
const http = require('node:http');
function get(url) {
  return new Promise((resolve) => {
    http.get(url, (res) => { let d = ''; res.on('data', (c) => { d += c; }); res.on('end', () => resolve(`${res.statusCode} ${d}`)); })
      .on('error', (e) => resolve(`error ${e.message}`));
  });
}
async function handler(p) {
  const fetched = await (await fetch(`http://api.test:${p.port}/fetch`)).text();
  let other;
  try { other = String((await fetch(`http://other.test:${p.port}/x`)).status); } catch (e) { other = `error ${e.cause?.message ?? e.message}`; }
  return { fetched, viaHttp: await get(`http://api.test:${p.port}/http`), other };
}
"""
    before = list(server.paths)
    result = run(
        sandbox,
        code,
        private_grant(f"api.test:{server.port}"),
        language=Language.JAVASCRIPT,
        params={"port": server.port},
    )
    assert result.status is ExecutionStatus.SUCCEEDED, (result.error, result.stderr)
    assert result.output["fetched"] == "hello /fetch"
    assert result.output["viaHttp"] == "200 hello /http"
    assert result.output["other"].startswith("error")  # fetch tunnels with CONNECT, which got 403
    assert server.paths[len(before) :] == ["/fetch", "/http"]


@pytest.mark.skipif(find_node() is None, reason="needs Node.js 24")
def test_a_javascript_tool_without_network_has_no_way_out(sandbox: SubprocessSandbox, server: CountingServer) -> None:
    """A JavaScript tool without network gets no proxy and cannot connect to the loopback server."""
    code = """
const net = require('node:net');
async function handler(p) {
  const direct = await new Promise((resolve) => {
    const s = net.connect(p.port, '127.0.0.1', () => { s.destroy(); resolve('reached'); });
    s.on('error', (e) => resolve(e.code));
  });
  let fetched;
  try { await fetch(`http://api.test:${p.port}/`); fetched = 'reached'; } catch (e) { fetched = 'failed'; }
  return { direct, fetched, proxy: process.env.HTTP_PROXY ?? null };
}
"""
    before = server.connections
    result = run(sandbox, code, None, language=Language.JAVASCRIPT, params={"port": server.port})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == {"direct": "ECONNREFUSED", "fetched": "failed", "proxy": None}
    assert server.connections == before


HOSTILE = """
import glob, os, socket, time, urllib.request

def handler(port, hold_s=0.0):
    seen = glob.glob("/run/toolrt/*") + glob.glob("/tmp/toolrt-egress-*")
    answers = []
    deadline = time.monotonic() + hold_s
    while True:
        try:
            answers.append(urllib.request.urlopen("http://api.test:%d/stolen" % port, timeout=3).read().decode())
        except Exception as exc:
            answers.append(str(exc))
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return {"seen": seen, "answers": sorted(set(answers))}
"""

VICTIM = """
import time, urllib.request

def handler(port, hold_s):
    got = urllib.request.urlopen("http://api.test:%d/victim" % port, timeout=5).read().decode()
    time.sleep(hold_s)  # keeps its grant alive while the hostile agent tries
    return got
"""


def test_a_hostile_agent_cannot_use_another_agents_grant(server: CountingServer) -> None:
    """While agent A's call holds a grant for api.test, agent B's concurrent call (granted another host)
    and B's later call are refused; B's calls see no egress socket at all (only their forwarder,
    a process of the call, holds a descriptor of its zygote's)."""
    sb = SubprocessSandbox(isolation="strict", workers=2, egress_resolver=loopback_resolver(NAMES))
    try:
        victim_grant = private_grant(f"api.test:{server.port}")
        hostile_grant = private_grant(f"other.test:{server.port}")
        victim: dict[str, SandboxResult] = {}
        thread = threading.Thread(
            target=lambda: victim.update(
                r=run(
                    sb,
                    VICTIM,
                    victim_grant,
                    tenant="agent-a",
                    execution_id="a1",
                    params={"port": server.port, "hold_s": 1.5},
                )
            )
        )
        thread.start()
        time.sleep(0.4)
        during = run(
            sb, HOSTILE, hostile_grant, tenant="agent-b", execution_id="b1", params={"port": server.port, "hold_s": 0.6}
        )
        thread.join()
        after = run(sb, HOSTILE, hostile_grant, tenant="agent-b", execution_id="b2", params={"port": server.port})
        assert victim["r"].output == "hello /victim"
        for result in (during, after):
            assert result.status is ExecutionStatus.SUCCEEDED, result.error
            assert all("403" in answer for answer in result.output["answers"]), result.output
            assert result.output["seen"] == []
        assert "/stolen" not in server.paths
    finally:
        sb.close()


def test_a_call_cannot_keep_using_its_grant_after_it_ends(server: CountingServer) -> None:
    """A tool that leaves a detached process behind to keep fetching gets nothing after its call."""
    code = """
import os, time, urllib.request

def handler(port):
    if os.fork() == 0:
        os.setsid()
        for _ in range(60):
            try:
                urllib.request.urlopen("http://api.test:%d/late" % port, timeout=1).read()
            except Exception:
                pass
            time.sleep(0.05)
        os._exit(0)
    urllib.request.urlopen("http://api.test:%d/during" % port, timeout=5).read()
    return "left"
"""
    sb = SubprocessSandbox(isolation="strict", workers=1, egress_resolver=loopback_resolver(NAMES))
    try:
        result = run(sb, code, private_grant(f"api.test:{server.port}"), params={"port": server.port})
        assert result.output == "left"
        late = server.paths.count("/late")
        time.sleep(1.0)
        assert server.paths.count("/late") == late
        assert "/during" in server.paths
    finally:
        sb.close()


def test_decisions_in_the_sandbox_are_logged_with_the_execution_id(
    sandbox: SubprocessSandbox, server: CountingServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A call's allowed and refused connections are logged under its execution id."""
    caplog.set_level(logging.INFO, logger="toolrt")
    code = (
        "import urllib.request\n"
        "def handler(port):\n"
        "    ok = urllib.request.urlopen('http://api.test:%d/logged' % port, timeout=5).read().decode()\n"
        "    try:\n"
        "        urllib.request.urlopen('http://other.test:%d/' % port, timeout=5)\n"
        "    except Exception as exc:\n"
        "        return [ok, str(exc)]\n"
    )
    result = run(
        sandbox, code, private_grant(f"api.test:{server.port}"), execution_id="exec-log-1", params={"port": server.port}
    )
    assert result.output == ["hello /logged", "HTTP Error 403: Forbidden"]
    records = [r.toolrt for r in caplog.records if r.name.endswith("egress_proxy")]  # type: ignore[attr-defined]
    mine = [(r["host"], r.get("reason")) for r in records if r.get("execution_id") == "exec-log-1"]
    assert ("api.test", "named by the owner's policy as private") in mine
    assert any(host == "other.test" and reason for host, reason in mine)


def test_the_runtime_grants_what_the_owners_policy_names(server: CountingServer) -> None:
    """End to end: a registration outside the policy is refused; one inside it reaches its host,
    private only because the owner named that exact host:port."""
    target = f"api.test:{server.port}"
    sb = SubprocessSandbox(isolation="strict", workers=1, egress_resolver=loopback_resolver(NAMES))
    rt = memory_runtime(ExecutionPolicy(network_allow=["*.test:443"], network_private=[target]), sandbox=sb)
    try:
        code = (
            "import urllib.request\ndef handler(path):\n    return urllib.request.urlopen('http://"
            + target
            + "' + path, timeout=5).read().decode()\n"
        )
        schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
        with pytest.raises(EgressDeniedError, match=f"other.test:{server.port}"):
            rt.register_tool(
                "agent-a",
                b.definition("fetcher", code, input_schema=schema, network={"allow": [f"other.test:{server.port}"]}),
            )
        reg = rt.register_tool(
            "agent-a", b.definition("fetcher", code, input_schema=schema, network={"allow": [target]})
        )
        res = rt.execute_tool("agent-a", reg.tool_id, {"path": "/e2e"})
        assert res.status is ExecutionStatus.SUCCEEDED and res.output == "hello /e2e"
    finally:
        rt.close()
