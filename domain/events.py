"""Domain events: facts the use cases publish (for metrics, logs and subscribers)."""

from __future__ import annotations

from datetime import datetime

import attrs

from toolrt.domain.execution import ExecutionStatus


@attrs.frozen
class DomainEvent:
    """Base of every event; ``at`` is when it happened."""

    at: datetime

    @property
    def name(self) -> str:
        """The event's type name, for logs and metrics."""
        return type(self).__name__


@attrs.frozen
class ToolRegistered(DomainEvent):
    """A tool was created and published."""

    tool_id: str
    agent_id: str
    name: str
    code_hash: str
    cache_hit: bool


@attrs.frozen
class ToolUpdated(DomainEvent):
    """A tool got a new version or new metadata."""

    tool_id: str
    agent_id: str
    version: int
    new_code: bool


@attrs.frozen
class ToolRolledBack(DomainEvent):
    """An older version of a tool was put back in force."""

    tool_id: str
    agent_id: str
    version: int


@attrs.frozen
class TeamMembershipChanged(DomainEvent):
    """The runtime's owner added ``agent_id`` to ``team`` (``added``) or removed it: the tools that
    agent may discover changed."""

    team: str
    agent_id: str
    added: bool


@attrs.frozen
class TrafficChanged(DomainEvent):
    """A tool's traffic split was set, cleared or ended (``weights`` empty when all traffic goes to
    the version in force); ``reason`` says why when the owner did not end it (a guard tripped)."""

    tool_id: str
    agent_id: str
    weights: tuple[tuple[int, int], ...]
    reason: str = ""


@attrs.frozen
class ToolDeregistered(DomainEvent):
    """A tool was unpublished and deactivated or deleted."""

    tool_id: str
    agent_id: str
    purged: bool
    problems: tuple[str, ...] = ()


@attrs.frozen
class ArtifactCreated(DomainEvent):
    """New code was validated and stored."""

    code_hash: str


@attrs.frozen
class ArtifactReused(DomainEvent):
    """Registered code was already stored and validated: validation was skipped."""

    code_hash: str
    tool_id: str


@attrs.frozen
class ArtifactDeleted(DomainEvent):
    """The last tool referencing an artifact went away, and so did the artifact."""

    code_hash: str


@attrs.frozen
class ToolExecuted(DomainEvent):
    """An execution reached a final status."""

    tool_id: str
    execution_id: str
    caller: str
    status: ExecutionStatus
    wall_ms: float
