"""Requirements at registration and execution: resolve to a lock under the policy, find the environment."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

from toolrt.application.policy import ExecutionPolicy
from toolrt.domain import Language, Lock, RequirementsUnsupportedError, ToolDefinition
from toolrt.ports.environments import EnvironmentBuilder, EnvironmentInfo, ProgressCallback, PruneReport


class NoEnvironments:
    """The environments of a profile that cannot install packages: every request with requirements is
    refused with :class:`RequirementsUnsupportedError` naming the profile (never silently ignored)."""

    def __init__(self, profile: str) -> None:
        self.profile = profile

    def supports(self, language: Language) -> bool:
        """Never."""
        return False

    def lock(
        self,
        language: Language,
        requirements: tuple[str, ...],
        *,
        max_bytes: int,
        denied: Collection[str] = (),
        on_progress: ProgressCallback | None = None,
    ) -> Lock:
        """Refuse: this profile installs nothing."""
        raise RequirementsUnsupportedError(self.profile)

    def ensure(self, lock: Lock, on_progress: ProgressCallback | None = None) -> str:
        """Refuse: this profile installs nothing."""
        raise RequirementsUnsupportedError(self.profile)

    def environments(self) -> list[EnvironmentInfo]:
        """None."""
        return []

    def prune(self, keep: Collection[str], max_bytes: int | None = None, dry_run: bool = False) -> PruneReport:
        """Nothing to remove."""
        return PruneReport()


class Requirements:
    """Turns a definition's requirements into its lock, and a lock into a place to run.

    Rules:
    - a definition without requirements carries no lock (whatever it was given) and no environment;
    - a denied package (directly or as a dependency) is refused before or right after resolving,
      with RequirementError naming it; nothing is stored either way;
    - a definition whose requirements equal those of an earlier version (same language) takes that
      version's lock: the same requirements mean the same packages until they change, and no index
      is asked;
    - otherwise the environment builder resolves and builds them, within the policy's size limit.
    """

    def __init__(self, builder: EnvironmentBuilder, policy: ExecutionPolicy) -> None:
        self.builder = builder
        self._policy = policy
        #: Called with a line of progress while an environment resolves or builds (the CLI sets it).
        self.on_progress: ProgressCallback | None = None

    def resolve(self, definition: ToolDefinition, earlier: Iterable[ToolDefinition] = ()) -> ToolDefinition:
        """``definition`` with the lock of its requirements (or none, without requirements)."""
        if not definition.requirements:
            return attrs.evolve(definition, lock=None) if definition.lock is not None else definition
        self._policy.check_requirements(definition)
        lock = next(
            (
                e.lock
                for e in earlier
                if e.lock is not None
                and e.language is definition.language
                and e.requirements == definition.requirements
            ),
            None,
        )
        if lock is None:
            lock = self.builder.lock(
                definition.language,
                definition.requirements,
                max_bytes=self._policy.max_environment_mb * 1024 * 1024,
                denied=self._policy.denied_packages,
                on_progress=self.on_progress,
            )
        self._policy.check_lock(lock, definition.requirements)
        return attrs.evolve(definition, lock=lock)

    def location(self, definition: ToolDefinition) -> str | None:
        """Where the environment of ``definition``'s lock is (built again if it was pruned); None without one."""
        if definition.lock is None:
            return None
        return self.builder.ensure(definition.lock, self.on_progress)
