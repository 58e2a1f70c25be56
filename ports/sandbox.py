"""The sandbox port: run one tool call in isolation under limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from toolrt.domain import EgressGrant, ExecutionFailure, ExecutionMetrics, ExecutionStatus, IsolationLevel, Language

OutputCallback = Callable[[str, str], None]
"""``on_output(stream, text)``: ``stream`` is ``"stdout"`` or ``"stderr"``, ``text`` the next piece."""


@attrs.frozen
class SandboxRequest:
    """Everything a sandbox needs for one call. ``params`` is JSON data, never spliced into code.

    Limits here are final: the application has already applied defaults and capped them.
    """

    execution_id: str
    language: Language
    code: str
    entrypoint: str
    params: dict[str, Any]
    timeout_s: float
    memory_mb: int
    max_output_bytes: int
    # Who the call is for (the calling agent): a sandbox may keep tenants' workers apart by it.
    tenant: str = ""
    # Which tool is called (its id): a remote sandbox may keep sessions of different tools apart by it.
    tool: str = ""
    # Whose code it is (the tool's owner): a remote sandbox that lets calls share a session must never
    # let one owner's code run where another's ran, since files it leaves behind outlive the call.
    owner: str = ""
    # Called with ("stdout" | "stderr", text) as the tool prints, by sandboxes that can stream (the
    # application delivers whatever a sandbox did not stream when the call ends). It runs in the
    # sandbox's thread and must return quickly; what it raises is logged, never propagated.
    on_output: OutputCallback | None = attrs.field(default=None, eq=False, repr=False)
    # The hosts this call may reach through the sandbox's egress proxy (the tool's declaration as the
    # owner's policy permits it now); None: no network at all. A sandbox that cannot confine egress
    # to these hosts must not widen it: the local one offers no network without namespaces either way.
    egress: EgressGrant | None = None
    # For JavaScript and TypeScript: the engine the tool's artifact names ("quickjs" when the
    # validator proved at registration that the code needs nothing of Node's, "node" otherwise), or
    # None when nothing was recorded. A sandbox with one engine only ignores it.
    engine: str | None = None
    # Where the environment of the tool's requirements is (a host directory for the local sandbox),
    # to be made visible read-only to this call's code and importable by it; None: no packages
    # beyond the standard library, and no environment of any other tool visible.
    environment: str | None = None


@attrs.frozen
class SandboxResult:
    """What came back: a final status, the JSON output, bounded streams, a failure and metrics."""

    status: ExecutionStatus
    output: Any = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: ExecutionFailure | None = None
    metrics: ExecutionMetrics = attrs.field(factory=ExecutionMetrics)


@runtime_checkable
class CancelSignal(Protocol):
    """Set by the caller to stop an execution; ``threading.Event`` is one."""

    def is_set(self) -> bool:
        """True once cancellation was asked for."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds for cancellation; True if it was asked for."""


@runtime_checkable
class Sandbox(Protocol):
    """Runs tool code. Never raises for what the tool did: failures come back in the result.

    Rules (``toolrt.contracts.sandbox``): a return value comes back as ``output``; an exception in
    the tool gives ``failed`` with its type and message; exceeding ``timeout_s`` gives
    ``timed_out``; a set cancel signal gives ``cancelled``; output beyond ``max_output_bytes`` is
    cut and flagged. It raises ``ExecutionError`` only when it cannot run anything at all.
    """

    @property
    def isolation(self) -> IsolationLevel:
        """The isolation this sandbox gives on this machine."""

    def supports(self, language: Language) -> bool:
        """True when this sandbox can run ``language`` here."""

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        """Run one call to completion (or timeout, kill or cancellation)."""

    def close(self) -> None:
        """Release workers, sessions and temporary files."""
