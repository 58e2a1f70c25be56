"""The environments port: resolve a tool's requirements to a lock, and keep one environment per lock."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import Language, Lock

ProgressCallback = Callable[[str], None]
"""``on_progress(line)``: one human-readable line about a resolution or build under way."""


@attrs.frozen
class EnvironmentInfo:
    """One environment on hand: its lock's digest, language, packages, size and last use."""

    digest: str
    language: str
    packages: tuple[str, ...]
    size_bytes: int
    last_used: datetime | None
    location: str


@attrs.frozen
class PruneReport:
    """What a prune removed (digests) and the bytes it freed."""

    removed: tuple[str, ...] = ()
    freed_bytes: int = 0


@runtime_checkable
class EnvironmentBuilder(Protocol):
    """Installs third-party packages for tools, outside any sandbox, into shared environments.

    Rules (the local adapter's tests): ``lock`` resolves requirements to exact files with their
    hashes and builds the environment, or raises :class:`~toolrt.domain.RequirementError` naming
    the requirement (unknown package, no matching version, no wheel, too large) having built nothing;
    an environment is keyed by the lock's digest, built once and shared by every tool with that lock;
    ``ensure`` gives the location of a lock's environment, rebuilding it from the lock if it was
    pruned. A profile that cannot install packages raises
    :class:`~toolrt.domain.RequirementsUnsupportedError` from ``lock``.
    """

    def supports(self, language: Language) -> bool:
        """True when this builder can install packages for ``language``."""

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        """Resolve ``requirements`` and build their environment (at most ``max_bytes`` installed; no
        package whose canonical name is in ``denied``, which is refused before anything is installed)."""

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        """The location of ``lock``'s environment (built from the lock when missing); marks it used."""

    def environments(self) -> list[EnvironmentInfo]:
        """Every environment on hand, least recently used first."""

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        """Remove environments whose digest is not in ``keep``; then, past ``max_bytes`` in all, the
        least recently used of the others too (they are rebuilt from their lock when next needed)."""
