"""The tool records port: tools, listed and changed under optimistic concurrency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import Tool, ToolStatus, ValidationError
from toolrt.ports.fleet import ToolCensus


def _to_teams(teams: Iterable[str]) -> frozenset[str]:
    return frozenset(teams)


@attrs.frozen
class ToolQuery:
    """Which tools to list. Every field narrows; ``None`` means any.

    ``visible_to`` keeps the tools that agent may discover: its own, the public ones, and the team
    tools of ``teams`` (the teams ``visible_to`` belongs to, as the caller read them; none when not
    given). ``text`` matches name or description (case-insensitive substring); ``tag`` requires the
    current version to carry it.
    """

    owner: str | None = None
    visible_to: str | None = None
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_to_teams)
    status: ToolStatus | None = ToolStatus.ACTIVE
    name: str | None = None
    tag: str | None = None
    text: str | None = None
    limit: int = attrs.field(default=1000)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"limit must be a non-negative integer, got {value!r}")

    def matches(self, tool: Tool) -> bool:
        """True when ``tool`` satisfies every field (adapters that filter in process use this)."""
        if self.owner is not None and tool.owner != self.owner:
            return False
        if self.visible_to is not None and not tool.can_discover(self.visible_to, self.teams):
            return False
        if self.status is not None and tool.status is not self.status:
            return False
        if self.name is not None and tool.name != self.name:
            return False
        if self.tag is not None and self.tag not in tool.definition.tags:
            return False
        if self.text is not None:
            needle = self.text.lower()
            if needle not in tool.name.lower() and needle not in tool.definition.description.lower():
                return False
        return True


@runtime_checkable
class ToolRecords(Protocol):
    """Stores tool records (``toolrt.contracts.ToolRecordsContract`` checks every rule below).

    - ``add`` creates; a second tool with the same id, or an active tool with the same owner and
      name, raises ``ConflictError``.
    - ``save`` replaces the stored record only when its ``record_version`` is exactly one less than
      the given tool's; otherwise ``ConflictError`` (never a lost update).
    - What a store derives from the records (its :class:`~toolrt.ports.CodeReferences`, its
      :class:`~toolrt.ports.SearchIndex`) changes in the same atomic step as the record.
    """

    def add(self, tool: Tool) -> None:
        """Create ``tool`` (and what the store derives from it)."""

    def get(self, tool_id: str) -> Tool:
        """The stored tool, or ``NotFoundError``."""

    def save(self, tool: Tool) -> None:
        """Replace the stored record (optimistic concurrency on ``record_version``)."""

    def delete(self, tool_id: str) -> None:
        """Remove the record (and what the store derives from it); ``NotFoundError`` if absent."""

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        """Tools matching ``query``, ordered by name then tool id."""

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        """``(tool_id, record_version, tags)`` of every active tool ``visible_to`` (a member of
        ``teams``) may discover (all active tools for ``None``), in no particular order: what a
        semantic ranking or an access check needs, without reading whole records."""

    def tool_census(self) -> ToolCensus:
        """How many active and inactive tools the store holds, the distinct owners of active tools,
        and active tools per visibility (the runtime owner's figures, see toolrt.ports.fleet)."""

    def change_marker(self) -> object | None:
        """A cheap value that differs after any process added, changed or deleted a tool record or,
        in a store that also keeps :class:`~toolrt.ports.Teams`, a team membership (execution
        records do not count); or None when the store cannot tell: a store no other process writes
        (memory), or one with no cheap marker (DynamoDB). Changes made through this process are
        announced by domain events; the marker is for the others'.
        """
