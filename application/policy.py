"""Execution policy: defaults and maxima that the runtime applies to every tool's limits."""

from __future__ import annotations

import attrs

from toolrt.domain import Limits


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
