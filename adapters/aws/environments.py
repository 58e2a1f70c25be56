"""Requirements on AgentCore Code Interpreter: locks resolved here, wheels installed in the session.

How, and why:
* **Resolve** where toolrt runs, with pip (wheels only, so no setup code runs anywhere), for the
  interpreter's Python when the operator names its version (``python_version``, from
  ``TOOLRT_CODE_INTERPRETER_PYTHON``: wheels for ``cp<version>`` on manylinux x86_64), else for the
  Python running toolrt. The lock is the same kind of lock as on the local profile, and part of
  the artifact's hash the same way.
* **Wheels, not an index, go to the session.** The locked files are downloaded here, each checked
  against its sha256, refused past the policy's size (summed from the zips' directories, before
  anything is unpacked), and kept in ``<root>/code-interpreter/python/<lock digest>/wheels``. The
  sandbox uploads them into a session with ``writeFiles`` and installs them there with pip,
  ``--no-index --no-deps --require-hashes``: nothing in the session needs a network, so it works
  under the interpreter's SANDBOX network mode, and exactly the locked files are installed.
* **A package the interpreter cannot install** (a compiled wheel for another Python, say) fails the
  call with an :class:`~toolrt.domain.ExecutionError` naming the packages and pip's reason, before
  the tool's code runs; nothing is retried.
* **JavaScript and TypeScript requirements** are refused at registration with
  :class:`~toolrt.domain.RequirementsUnsupportedError`: the interpreter's Node runtime offers no
  way to place an npm tree that toolrt could verify, so they run on the local profile.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from toolrt.adapters.environment_folders import EnvironmentFolders, ResolutionMemo, over_cache, prune_plan
from toolrt.domain import (
    Language,
    Lock,
    RequirementError,
    RequirementsUnsupportedError,
    TransientError,
    refuse_denied,
)
from toolrt.logs import get_logger
from toolrt.ports import EnvironmentInfo, ProgressCallback, PruneReport

__all__ = ["CodeInterpreterEnvironments", "LockResolver", "interpreter_target", "wheel_modules"]

log = get_logger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_VERSION = re.compile(r"^3\.(\d{1,2})\Z")
_DOWNLOAD_TIMEOUT_S = 300
#: The file beside the wheels that names them with their hashes, for ``pip install -r`` in the session.
PINNED = "requirements.txt"


class LockResolver(Protocol):
    """What resolves requirements to a lock without installing them (pip, driven by the local adapter)."""

    def resolve(self, requirements: tuple[str, ...]) -> Lock:
        """The lock of ``requirements``, or RequirementError naming the one that cannot be met."""


def interpreter_target(python_version: str) -> tuple[tuple[str, ...], str]:
    """pip's options choosing wheels for Code Interpreter's Python ``python_version`` (``"3.12"``),
    and the platform tag its locks record. Raises ValueError for anything but ``3.N``."""
    found = _VERSION.match(python_version.strip())
    if found is None:
        raise ValueError(f"the Code Interpreter's Python version must look like 3.12, got {python_version!r}")
    minor = found.group(1)
    platforms = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
    options = ["--python-version", f"3.{minor}", "--implementation", "cp"]
    for platform in platforms:
        options += ["--platform", platform]
    return tuple(options), f"cp3{minor}-manylinux_x86_64"


def wheel_modules(wheel: Path) -> tuple[str, ...]:
    """The top-level import names a wheel provides, from its ``top_level.txt`` or else its ``RECORD``."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            info, _, leaf = member.partition("/")
            if not info.endswith(".dist-info"):
                continue
            if leaf == "top_level.txt":
                names.update(line.strip() for line in archive.read(member).decode("utf-8", "replace").splitlines())
            elif leaf == "RECORD":
                for line in archive.read(member).decode("utf-8", "replace").splitlines():
                    path = line.split(",", 1)[0]
                    first = path.split("/", 1)[0]
                    if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", "bin"):
                        continue
                    names.add(first.split(".", 1)[0] if "/" not in path else first)
    return tuple(sorted(n for n in names if _IDENTIFIER.match(n)))


class CodeInterpreterEnvironments:
    """The aws profile's environments: a folder of locked, hash-checked wheels per lock digest, which
    the Code Interpreter sandbox installs in the sessions that need them.

    ``resolver`` turns requirements into a lock (pip, for the interpreter's Python; None where tools
    are only run, like the Lambda router, which fetches the wheels of stored locks); ``root`` holds
    the wheel folders; ``cache_bytes`` is the most they may hold before the least recently used go
    (they are downloaded again from their lock when next needed). Thread-safe, and safe for several
    processes sharing ``root``.
    """

    ECOSYSTEM = "python"
    CONTENT = "wheels"

    def __init__(
        self, resolver: LockResolver | None, root: Path | str, *, cache_bytes: int = 8192 * 1024 * 1024
    ) -> None:
        self._resolver = resolver
        self._root = Path(root).resolve() / "code-interpreter" / self.ECOSYSTEM
        self._folders = EnvironmentFolders(self._root, self.CONTENT, "python (code interpreter)")
        self._cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._resolved = ResolutionMemo()

    @property
    def root(self) -> Path:
        """The folder holding one subfolder per lock digest."""
        return self._root

    # -- the EnvironmentBuilder port ------------------------------------------------------------

    def supports(self, language: Language) -> bool:
        """Python only (see the module's notes for JavaScript and TypeScript)."""
        return language is Language.PYTHON

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        """Resolve ``requirements``, refuse denied packages, download and check the wheels (at most
        ``max_bytes`` unpacked), and return the lock with the modules its wheels provide."""
        if language is not Language.PYTHON:
            raise RequirementsUnsupportedError("aws", supported_by="local", language=language.value)
        if self._resolver is None:
            raise RequirementsUnsupportedError("aws router", supported_by="aws")
        lock = self._resolved.get(requirements)
        if lock is None:
            if on_progress:
                on_progress(f"resolving {', '.join(requirements)}")
            lock = self._resolver.resolve(requirements)
            self._resolved.put(requirements, lock)
        refuse_denied(lock, requirements, denied)
        folder = self._fetch(lock, on_progress, max_bytes=max_bytes, requirements=requirements)
        modules: set[str] = set()
        for wheel in folder.glob("*.whl"):
            modules.update(wheel_modules(wheel))
        return Lock(lock.language, lock.packages, lock.platform, modules)

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        """The folder of ``lock``'s wheels (downloaded again if it was evicted); marks it used."""
        return str(self._fetch(lock, on_progress, max_bytes=None, requirements=()))

    def environments(self) -> list[EnvironmentInfo]:
        """Every wheel folder on hand, least recently used first."""
        return self._folders.listing()

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        """Remove wheel folders not in ``keep``, then the least recently used until ``max_bytes`` hold the rest."""
        doomed = prune_plan(self._folders.evictable(), keep, max_bytes)
        if not dry_run:
            for env, evict in doomed:
                evict(env.digest)
        return PruneReport(tuple(e.digest for e, _ in doomed), sum(e.size_bytes for e, _ in doomed))

    # -- fetching ---------------------------------------------------------------------------------

    def _fetch(
        self, lock: Lock, on_progress: ProgressCallback | None, *, max_bytes: int | None, requirements: tuple[str, ...]
    ) -> Path:
        digest = lock.digest
        folder = self._folders.folder(digest)
        if (folder / self.CONTENT).is_dir():
            self._folders.touch(digest)
            return folder / self.CONTENT
        with self._folders.locked(digest):
            if (folder / self.CONTENT).is_dir():
                self._folders.touch(digest)
                return folder / self.CONTENT
            if on_progress:
                on_progress(f"downloading {len(lock.packages)} wheel(s) for Code Interpreter: {lock.describe()}")
            scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self._root))
            try:
                wheels = scratch / self.CONTENT
                wheels.mkdir()
                unpacked = downloaded = 0
                for package in lock.packages:
                    path = wheels / _wheel_name(package.url, package.name)
                    # The files themselves count too: a wheel bigger than the limit is refused while it
                    # downloads, not written out whole first (one agent could fill the host's disk).
                    budget = None if max_bytes is None else max_bytes - downloaded
                    mb = f"{(max_bytes or 0) / 2**20:.0f}"
                    size = _download(package.url, package.sha256, path, package.name, budget)
                    if size is None:
                        raise _too_large(lock, requirements, f"the wheels to download are over the policy's {mb} MB")
                    downloaded += size
                    with zipfile.ZipFile(path) as archive:
                        unpacked += sum(info.file_size for info in archive.infolist())
                    if max_bytes is not None and unpacked > max_bytes:
                        raise _too_large(
                            lock,
                            requirements,
                            f"the environment would hold {unpacked / 2**20:.1f} MB installed, more than "
                            f"the policy's {mb} MB",
                        )
                (wheels / PINNED).write_text(pinned_requirements(lock), encoding="utf-8")
                (scratch / "lock.json").write_text(
                    json.dumps(
                        {
                            "digest": digest,
                            "platform": lock.platform,
                            "packages": [
                                {"name": p.name, "version": p.version, "sha256": p.sha256} for p in lock.packages
                            ],
                        },
                        indent=2,
                    ),
                    encoding="utf-8",
                )
                os.rename(scratch, folder)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        log.info("code interpreter wheels ready", digest=digest[:12], packages=lock.describe())
        self._evict_over_cache(keep=digest)
        return folder / self.CONTENT

    def _evict_over_cache(self, keep: str) -> None:
        with self._lock:
            for env, evict in over_cache(self._folders.evictable(), keep, self._cache_bytes):
                evict(env.digest)


def pinned_requirements(lock: Lock) -> str:
    """The lock as pip's requirements file: ``name==version --hash=sha256:...``, one per line."""
    return "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in lock.packages)


#: What a wheel's file name is made of (PEP 427: name, version, build, tags, ``-`` between them).
_WHEEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*\.whl")


def _wheel_name(url: str, name: str) -> str:
    """The file name of the wheel at ``url``: it is a file here and a path in the session, so only the
    characters of a wheel's name are taken (no separator, NUL, newline, space or shell syntax)."""
    leaf = unquote(urlparse(url).path).rsplit("/", 1)[-1]
    if not _WHEEL_NAME.fullmatch(leaf) or len(leaf) > 255:
        raise RequirementError(name, "no_wheel", f"the lock names {url!r} for {name}, which is not a wheel")
    return leaf


def _too_large(lock: Lock, requirements: tuple[str, ...], what: str) -> RequirementError:
    return RequirementError(
        ", ".join(requirements) or lock.describe(),
        "too_large",
        f"{what} ({lock.describe()})",
        hint="ask for fewer or smaller packages, or ask the runtime's owner for a larger max_environment_mb",
    )


def _download(url: str, sha256: str, path: Path, name: str, budget: int | None = None) -> int | None:
    """Fetch ``url`` into ``path``, refusing it unless its sha256 is the lock's (http(s) of the
    index, or a file:// folder the operator's pip configuration names); its size in bytes, or None
    (the part written removed) as soon as it exceeds ``budget``."""
    scheme = urlparse(url).scheme
    if scheme not in ("https", "http", "file"):
        raise RequirementError(name, "denied", f"the lock names {url!r} for {name}; only index files are installed")
    if scheme == "file" and not Path(unquote(urlparse(url).path)).is_file():
        # Nothing to wait for: pip found it in a folder of the machine that resolved the lock.
        raise RequirementError(
            name,
            "not_found",
            f"the lock's wheel for {name} is a file of the machine that resolved it ({url}), not on this machine",
            hint="serve packages from an index every machine running toolrt reaches (pip's index-url), then "
            "register the tool again",
        )
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(path, "wb") as out:  # noqa: S310
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if budget is not None and size > budget:
                    break
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise TransientError(f"downloading {name} from {url} failed: {exc}; try again later") from exc
    if budget is not None and size > budget:
        path.unlink(missing_ok=True)
        return None
    if digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        raise RequirementError(
            name,
            "resolution_failed",
            f"{url} does not match the lock's sha256 for {name}: the file changed on the index",
        )
    return size
