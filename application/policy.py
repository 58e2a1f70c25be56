"""Execution policy: defaults and maxima that the runtime applies to every tool's limits, its egress and package rules."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from toolrt.domain import (
    EgressGrant,
    EgressPolicy,
    Limits,
    Lock,
    RequirementError,
    ToolDefinition,
    canonical_package,
    refuse_denied,
    requirement_name,
)


def package_list(value: Any) -> tuple[str, ...]:
    """Package names from a list or one string separated by commas or spaces, canonical (PEP 503)."""
    return tuple(sorted({canonical_package(name) for name in host_port_list(value)}))


def host_port_list(value: Any) -> tuple[str, ...]:
    """``host:port`` entries from a list or from one string separated by commas or spaces (an environment variable)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(entry for entry in re.split(r"[,\s]+", value) if entry)
    if isinstance(value, Iterable):
        return tuple(str(entry) for entry in value)
    raise TypeError(f"expected a list of host:port entries, got {type(value).__name__}")


@attrs.frozen
class ExecutionPolicy:
    """Limits a tool gets when it asks for none, the maxima nothing may exceed, and polling rules."""

    default_timeout_s: float = 30.0
    max_timeout_s: float = 300.0
    default_memory_mb: int = 256
    max_memory_mb: int = 2048
    default_max_output_bytes: int = 1024 * 1024
    max_output_bytes: int = 16 * 1024 * 1024
    poll_interval_s: float = 1.0
    poll_max_attempts: int = 60
    max_concurrent_executions: int = 8
    # Egress (see toolrt.domain.network): host:port entries (or *.domain:port patterns) a tool may
    # declare in its `network`, and exact host:port entries that may resolve to private, loopback or
    # link-local addresses. Both empty by default: no tool reaches any network.
    network_allow: tuple[str, ...] = attrs.field(default=(), converter=host_port_list)
    network_private: tuple[str, ...] = attrs.field(default=(), converter=host_port_list)
    egress: EgressPolicy = attrs.field(init=False)
    # Requirements (see toolrt.domain.requirements): packages no tool may install, directly or as a
    # dependency; the most one environment may hold installed; the most all environments together
    # may hold before the least recently used are evicted (rebuilt from their lock when next needed).
    denied_packages: tuple[str, ...] = attrs.field(default=(), converter=package_list)
    max_environment_mb: int = 1024
    environment_cache_mb: int = 8192

    def check_requirements(self, definition: ToolDefinition) -> None:
        """Refuse (RequirementError) a definition asking directly for a denied package."""
        for requirement in definition.requirements:
            name = requirement_name(definition.language.value, requirement)
            if canonical_package(name) in self.denied_packages:
                raise RequirementError(
                    requirement,
                    "denied",
                    f"package {name!r} is denied by the runtime's policy",
                    hint="use another package, or ask the runtime's owner to allow it",
                )

    def check_lock(self, lock: Lock, requirements: tuple[str, ...]) -> None:
        """Refuse (RequirementError) a lock that brings a denied package in as a dependency."""
        refuse_denied(lock, requirements, self.denied_packages)

    @egress.default
    def _egress(self) -> EgressPolicy:
        return EgressPolicy(self.network_allow, self.network_private)

    def check_network(self, definition: ToolDefinition) -> None:
        """Refuse (EgressDeniedError naming each entry) a definition whose network the egress policy does not permit."""
        if definition.network:
            self.egress.check(definition.network, definition.name)

    def grant(self, definition: ToolDefinition) -> EgressGrant | None:
        """What a call of ``definition`` may reach now; None when it declares no network or nothing is permitted."""
        if not definition.network:
            return None
        grant = self.egress.grant(definition.network)
        return grant if grant else None

    def effective(self, limits: Limits) -> tuple[float, int, int]:
        """(timeout_s, memory_mb, max_output_bytes): the tool's ask or the default, capped by the maxima."""
        timeout = min(limits.timeout_s or self.default_timeout_s, self.max_timeout_s)
        memory = min(limits.memory_mb or self.default_memory_mb, self.max_memory_mb)
        output = min(limits.max_output_bytes or self.default_max_output_bytes, self.max_output_bytes)
        return timeout, memory, output

    def capped(self, limits: Limits) -> list[str]:
        """Which of the tool's asks exceed a maximum (for a warning at registration)."""
        over = []
        if limits.timeout_s and limits.timeout_s > self.max_timeout_s:
            over.append(f"timeout_s {limits.timeout_s} capped at {self.max_timeout_s}")
        if limits.memory_mb and limits.memory_mb > self.max_memory_mb:
            over.append(f"memory_mb {limits.memory_mb} capped at {self.max_memory_mb}")
        if limits.max_output_bytes and limits.max_output_bytes > self.max_output_bytes:
            over.append(f"max_output_bytes {limits.max_output_bytes} capped at {self.max_output_bytes}")
        return over
