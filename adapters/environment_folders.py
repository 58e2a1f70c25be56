"""Folders of environments, one per lock digest: listing, last use, a build lock, eviction, pruning.

Shared by the local profile's pip and npm environments and the aws profile's folders of wheels for
Code Interpreter, which keep their packages the same way:

* ``<root>/<digest>/<content>`` holds what a lock installs (``site``, ``node_modules``, ``wheels``)
  and ``<root>/<digest>/lock.json`` the packages it names; a folder is complete once it has been
  renamed into place, so a half-built one is never listed.
* The folder's mtime is its last use (``touch``). Past a cache size, or on ``prune``, the least
  recently used go first; an evicted environment is made again from its lock when next needed.
* Builders of one digest take ``locked(digest)`` (``flock``: threads and processes alike), so a
  concurrent builder waits and finds the folder done.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from toolrt.domain import Lock
from toolrt.logs import get_logger
from toolrt.ports import EnvironmentInfo

__all__ = [
    "RESOLVE_TTL_S",
    "EnvironmentFolders",
    "ResolutionMemo",
    "over_cache",
    "prune_plan",
    "remove_tree",
    "tree_size",
]

log = get_logger(__name__)

T = TypeVar("T")

#: A resolution is remembered this long for the same requirements (a warm registration asks no index).
RESOLVE_TTL_S = 600.0


class ResolutionMemo:
    """The locks requirements resolved to lately, by their sorted requirements, for RESOLVE_TTL_S
    (at most 1024 at once: past that all are forgotten). Thread-safe."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, ...], tuple[float, Lock]] = {}
        self._guard = threading.Lock()

    def get(self, requirements: tuple[str, ...]) -> Lock | None:
        """The lock remembered for ``requirements``, or None (never seen, or too long ago)."""
        with self._guard:
            found = self._locks.get(tuple(sorted(requirements)))
        return found[1] if found is not None and time.monotonic() - found[0] < RESOLVE_TTL_S else None

    def put(self, requirements: tuple[str, ...], lock: Lock) -> None:
        """Remember ``lock`` for ``requirements`` from now."""
        with self._guard:
            if len(self._locks) > 1024:
                self._locks.clear()
            self._locks[tuple(sorted(requirements))] = (time.monotonic(), lock)


def tree_size(path: Path) -> int:
    """The bytes of every file under ``path`` (links not followed)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def remove_tree(path: Path) -> None:
    """Delete a tree, read-only ones too (write permission back on its folders first)."""
    for folder, _, _ in os.walk(path):
        try:
            os.chmod(folder, 0o755)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def _last_used(entry: tuple[EnvironmentInfo, T]) -> tuple[datetime, str]:
    info = entry[0]
    return (info.last_used or datetime.min.replace(tzinfo=UTC), info.digest)


def prune_plan(
    entries: Sequence[tuple[EnvironmentInfo, T]], keep: Collection[str], max_bytes: int | None
) -> list[tuple[EnvironmentInfo, T]]:
    """What a prune removes from ``entries`` (any order): those not in ``keep``, then the least
    recently used of the rest until ``max_bytes`` hold them."""
    ordered = sorted(entries, key=_last_used)
    doomed = [e for e in ordered if e[0].digest not in keep]
    if max_bytes is not None:
        left = [e for e in ordered if e[0].digest in keep]
        total = sum(e[0].size_bytes for e in left)
        for entry in left:
            if total <= max_bytes:
                break
            doomed.append(entry)
            total -= entry[0].size_bytes
    return doomed


def over_cache(
    entries: Sequence[tuple[EnvironmentInfo, T]], keep: str, cache_bytes: int
) -> list[tuple[EnvironmentInfo, T]]:
    """What must go so that ``entries`` fit in ``cache_bytes``: the least recently used first,
    never ``keep`` (the environment just made, even when it alone is larger)."""
    total = sum(e[0].size_bytes for e in entries)
    doomed = []
    for entry in sorted(entries, key=_last_used):
        if total <= cache_bytes:
            break
        if entry[0].digest != keep:
            doomed.append(entry)
            total -= entry[0].size_bytes
    return doomed


class EnvironmentFolders:
    """The environments under ``root``: ``<digest>/<content>`` each, listed as ``label``."""

    def __init__(self, root: Path, content: str, label: str) -> None:
        self.root = root
        self.content = content
        self.label = label

    def folder(self, digest: str) -> Path:
        """Where the environment of ``digest`` is (its content, ``lock.json`` and the like)."""
        return self.root / digest

    def site(self, digest: str) -> Path:
        """Its content folder (what is bound into the sandbox or uploaded)."""
        return self.root / digest / self.content

    def touch(self, digest: str) -> None:
        """Mark it used now (its folder's mtime)."""
        try:
            os.utime(self.folder(digest))
        except OSError:
            pass

    @contextmanager
    def locked(self, digest: str) -> Iterator[None]:
        """Hold the build lock of ``digest`` (other threads and processes wait)."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{digest}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def listing(self) -> list[EnvironmentInfo]:
        """Every complete environment, least recently used first."""
        found = []
        for folder in self.root.glob("[0-9a-f]" * 8 + "*"):
            site = folder / self.content
            if len(folder.name) != 64 or not site.is_dir():
                continue
            packages: tuple[str, ...] = ()
            try:
                data = json.loads((folder / "lock.json").read_text(encoding="utf-8"))
                packages = tuple(f"{p['name']}=={p['version']}" for p in data["packages"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            used = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            found.append(EnvironmentInfo(folder.name, self.label, packages, tree_size(folder), used, str(site)))
        return sorted(found, key=lambda e: (e.last_used or datetime.min.replace(tzinfo=UTC), e.digest))

    def evict(self, digest: str) -> None:
        """Remove the environment of ``digest`` (made again from its lock when next needed)."""
        folder = self.folder(digest)
        if not folder.is_dir():
            return
        # Renamed away first: a concurrent user sees it gone (and makes it again) rather than half-deleted.
        doomed = self.root / f".evict-{digest}-{os.getpid()}-{threading.get_ident()}"
        try:
            os.rename(folder, doomed)
        except OSError:
            return
        remove_tree(doomed)
        log.info("environment removed", digest=digest[:12], kind=self.label)

    def evictable(self) -> list[tuple[EnvironmentInfo, Callable[[str], None]]]:
        """Every environment with the function that evicts it (for :func:`prune_plan` and :func:`over_cache`)."""
        return [(e, self.evict) for e in self.listing()]
