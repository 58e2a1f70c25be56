"""CollectGarbage: remove what no tool needs any more (the runtime owner's action, never an agent's)."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from typing import Any

import attrs

from toolrt.domain import (
    ArtifactDeleted,
    CodeHash,
    ConflictError,
    NotFoundError,
    ToolRuntimeError,
    ToolStatus,
    ValidationError,
)
from toolrt.domain.figures import minute_of
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    Clock,
    CodeReferences,
    Counters,
    EventPublisher,
    ExecutionLog,
    MetricsSink,
    ToolQuery,
    ToolRecords,
)

log = get_logger(__name__)

_EVERY_TOOL = 2**62
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: Any, what: str = "older_than") -> timedelta:
    """A positive duration from a ``timedelta``, a number of seconds, or text such as ``"30d"``,
    ``"12h"``, ``"1d12h"`` or ``"90s"`` (units s, m, h, d, w); ``ValidationError`` otherwise."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 10**11:
            raise ValidationError(f"{what} must be a finite number of seconds, got {value!r}")
        duration = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValidationError(
                f"{what} {value!r} is not a duration: write a number and a unit (s, m, h, d, w), e.g. 30d or 12h"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
        if seconds > 10**11:
            raise ValidationError(f"{what} {value!r} is too long")
        duration = timedelta(seconds=seconds)
    else:
        raise ValidationError(f"{what} must be a duration such as '30d', got {type(value).__name__}")
    if duration <= timedelta(0):
        raise ValidationError(f"{what} must be positive, got {value!r}")
    return duration


def _to_duration(value: Any) -> timedelta:
    return parse_duration(value)


def _check_keep(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{attribute.name} must be an integer of at least 1, got {value!r}")


def _check_keep_executions(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValidationError(f"keep_executions must be a positive integer (or None for no limit), got {value!r}")


def _check_grace(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{attribute.name} must be a non-negative number of seconds, got {value!r}")


@attrs.frozen
class GarbageCollectionPolicy:
    """What garbage collection keeps unless a call says otherwise (``Settings.gc_policy()``).

    ``execution_retention``: finished execution records older than this go. ``keep_versions``: an
    inactive tool keeps its current version and its newest others up to this many in all.
    ``grace_s``: an unreferenced artifact younger than this stays (a registration may be about to
    reference it). ``keep_executions``: at most this many finished execution records stay, the
    newest (None: no limit but age).
    """

    execution_retention: timedelta = attrs.field(default=timedelta(days=30), converter=_to_duration)
    keep_versions: int = attrs.field(default=5, validator=_check_keep)
    grace_s: float = attrs.field(default=600.0, validator=_check_grace)
    keep_executions: int | None = attrs.field(default=None, validator=_check_keep_executions)


@attrs.frozen
class CollectGarbageRequest:
    """One collection: ``dry_run`` (the default) only reports what would go."""

    older_than: timedelta = attrs.field(default=timedelta(days=30), converter=_to_duration)
    keep_versions: int = attrs.field(default=5, validator=_check_keep)
    grace_s: float = attrs.field(default=600.0, validator=_check_grace)
    dry_run: bool = attrs.field(default=True)
    keep_executions: int | None = attrs.field(default=None, validator=_check_keep_executions)

    @dry_run.validator
    def _check_dry_run(self, attribute: attrs.Attribute[bool], value: bool) -> None:
        if not isinstance(value, bool):
            raise ValidationError(f"dry_run must be true or false, got {value!r}")


@attrs.frozen
class PrunedTool:
    """The versions garbage collection drops (or would drop) from one inactive tool."""

    tool_id: str
    versions: tuple[int, ...]


@attrs.frozen
class GarbageCollection:
    """What one collection removed, or with ``dry_run`` would remove.

    ``artifacts``: hashes of artifacts no tool references; ``artifact_bytes``: the bytes of their
    code (source and runnable form). ``young_artifacts``: unreferenced ones kept because they are
    younger than the grace period. ``executions``: finished execution records created before
    ``executions_before`` (or beyond the newest ``keep_executions``). ``counters``: stored
    counters' per-minute totals older than ``executions_before``. ``pruned``: inactive tools and the versions dropped from each.
    ``problems``: steps that failed (the rest still ran).
    """

    dry_run: bool
    artifacts: tuple[CodeHash, ...] = ()
    artifact_bytes: int = 0
    young_artifacts: int = 0
    executions: int = 0
    executions_before: datetime | None = None
    counters: int = 0
    pruned: tuple[PrunedTool, ...] = ()
    problems: tuple[str, ...] = ()
    elapsed_ms: float = 0.0

    @property
    def versions(self) -> int:
        """How many versions in all were (or would be) dropped."""
        return sum(len(p.versions) for p in self.pruned)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the CLI's ``--json``)."""
        return {
            "dry_run": self.dry_run,
            "artifacts": {
                "count": len(self.artifacts),
                "bytes": self.artifact_bytes,
                "young_kept": self.young_artifacts,
                "hashes": [str(h) for h in self.artifacts],
            },
            "executions": {
                "count": self.executions,
                "before": self.executions_before.isoformat() if self.executions_before else None,
            },
            "counters": self.counters,
            "versions": {
                "count": self.versions,
                "tools": [{"tool_id": p.tool_id, "versions": list(p.versions)} for p in self.pruned],
            },
            "problems": list(self.problems),
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


class CollectGarbage:
    """Remove artifacts no tool references, old execution records and old versions of inactive tools.

    Business rules:
    - it is the runtime owner's action: nothing an agent reaches (the MCP server) offers it, and it
      works across every agent's tools;
    - an artifact goes only when no tool references it (an active tool references the code of every
      version in its history, whoever owns it), it is older than ``grace_s``, and the code
      references find it still unreferenced in the same step that deletes it (``delete_unreferenced``): a
      registration referencing it meanwhile is either seen, or puts the artifact back itself;
    - only finished execution records older than ``older_than`` (or beyond the newest
      ``keep_executions``) go, never pending or running ones; stored counters older than
      ``older_than`` go with them;
    - an inactive tool keeps its current version and the newest others, ``keep_versions`` in all;
      active tools keep every version (each one's code stays referenced);
    - ``dry_run`` changes nothing and reports the same figures; a failing step is reported in
      ``problems`` and the others still run.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        references: CodeReferences,
        executions: ExecutionLog,
        counters: Counters,
        artifacts: ArtifactStore,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
    ) -> None:
        self._tools = tools
        self._references = references
        self._executions = executions
        self._counters = counters
        self._artifacts = artifacts
        self._clock = clock
        self._metrics = metrics
        self._events = events

    def execute(self, request: CollectGarbageRequest) -> GarbageCollection:
        started = time.perf_counter()
        now = self._clock.now()
        problems: list[str] = []
        before = now - request.older_than
        executions = counters = 0
        try:
            executions = self._executions.purge_executions(
                before, dry_run=request.dry_run, keep_newest=request.keep_executions
            )
        except ToolRuntimeError as exc:
            problems.append(f"execution records: {exc}")
        try:
            # Stored counters (fleet metrics) follow the execution records' retention.
            counters = self._counters.purge_counts(minute_of(before), dry_run=request.dry_run)
        except ToolRuntimeError as exc:
            problems.append(f"counters: {exc}")
        pruned = self._prune_versions(request, now, problems)
        removed, size, young = self._collect_artifacts(request, now, problems)
        result = GarbageCollection(
            dry_run=request.dry_run,
            artifacts=removed,
            artifact_bytes=size,
            young_artifacts=young,
            executions=executions,
            executions_before=before,
            counters=counters,
            pruned=pruned,
            problems=tuple(problems),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
        if not request.dry_run:
            self._metrics.increment("gc_artifacts", len(removed))
            self._metrics.increment("gc_executions", executions)
            self._metrics.increment("gc_versions", result.versions)
        log.info(
            "garbage collected" if not request.dry_run else "garbage found",
            artifacts=len(removed),
            artifact_bytes=size,
            executions=executions,
            versions=result.versions,
            problems=len(problems),
            ms=round(result.elapsed_ms, 1),
        )
        return result

    def _prune_versions(
        self, request: CollectGarbageRequest, now: datetime, problems: list[str]
    ) -> tuple[PrunedTool, ...]:
        try:
            inactive = self._tools.list(ToolQuery(status=ToolStatus.INACTIVE, limit=_EVERY_TOOL))
        except ToolRuntimeError as exc:
            problems.append(f"tool records: {exc}")
            return ()
        pruned: list[PrunedTool] = []
        for tool in inactive:
            smaller = tool.pruned(request.keep_versions, now)
            if smaller is tool:
                continue
            kept = {v.number for v in smaller.versions}
            dropped = tuple(v.number for v in tool.versions if v.number not in kept)
            if not request.dry_run:
                try:
                    self._tools.save(smaller)
                except (ConflictError, NotFoundError):
                    continue  # changed or purged meanwhile: the next collection sees it again
                except ToolRuntimeError as exc:
                    problems.append(f"tool {tool.tool_id}: {exc}")
                    continue
            pruned.append(PrunedTool(tool.tool_id, dropped))
        return tuple(pruned)

    def _collect_artifacts(
        self, request: CollectGarbageRequest, now: datetime, problems: list[str]
    ) -> tuple[tuple[CodeHash, ...], int, int]:
        try:
            stored = sorted(set(self._artifacts.hashes()))
        except ToolRuntimeError as exc:
            problems.append(f"artifact listing: {exc}")
            return (), 0, 0
        grace = timedelta(seconds=request.grace_s)
        eligible: dict[CodeHash, int] = {}
        young = 0
        for code_hash in stored:
            try:
                if self._references.references(code_hash):
                    continue
                artifact = self._artifacts.get(code_hash)
            except ToolRuntimeError as exc:
                # A corrupt artifact is `toolrt doctor --repair`'s business, not garbage.
                problems.append(f"artifact {code_hash.short}: {exc}")
                continue
            if artifact is None:
                continue
            if now - artifact.created_at < grace:
                young += 1
                continue
            eligible[code_hash] = len(artifact.code.encode()) + len((artifact.runnable or "").encode())
        if request.dry_run:
            return tuple(eligible), sum(eligible.values()), young
        try:
            deleted = self._references.delete_unreferenced(list(eligible), self._artifacts.delete)
        except ToolRuntimeError as exc:
            problems.append(f"artifact removal: {exc}")
            return (), 0, young
        for code_hash in deleted:
            self._events.publish(ArtifactDeleted(self._clock.now(), str(code_hash)))
        return tuple(deleted), sum(eligible[h] for h in deleted), young
