"""The tool repository port: tool records, artifact references and execution records."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import CodeHash, Execution, ExecutionStatus, Tool, ToolStatus, ValidationError
from toolrt.domain.search import CorpusStats, Score, SearchDocument, rank
from toolrt.ports.fleet import ExecutionSummary, StoredCount, ToolCensus


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


@attrs.frozen
class ExecutionQuery:
    """Which execution records to list, newest first (``created_at``, then ``execution_id``).

    ``caller`` and ``tool_ids`` given together match either (an agent's own calls and every call of
    its tools); each alone narrows. ``tool_id``, ``version``, ``status`` and ``since`` narrow further.
    ``before`` continues a listing: the ``(created_at, execution_id)`` of the last record seen.
    """

    caller: str | None = None
    tool_ids: frozenset[str] | None = None
    tool_id: str | None = None
    version: int | None = None
    status: ExecutionStatus | None = None
    since: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = attrs.field(default=100)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1000:
            raise ValidationError(f"limit must be an integer from 1 to 1000, got {value!r}")

    def matches(self, execution: Execution) -> bool:
        """True when ``execution`` satisfies every field but the limit (adapters filtering in process)."""
        if self.caller is not None and self.tool_ids is not None:
            if execution.caller != self.caller and execution.tool_id not in self.tool_ids:
                return False
        elif self.caller is not None and execution.caller != self.caller:
            return False
        elif self.tool_ids is not None and execution.tool_id not in self.tool_ids:
            return False
        if self.tool_id is not None and execution.tool_id != self.tool_id:
            return False
        if self.version is not None and execution.version != self.version:
            return False
        if self.status is not None and execution.status is not self.status:
            return False
        if self.since is not None and execution.created_at < self.since:
            return False
        if self.before is not None and (execution.created_at, execution.execution_id) >= self.before:
            return False
        return True


@attrs.frozen
class SearchQuery:
    """A ranked search over active tools.

    ``terms`` are analyzed already (``toolrt.domain.search.query_terms``). ``visible_to`` keeps the
    tools that agent may discover (``teams`` as in :class:`ToolQuery`), and the ranking's statistics
    are those of exactly that set, so nothing outside it moves a score; ``None`` searches every
    active tool. ``tags`` keeps tools whose current version carries every one of them.
    """

    terms: tuple[str, ...]
    visible_to: str | None = None
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_to_teams)
    tags: tuple[str, ...] = ()
    limit: int = attrs.field(default=10)

    @limit.validator
    def _check_limit(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
            raise ValidationError(f"limit must be an integer from 1 to 100, got {value!r}")


@attrs.frozen
class SearchHit:
    """A tool found by a search, with its BM25F score and the fields a query term was found in."""

    tool: Tool
    score: Score


@attrs.frozen
class ToolUsage:
    """How a tool has fared in its finished calls (cancelled ones aside), by anyone.

    Aggregates only: no caller, parameter or result of another agent is ever shown.
    """

    executions: int
    distinct_callers: int
    succeeded: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded calls over finished calls; None before the first call."""
        return self.succeeded / self.executions if self.executions else None


NO_USAGE = ToolUsage(0, 0, 0)


@attrs.frozen
class ExecutionOutcome:
    """What per-version metrics need of one finished call: no caller, parameter or output."""

    version: int
    status: ExecutionStatus
    wall_ms: float
    error_type: str | None = None


def outcomes_of(executions: Iterable[Execution], tool_id: str, since: datetime | None) -> list[ExecutionOutcome]:
    """:meth:`ToolRepository.execution_outcomes` computed over records held in process (for adapters)."""
    return [
        ExecutionOutcome(e.version, e.status, e.metrics.wall_ms, e.error.type if e.error else None)
        for e in executions
        if e.tool_id == tool_id and e.status.is_final and (since is None or e.created_at >= since)
    ]


def count_usage(executions: Iterable[Execution], tool_ids: Collection[str]) -> dict[str, ToolUsage]:
    """:meth:`ToolRepository.tool_usage` computed over records held in process (for adapters)."""
    wanted = frozenset(tool_ids)
    counts: dict[str, tuple[int, set[str], int]] = {}
    for e in executions:
        if e.tool_id in wanted and e.status.is_final and e.status is not ExecutionStatus.CANCELLED:
            total, callers, succeeded = counts.setdefault(e.tool_id, (0, set(), 0))
            callers.add(e.caller)
            counts[e.tool_id] = (total + 1, callers, succeeded + (e.status is ExecutionStatus.SUCCEEDED))
    found = {tool_id: ToolUsage(n, len(callers), ok) for tool_id, (n, callers, ok) in counts.items()}
    return {tool_id: found.get(tool_id, NO_USAGE) for tool_id in wanted}


def purgeable(executions: Iterable[Execution], before: datetime, keep_newest: int | None) -> list[str]:
    """Ids of the records :meth:`ToolRepository.purge_executions` removes (for adapters holding
    records in process): finished ones created before ``before``, and finished ones beyond the
    newest ``keep_newest`` (by ``created_at``, then ``execution_id``)."""
    if keep_newest is not None and (
        isinstance(keep_newest, bool) or not isinstance(keep_newest, int) or keep_newest < 0
    ):
        raise ValidationError(f"keep_newest must be a non-negative integer, got {keep_newest!r}")
    finished = sorted(
        (e for e in executions if e.status.is_final), key=lambda e: (e.created_at, e.execution_id), reverse=True
    )
    return [
        e.execution_id
        for rank, e in enumerate(finished)
        if e.created_at < before or (keep_newest is not None and rank >= keep_newest)
    ]


def newest_first(executions: Iterable[Execution], query: ExecutionQuery) -> list[Execution]:
    """The executions ``query`` matches, newest first, at most ``query.limit`` (for adapters)."""
    found = [e for e in executions if query.matches(e)]
    found.sort(key=lambda e: (e.created_at, e.execution_id), reverse=True)
    return found[: query.limit]


@runtime_checkable
class ToolRepository(Protocol):
    """Stores tools and, in the same atomic step, which tools reference which artifact.

    Rules every adapter keeps (``toolrt.contracts.repository`` checks them):

    - ``add`` creates; a second tool with the same id, or an active tool with the same owner and
      name, raises ``ConflictError``.
    - ``save`` replaces the stored record only when its ``record_version`` is exactly one less than
      the given tool's; otherwise ``ConflictError`` (never a lost update).
    - An *active* tool references every code hash of its version history; an inactive or deleted tool
      references none. ``references(h)`` is always exactly the set of tools referencing ``h``, and
      changes atomically with the record.
    """

    def add(self, tool: Tool) -> None:
        """Create ``tool`` and its artifact references."""

    def get(self, tool_id: str) -> Tool:
        """The stored tool, or ``NotFoundError``."""

    def save(self, tool: Tool) -> None:
        """Replace the stored record (optimistic concurrency on ``record_version``)."""

    def delete(self, tool_id: str) -> None:
        """Remove the record and its references; ``NotFoundError`` if absent."""

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        """Tools matching ``query``, ordered by name then tool id."""

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        """Every tool (any status) with ``code_hash`` anywhere in its history."""

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        """Ids of the tools that currently reference ``code_hash``."""

    def record_execution(self, execution: Execution) -> None:
        """Insert or replace an execution record (keyed by ``execution_id``)."""

    def get_execution(self, execution_id: str) -> Execution:
        """The stored execution, or ``NotFoundError``."""

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Execution records ``query`` matches, newest first, at most ``query.limit``."""

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        """Counts of the finished, not cancelled, execution records of each of ``tool_ids`` (every
        id given is a key; a tool never called has zeros), counted by the store, not read out."""

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        """Version, status, wall time and error type of every finished call of ``tool_id`` created at
        or after ``since`` (all for None), in no particular order: per-version metrics and traffic
        guards are computed from the records themselves, so every process on a store agrees."""

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        """``(tool_id, record_version, tags)`` of every active tool ``visible_to`` (a member of
        ``teams``) may discover (all active tools for ``None``), in no particular order: what a
        semantic ranking needs, without reading whole records."""

    # -- teams: a store-level membership, managed by the runtime's owner, never by agents --------

    def add_team_member(self, team: str, agent_id: str) -> bool:
        """Make ``agent_id`` a member of ``team`` (a team exists while it has members); False when
        it already was one."""

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        """End ``agent_id``'s membership of ``team``; False when it was not a member. Tools are
        untouched: the agent's team tools stay shared with the team."""

    def teams_of(self, agent_id: str) -> frozenset[str]:
        """The teams ``agent_id`` belongs to (read at each check: a change applies to the next call)."""

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        """Every team that has members, with its members."""

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Active tools matching any of ``query.terms``, best first (``toolrt.domain.search.rank``).

        Scores use the statistics of the tools ``query.visible_to`` may discover, never of others.
        The search index changes in the same atomic step as the record it describes.
        """

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Call ``delete(h)`` for each of ``code_hashes`` no tool references; the hashes deleted.

        The reference check and ``delete`` are one step as far as references go: a tool that
        references ``h`` is stored either before the check (then ``delete`` is not called) or after
        ``delete(h)`` returned (so that its registration, which makes sure the artifact is present
        once its tool is stored, puts it back). A ``delete`` that raises stops the call.
        """

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        """Remove the finished execution records created before ``before`` and, with ``keep_newest``,
        every finished record beyond the newest ``keep_newest`` finished ones; how many (would be)
        removed.

        Pending and running records are kept whatever their age. ``dry_run`` only counts.
        """

    # -- fleet figures: the runtime owner's view, across every agent (see toolrt.ports.fleet) ----

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        """The finished execution records created in ``[since, until)`` (of ``tool_id`` only, when
        given: then per-minute counts are also split by version), aggregated by the store: counts by
        status and minute, error types, isolation levels, per-tool activity, distinct callers and
        wall-time percentiles. Never the records themselves."""

    def tool_census(self) -> ToolCensus:
        """How many active and inactive tools the store holds, the distinct owners of active tools,
        and active tools per visibility."""

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        """Add each count to the stored total of its minute, name and dimensions, atomically per
        count, so that every process writing to one store adds to the same totals."""

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        """The stored totals of the minutes in ``[since_minute, until_minute)``, in no particular order."""

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        """Remove the stored totals of minutes before ``before_minute``; how many (would be) removed."""

    def change_marker(self) -> object | None:
        """A cheap value that differs after any process added, changed or deleted a tool record or a
        team membership (execution records do not count), or None when the store cannot tell: a
        store no other process writes (memory), or one with no cheap marker (DynamoDB). Changes made
        through this process are announced by domain events; the marker is for the others'.
        """


class InProcessSearch:
    """:meth:`ToolRepository.search` for adapters that hold or list every candidate tool in process.

    Keeps each tool's analyzed document until its record changes (keyed by tool id and record
    version), so a search costs one BM25F pass over the visible tools, not one analysis of each.
    """

    def __init__(self, max_documents: int = 200_000) -> None:
        self._documents: dict[str, tuple[int, SearchDocument]] = {}
        self._max = max_documents

    def document(self, tool: Tool) -> SearchDocument:
        """The analyzed document of ``tool``'s current definition."""
        cached = self._documents.get(tool.tool_id)
        if cached is not None and cached[0] == tool.record_version:
            return cached[1]
        document = SearchDocument.of(tool.tool_id, tool.definition)
        if len(self._documents) >= self._max:
            self._documents.clear()
        self._documents[tool.tool_id] = (tool.record_version, document)
        return document

    def forget(self, tool_id: str) -> None:
        """Drop a deleted tool's document."""
        self._documents.pop(tool_id, None)

    def search(self, tools: Iterable[Tool], query: SearchQuery) -> list[SearchHit]:
        """Rank the active tools of ``tools`` that ``query.visible_to`` may discover."""
        visible = _discoverable(tools, query.visible_to, query.teams)
        by_id = {t.tool_id: t for t in visible}
        documents = [self.document(t) for t in visible]
        stats = CorpusStats.of(documents, query.terms)
        wanted = frozenset(query.tags)
        candidates = [d for d in documents if wanted <= frozenset(by_id[d.tool_id].definition.tags)]
        return [SearchHit(by_id[d.tool_id], s) for d, s in rank(query.terms, candidates, stats, query.limit)]


def _discoverable(tools: Iterable[Tool], visible_to: str | None, teams: frozenset[str]) -> list[Tool]:
    # The active tools ``visible_to`` may discover (every active tool for None).
    return [
        t for t in tools if t.status is ToolStatus.ACTIVE and (visible_to is None or t.can_discover(visible_to, teams))
    ]


def discoverable_keys(
    tools: Iterable[Tool], visible_to: str | None, teams: frozenset[str] = frozenset()
) -> list[tuple[str, int, tuple[str, ...]]]:
    """:meth:`ToolRepository.discoverable` computed from records held in process (for adapters)."""
    return [(t.tool_id, t.record_version, t.definition.tags) for t in _discoverable(tools, visible_to, teams)]


class TeamBook:
    """Team membership held in process (for the memory adapter and tests): team -> members."""

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}

    def add(self, team: str, agent_id: str) -> bool:
        """See :meth:`ToolRepository.add_team_member`."""
        members = self._members.setdefault(team, set())
        added = agent_id not in members
        members.add(agent_id)
        return added

    def remove(self, team: str, agent_id: str) -> bool:
        """See :meth:`ToolRepository.remove_team_member`."""
        members = self._members.get(team, set())
        if agent_id not in members:
            return False
        members.discard(agent_id)
        if not members:
            del self._members[team]
        return True

    def teams_of(self, agent_id: str) -> frozenset[str]:
        """See :meth:`ToolRepository.teams_of`."""
        return frozenset(team for team, members in self._members.items() if agent_id in members)

    def all(self) -> dict[str, frozenset[str]]:
        """See :meth:`ToolRepository.list_teams`."""
        return {team: frozenset(members) for team, members in sorted(self._members.items())}
