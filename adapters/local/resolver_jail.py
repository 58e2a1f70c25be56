"""Where pip and npm run when they resolve, download and install a tool's requirements: with the
package index hosts as their only reachable network, and, with bubblewrap, only the files they need.

Why: resolving follows the dependency specs of packages nobody here wrote. A package on the index
may depend on ``x @ http://127.0.0.1:8080/admin``, ``x @ file:///etc/shadow`` or
``git+ssh://10.0.0.1/repo`` (pip), or ``http://169.254.169.254/...``, ``file:../..`` (npm): pip and
npm fetch those while resolving, before toolrt can read the lock and refuse it. Run on the host as
they are, they would send the runtime's own requests to its loopback services, private network and
cloud metadata address, and say whether a host path exists. So:

* **Network: only through toolrt's egress proxy, to the index hosts.** Each run gets a gate of an
  :class:`~toolrt.adapters.local.egress_proxy.EgressProxy` whose grant names exactly the
  ``host:port`` of the indexes the operator's pip or npm configuration names (``pip config debug``:
  index-url, extra-index-url, find-links; ``npm config list``: registry and scoped registries),
  ``files.pythonhosted.org:443`` beside ``pypi.org``, and the ``index_hosts`` setting
  (``TOOLRT_INDEX_HOSTS``) for an index that serves its files from another host. They are named
  as private too (the operator chose them: an index on the LAN, or a name that resolves to a
  reserved range, as a mirror may). Everything else is refused by the proxy: other hosts,
  loopback and private addresses, IP literals. A small forwarder (``harness/resolver_forwarder.py``)
  listens on loopback and is pip's and npm's proxy (``HTTP(S)_PROXY``, ``npm_config_https_proxy``).
  The proxy resolves names itself and connects to the addresses it checked, so no DNS trick moves
  a permitted name elsewhere. git is told to use no protocol at all (``GIT_ALLOW_PROTOCOL``).
* **With bubblewrap: a namespace with no network but loopback, and a filesystem of binds.** The
  run sees ``/usr``, the interpreter and pip (or Node and npm), the pip and npm configuration files
  and the files and ``file://`` index folders they name, the CA certificates, read-only; the
  scratch folder it works in and pip's or npm's download cache, writable; and the proxy's socket.
  A ``git+ssh:`` spec has no network to reach, and a ``file:`` spec naming a host path finds
  nothing whether the path exists on the host or not. It runs as the host user toolrt runs as
  (pip and npm run no package code: wheels only, ``--ignore-scripts``), in a user namespace with
  no capabilities.
* **Without bubblewrap** (process-only isolation) the proxy alone confines the network that pip
  and npm reach through HTTP; they still read host files a ``file:`` spec names (the refusal is
  worded the same either way, but pip and npm did open the path), a client that ignores the proxy
  variables is not stopped, and the forwarder's loopback port is open to the host's other local
  processes while the run lasts (through it they reach the index hosts only). ``toolrt doctor`` reports namespaces missing; docs/requirements.md says so.

Denials are returned to the caller (the ecosystems turn them into ``RequirementError`` naming the
package that asked, reason ``denied``).
"""

from __future__ import annotations

import ast
import atexit
import functools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs

from toolrt.adapters.local.egress_proxy import EgressProxy
from toolrt.adapters.local.sandbox_env import find_bwrap, system_binds
from toolrt.domain import EgressGrant, HostPort, parse_host_port
from toolrt.logs import get_logger

__all__ = ["IndexAccess", "ResolverJail", "npm_index_access", "pip_index_access"]

log = get_logger(__name__)

_FORWARDER = Path(__file__).parent / "harness" / "resolver_forwarder.py"
_INSIDE = "/run/toolrt"
_SOCKET_INSIDE = f"{_INSIDE}/egress.sock"
_FORWARDER_INSIDE = f"{_INSIDE}/resolver_forwarder.py"
# Read-only system files pip and npm need: CA certificates, the dynamic linker's cache, the time zone,
# and user and host names (Node's os.userInfo, Python's getpass).
_SYSTEM_FILES = (
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
)
#: How long the index configuration read from pip or npm is reused for the same environment variables.
CONFIG_TTL_S = 60.0
PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")
_TRUE = ("1", "true", "yes", "on")


@attrs.frozen
class IndexAccess:
    """What a resolver run may reach: the index ``hosts``, files and folders it may read
    (``read_only``: configuration, certificates, ``file://`` indexes) and ``read_write`` (caches)."""

    hosts: frozenset[HostPort]
    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()

    @property
    def local_folders(self) -> tuple[Path, ...]:
        """The folders among ``read_only`` (local indexes and find-links folders)."""
        return tuple(p for p in self.read_only if p.is_dir())

    def grant(self) -> EgressGrant:
        """The egress grant of a run: the index hosts, which may resolve to private addresses."""
        return EgressGrant(allow=self.hosts, private=self.hosts)

    def describe(self) -> str:
        """The hosts, for messages (``pypi.org:443, files.pythonhosted.org:443``)."""
        return ", ".join(sorted(str(h) for h in self.hosts)) or "none"


def _host_of(url: str) -> HostPort | None:
    """``host:port`` of an http(s) URL (None for anything else, or a malformed one)."""
    try:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return parse_host_port(f"{host}:{port}")
    except ValueError:
        return None


def _local_path(location: str) -> Path | None:
    """The host path a ``file://`` URL or a plain path names (None for a remote URL)."""
    location = location.strip()
    if not location:
        return None
    if location.startswith("file:"):
        return Path(unquote(urlsplit(location).path) or "/")
    if "://" in location:
        return None
    return Path(os.path.abspath(os.path.expanduser(location)))


def _extra_hosts(extra: Iterable[str]) -> set[HostPort]:
    return {parse_host_port(entry) for entry in extra}


def _env_key(env: Mapping[str, str], prefixes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(prefixes) or k in ("HOME", "XDG_CONFIG_HOME")))


class _Memo:
    """Configuration read from a subprocess, reused for CONFIG_TTL_S while the environment is the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[object, tuple[float, IndexAccess]] = {}

    def get(self, key: object) -> IndexAccess | None:
        with self._lock:
            found = self._seen.get(key)
        return found[1] if found is not None and time.monotonic() - found[0] < CONFIG_TTL_S else None

    def put(self, key: object, value: IndexAccess) -> None:
        with self._lock:
            if len(self._seen) > 64:
                self._seen.clear()
            self._seen[key] = (time.monotonic(), value)


_PIP_MEMO = _Memo()
_NPM_MEMO = _Memo()


def _parse_pip_debug(text: str) -> tuple[list[Path], dict[str, list[str]]]:
    """The configuration files pip reads and every value it gets (``key`` without its section:
    ``index-url``), from ``pip config debug``; a key's values in the order pip reads them."""
    files: list[Path] = []
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if indent == 2 and stripped.startswith("PIP_") and "=" in stripped:
            name, _, raw = stripped.partition("=")
            try:
                value = str(ast.literal_eval(raw))
            except (ValueError, SyntaxError):
                value = raw.strip("'\"")
            values.setdefault(name[4:].lower().replace("_", "-"), []).append(value)
        elif indent == 2 and stripped.endswith("exists: True"):
            files.append(Path(stripped.rsplit(", exists:", 1)[0]))
        elif indent == 4 and ": " in stripped:
            key, _, value = stripped.partition(": ")
            values.setdefault(key.split(".", 1)[-1], []).append(value)
    return files, values


def pip_index_access(python: str, env: Mapping[str, str], extra: Iterable[str] = ()) -> IndexAccess:
    """What pip (run by ``python`` with ``env``) may reach: the hosts of the indexes its
    configuration names (PyPI when it names none, unless ``no-index``), plus ``extra``; the
    configuration files, certificates, constraint files and local index folders; its cache."""
    extra = tuple(sorted(extra))
    key = (python, extra, _env_key(env, ("PIP_", "XDG_")))
    known = _PIP_MEMO.get(key)
    if known is not None:
        return known
    done = subprocess.run(
        [python, "-m", "pip", "config", "debug"], capture_output=True, text=True, env=dict(env), timeout=60, cwd="/"
    )
    files, values = _parse_pip_debug(done.stdout if done.returncode == 0 else "")

    def last(name: str) -> str | None:
        return values[name][-1] if values.get(name) else None

    def every(name: str) -> list[str]:
        return [item for value in values.get(name, []) for item in value.split()]

    hosts = _extra_hosts(extra)
    read_only = [*files]
    no_index = (last("no-index") or "").lower() in _TRUE
    index = last("index-url") or "https://pypi.org/simple"
    indexes = [] if no_index else [index, *every("extra-index-url")]
    for location in indexes + every("find-links"):
        host = _host_of(location)
        if host is not None:
            hosts.add(host)
            if host.host in PYPI_HOSTS:
                hosts.update(parse_host_port(f"{name}:443") for name in PYPI_HOSTS)
        elif (path := _local_path(location)) is not None:
            # A PEP 503 index in a folder (``file:///srv/pypi/simple``) links its files relative to
            # its pages, beside it (``../../files/x.whl``): its parent folder is bound with it.
            if location in indexes and path.parent != Path("/"):
                path = path.parent
            read_only.append(path)
    for name in ("cert", "client-cert", "constraint", "requirement"):
        read_only += [p for item in every(name) if (p := _local_path(item)) is not None]
    read_write: list[Path] = []
    if (last("no-cache-dir") or "").lower() not in _TRUE:
        cache = last("cache-dir")
        if cache is None:
            base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or str(Path.home()), ".cache")
            cache = os.path.join(base, "pip")
        read_write.append(Path(os.path.expanduser(cache)))
    access = IndexAccess(frozenset(hosts), _existing(read_only), tuple(read_write))
    _PIP_MEMO.put(key, access)
    return access


def npm_index_access(node: Path, cli: Path, env: Mapping[str, str], extra: Iterable[str] = ()) -> IndexAccess:
    """What npm (``node cli`` with ``env``) may reach: its registry's and scoped registries' hosts
    plus ``extra``; its configuration files and CA file; its cache (``npm config list --json``)."""
    import json

    extra = tuple(sorted(extra))
    key = (str(node), extra, _env_key(env, ("npm_config_", "NPM_CONFIG_", "NODE_EXTRA_CA_CERTS")))
    known = _NPM_MEMO.get(key)
    if known is not None:
        return known
    done = subprocess.run(
        [str(node), str(cli), "config", "list", "--json"],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=60,
        cwd="/",
    )
    try:
        config = json.loads(done.stdout) if done.returncode == 0 else {}
    except ValueError:
        config = {}
    if not isinstance(config, dict):
        config = {}
    hosts = _extra_hosts(extra)
    registries = [v for k, v in config.items() if (k == "registry" or k.endswith(":registry")) and isinstance(v, str)]
    for registry in registries or ["https://registry.npmjs.org/"]:
        host = _host_of(registry)
        if host is not None:
            hosts.add(host)
    read_only = [
        Path(str(config[name]))
        for name in ("userconfig", "globalconfig", "cafile")
        if isinstance(config.get(name), str) and config[name]
    ]
    if env.get("NODE_EXTRA_CA_CERTS"):
        read_only.append(Path(env["NODE_EXTRA_CA_CERTS"]))
    cache = config.get("cache")
    if not isinstance(cache, str) or not cache:
        cache = os.path.join(env.get("HOME") or str(Path.home()), ".npm")
    access = IndexAccess(frozenset(hosts), _existing(read_only), (Path(cache),))
    _NPM_MEMO.put(key, access)
    return access


def _existing(paths: Iterable[Path]) -> tuple[Path, ...]:
    found: list[Path] = []
    for path in paths:
        if path.parts[1:2] in (("dev",), ("proc",)):  # /dev/null as a configuration file: the sandbox has its own
            continue
        if path.exists() and path not in found:
            found.append(path)
    return tuple(found)


def _prefixes(python: str) -> list[Path]:
    """The folders an interpreter needs: its environment and, for a virtual environment, its base."""
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(python).parent.parent, Path(python).resolve().parent.parent]
    return [p.resolve() for p in found]


@functools.cache
def _namespaces_work() -> tuple[bool, str]:
    """Whether bubblewrap can make the resolver's namespaces here (as this user), and why not."""
    bwrap = find_bwrap()
    if bwrap is None:
        return False, "bwrap is not installed"
    cmd = [
        str(bwrap),
        *_bwrap_args(_prefixes(sys.executable), (), None, "/"),
        "--",
        sys.executable,
        "-I",
        "-S",
        "-c",
        "",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=20, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap could not start: {exc}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return False, f"bwrap cannot create namespaces here: {lines[-1] if lines else done.returncode}"
    return True, "bubblewrap: no network but the index proxy, read-only binds"


def _bwrap_args(read_only: Sequence[Path], read_write: Sequence[Path], socket: Path | None, cwd: str) -> list[str]:
    args = [
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "toolrt-resolver",
        *system_binds(_SYSTEM_FILES),
    ]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    seen: set[Path] = set()
    for path in read_only:  # after /tmp: an interpreter or an index folder may live there
        if path in seen or path == Path("/usr") or Path("/usr") in path.parents:
            continue
        seen.add(path)
        args += ["--ro-bind-try", str(path), str(path)]
    for path in read_write:
        args += ["--bind", str(path), str(path)]
    if socket is not None:
        args += ["--ro-bind", str(socket), _SOCKET_INSIDE, "--ro-bind", str(_FORWARDER), _FORWARDER_INSIDE]
    args += ["--remount-ro", "/", "--chdir", cwd]
    return args


class ResolverJail:
    """Runs pip and npm confined to the package index hosts (see the module's docstring).

    One egress proxy, started with the first run, serves every run of this process; each run has a
    gate of its own and its grant. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proxy: EgressProxy | None = None

    @staticmethod
    def namespaces() -> tuple[bool, str]:
        """Whether runs get bubblewrap's namespaces here, and why (not)."""
        return _namespaces_work()

    def _gate_proxy(self) -> EgressProxy:
        with self._lock:
            if self._proxy is None:
                self._proxy = EgressProxy()
                atexit.register(self._proxy.close)
            return self._proxy

    def run(
        self,
        cmd: Sequence[str],
        *,
        access: IndexAccess,
        python: str,
        env: Mapping[str, str],
        cwd: Path,
        read_only: Sequence[Path] = (),
        read_write: Sequence[Path] = (),
        timeout: float,
        what: str,
        max_file_bytes: int | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], tuple[str, ...]]:
        """Run ``cmd`` (``python`` runs the forwarder; ``cwd`` and ``read_write`` writable, the rest
        read-only) with ``access.hosts`` its only reachable hosts. Returns the finished process and
        the ``host:port`` targets the proxy refused, in order (the caller names who asked for them).

        ``max_file_bytes``: no file the command writes may grow past it (RLIMIT_FSIZE, set by the
        forwarder before it starts the command; a larger write fails with "File too large").

        Raises subprocess.TimeoutExpired past ``timeout`` (the whole sandbox is killed) and OSError
        when the process cannot start.
        """
        gate = self._gate_proxy().open_gate()
        gate.begin(f"resolve-{what}-{uuid.uuid4().hex[:8]}", access.grant())
        denied: tuple[str, ...] = ()
        full_env = {**env, "GIT_ALLOW_PROTOCOL": "toolrt-none", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        full_env.pop("TOOLRT_MAX_FILE_BYTES", None)
        if max_file_bytes is not None:
            full_env["TOOLRT_MAX_FILE_BYTES"] = str(max_file_bytes)
        try:
            works, _ = _namespaces_work()
            bwrap = find_bwrap()
            if works and bwrap is not None:
                ro = [*_prefixes(python), *access.read_only, *read_only]
                rw = [*access.read_write, *read_write, cwd]
                for folder in access.read_write:
                    folder.mkdir(parents=True, exist_ok=True)
                full = [
                    str(bwrap),
                    *_bwrap_args(ro, rw, gate.path, str(cwd)),
                    "--",
                    python,
                    "-I",
                    "-S",
                    _FORWARDER_INSIDE,
                    _SOCKET_INSIDE,
                    "--",
                    *cmd,
                ]
            else:
                full = [python, "-I", "-S", str(_FORWARDER), str(gate.path), "--", *cmd]
            done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=str(cwd))
        finally:
            denied = gate.end()
            gate.close()
        if denied:
            log.warning("resolver egress denied", tool=what, targets=",".join(denied), allowed=access.describe())
        return done, denied
