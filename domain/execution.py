"""Executions of tools: status, output, bounded streams, failure and metrics."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs


class ExecutionStatus(str, enum.Enum):
    """Where an execution stands. The last five are final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once nothing more will happen to the execution."""
        return self not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


class IsolationLevel(str, enum.Enum):
    """How strongly the sandbox that ran the code isolated it.

    ``namespaces``: bubblewrap (user, pid, net, ipc, uts, mount namespaces) plus rlimits.
    ``process``: a separate process with rlimits and process-group control only.
    ``remote``: a managed remote sandbox (AgentCore Code Interpreter).
    ``none``: in the caller's own process (``sandbox="inprocess"``), for trusted test code only.
    """

    NAMESPACES = "namespaces"
    PROCESS = "process"
    REMOTE = "remote"
    NONE = "none"


@attrs.frozen
class ExecutionFailure:
    """Why an execution did not succeed: an error type, a message and, for tool errors, a traceback."""

    type: str
    message: str
    traceback: str = ""


@attrs.frozen
class ExecutionMetrics:
    """What one execution cost. ``limit`` names the limit that killed it, if one did."""

    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    max_rss_kb: int = 0
    exit_code: int | None = None
    isolation: IsolationLevel = attrs.field(default=IsolationLevel.PROCESS, converter=IsolationLevel)
    limit: str | None = None


@attrs.frozen(hash=False)
class Execution:
    """One run of one version of a tool on behalf of a caller."""

    execution_id: str
    tool_id: str
    version: int
    caller: str
    status: ExecutionStatus = attrs.field(converter=ExecutionStatus)
    created_at: datetime
    finished_at: datetime | None = None
    output: Any = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: ExecutionFailure | None = None
    metrics: ExecutionMetrics = attrs.field(factory=ExecutionMetrics)

    @property
    def ok(self) -> bool:
        """True when the tool returned a value."""
        return self.status is ExecutionStatus.SUCCEEDED
