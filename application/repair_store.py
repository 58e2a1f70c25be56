"""RepairStore: find, and on request fix, what a crash or a bug left inconsistent in the stores."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

import attrs

from toolrt.domain import (
    Artifact,
    CodeHash,
    ConflictError,
    NotFoundError,
    StorageError,
    Tool,
    ToolRuntimeError,
    ToolVersion,
    ValidationReport,
    normalize_code,
)
from toolrt.logs import get_logger
from toolrt.ports import ArtifactStore, Clock, CodeReferences, SearchIndex, TempFileKeeper, ToolQuery, ToolRecords

log = get_logger(__name__)

RESTORED_POLICY = "restored"
_EVERY_TOOL = 2**62


class Problem(str, enum.Enum):
    """What kind of inconsistency a finding is about."""

    UNREADABLE_TOOLS = "unreadable_tools"
    INCONSISTENT_TOOL = "inconsistent_tool"
    MISSING_ARTIFACT = "missing_artifact"
    CORRUPT_ARTIFACT = "corrupt_artifact"
    ORPHAN_ARTIFACT = "orphan_artifact"
    SEARCH_INDEX = "search_index"


@attrs.frozen
class RepairRequest:
    """``repair=False`` only reports; ``repair=True`` also fixes what can be fixed.

    ``orphan_grace_s``: an unreferenced artifact younger than this is left alone, because a
    registration in another process may be between storing it and adding its tool.
    """

    repair: bool = False
    orphan_grace_s: float = 600.0
    #: a temp file untouched this long was left by a killed writer (a live one renames it sooner)
    temp_grace_s: float = 300.0


@attrs.frozen
class RepairFinding:
    """One inconsistency: its kind, what it is about (a tool id or a code hash) and what is wrong."""

    problem: Problem
    subject: str
    message: str
    repairable: bool

    def __str__(self) -> str:
        return f"{self.problem.value} {self.subject}: {self.message}"


@attrs.frozen
class RepairAction:
    """What repair did about one finding, and whether it worked."""

    problem: Problem
    subject: str
    action: str
    ok: bool
    message: str = ""

    def __str__(self) -> str:
        outcome = "done" if self.ok else "FAILED"
        detail = f": {self.message}" if self.message else ""
        return f"{self.action} {self.subject} ({self.problem.value}): {outcome}{detail}"


@attrs.frozen
class RepairReport:
    """Every finding of one check and, when repairing, every action taken."""

    findings: tuple[RepairFinding, ...] = ()
    actions: tuple[RepairAction, ...] = ()
    tools_checked: int = 0
    artifacts_checked: int = 0
    #: temp files a killed writer left in a file artifact store (found, or removed when repairing)
    stale_temp_files: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    @property
    def unresolved(self) -> tuple[RepairFinding, ...]:
        """Findings no successful action addressed (all of them when only reporting)."""
        fixed = {(a.problem, a.subject) for a in self.actions if a.ok}
        return tuple(f for f in self.findings if (f.problem, f.subject) not in fixed)


class RepairStore:
    """Checks that tool records and artifacts agree, and repairs them on request.

    Rules:

    - A tool record is consistent when its current version exists, its name is the current
      definition's name, every version's code hash is the hash of that version's code, and the
      code references of each hash in its history contain the tool exactly while it is
      active. An inconsistent record is repaired by saving a corrected copy (current version falls
      back to the latest, name and hashes are recomputed); saving rewrites its references.
    - Every code hash of an active tool must have a readable artifact. A missing one is restored
      from the version's definition: normalized code, language and entrypoint, with an empty
      validation report under policy ``"restored"`` so that it is validated again when next used.
    - An artifact that cannot be read or does not match its hash is corrupt: it is removed, and
      restored as above when an active tool needs it.
    - An artifact no tool references is an orphan (for example left by a registration killed
      between storing the artifact and adding its tool). It is removed once older than
      ``orphan_grace_s``; references are checked again just before removal.
    - When the tool records cannot be read at all, only the artifacts are checked and the finding
      is reported as not repairable here.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        references: CodeReferences,
        index: SearchIndex,
        artifacts: ArtifactStore,
        clock: Clock,
    ) -> None:
        self._tools = tools
        self._references = references
        self._index = index
        self._artifacts = artifacts
        self._clock = clock

    def execute(self, request: RepairRequest) -> RepairReport:
        run = _Run(self._tools, self._references, self._index, self._artifacts, self._clock, request)
        return run.execute()


class _Run:
    """The state of one check-and-repair pass."""

    def __init__(
        self,
        tools: ToolRecords,
        references: CodeReferences,
        index: SearchIndex,
        artifacts: ArtifactStore,
        clock: Clock,
        request: RepairRequest,
    ) -> None:
        self.tools = tools
        self.references = references
        self.index = index
        self.artifacts = artifacts
        self.clock = clock
        self.request = request
        self.findings: list[RepairFinding] = []
        self.actions: list[RepairAction] = []

    def _stale_temp_files(self) -> tuple[str, ...]:
        if not isinstance(self.artifacts, TempFileKeeper):
            return ()
        grace = self.request.temp_grace_s
        keeper = self.artifacts
        found = keeper.remove_stale_temp_files(grace) if self.request.repair else keeper.stale_temp_files(grace)
        return tuple(str(p) for p in found)

    def execute(self) -> RepairReport:
        tools = self._tools()
        checked_tools = [self._check_tool(t) for t in tools] if tools is not None else []
        # Every hash an active tool needs, with one version that can restore it.
        needed: dict[CodeHash, ToolVersion] = {}
        for tool in checked_tools:
            if tool.is_active:
                for version in tool.versions:
                    needed.setdefault(version.code_hash, version)
        for code_hash, version in sorted(needed.items(), key=lambda kv: kv[0]):
            self._check_needed_artifact(code_hash, version)
        stored = self._stored_hashes()
        for code_hash in stored:
            if code_hash not in needed:
                self._check_unneeded_artifact(code_hash, knows_tools=tools is not None)
        self._check_search_index()
        report = RepairReport(
            tuple(self.findings),
            tuple(self.actions),
            len(checked_tools),
            len(set(stored) | set(needed)),
            self._stale_temp_files(),
        )
        log.info(
            "store_checked",
            repair=self.request.repair,
            findings=len(report.findings),
            actions=len(report.actions),
            unresolved=len(report.unresolved),
        )
        return report

    # -- tools -----------------------------------------------------------------------------------

    def _tools(self) -> list[Tool] | None:
        try:
            return list(self.tools.list(ToolQuery(status=None, limit=_EVERY_TOOL)))
        except StorageError as exc:
            self._find(Problem.UNREADABLE_TOOLS, "repository", f"tool records cannot be read: {exc}", False)
            return None

    def _check_tool(self, tool: Tool) -> Tool:
        problems, fixed = _corrected(tool)
        for code_hash in sorted(fixed.code_hashes):
            referenced = tool.tool_id in self.references.references(code_hash)
            if referenced != tool.is_active:
                state = "active but not referencing" if tool.is_active else "inactive but still referencing"
                problems.append(f"{state} {code_hash.short}")
        if not problems:
            return tool
        message = "; ".join(problems)
        self._find(Problem.INCONSISTENT_TOOL, tool.tool_id, message, True)
        if not self.request.repair:
            return fixed
        saved = attrs.evolve(fixed, record_version=tool.record_version + 1, updated_at=self.clock.now())
        try:
            self.tools.save(saved)
        except (ConflictError, NotFoundError) as exc:
            self._act(Problem.INCONSISTENT_TOOL, tool.tool_id, "rewrite record", False, f"{exc}; run again")
            return tool
        except ToolRuntimeError as exc:
            self._act(Problem.INCONSISTENT_TOOL, tool.tool_id, "rewrite record", False, str(exc))
            return tool
        self._act(Problem.INCONSISTENT_TOOL, tool.tool_id, "rewrite record", True, message)
        return saved

    # -- artifacts -------------------------------------------------------------------------------

    def _stored_hashes(self) -> list[CodeHash]:
        try:
            return sorted(set(self.artifacts.hashes()))
        except StorageError as exc:
            self._find(Problem.CORRUPT_ARTIFACT, "artifact store", f"artifacts cannot be listed: {exc}", False)
            return []

    def _check_needed_artifact(self, code_hash: CodeHash, version: ToolVersion) -> None:
        try:
            artifact = self.artifacts.get(code_hash)
        except StorageError as exc:
            self._find(Problem.CORRUPT_ARTIFACT, str(code_hash), f"{exc}; restorable from a tool version", True)
            if self.request.repair and self._delete(Problem.CORRUPT_ARTIFACT, code_hash):
                self._restore(Problem.CORRUPT_ARTIFACT, code_hash, version)
            return
        if artifact is not None:
            return
        self._find(
            Problem.MISSING_ARTIFACT,
            str(code_hash),
            f"needed by an active tool (version {version.number} of {version.definition.name!r}) but absent",
            True,
        )
        if self.request.repair:
            self._restore(Problem.MISSING_ARTIFACT, code_hash, version)

    def _check_unneeded_artifact(self, code_hash: CodeHash, *, knows_tools: bool) -> None:
        # The references are read again: a tool added since the listing may reference it by now.
        if self.references.references(code_hash):
            return
        try:
            artifact = self.artifacts.get(code_hash)
        except StorageError as exc:
            self._find(Problem.CORRUPT_ARTIFACT, str(code_hash), f"{exc}; no tool references it", True)
            if self.request.repair:
                self._delete(Problem.CORRUPT_ARTIFACT, code_hash)
            return
        if artifact is None:
            return  # removed meanwhile
        age = self.clock.now() - artifact.created_at
        if age < timedelta(seconds=self.request.orphan_grace_s):
            self._find(
                Problem.ORPHAN_ARTIFACT,
                str(code_hash),
                f"referenced by no tool, but only {age.total_seconds():.0f} s old (a registration may be "
                f"in progress); removable after {self.request.orphan_grace_s:.0f} s",
                False,
            )
            return
        self._find(Problem.ORPHAN_ARTIFACT, str(code_hash), "referenced by no tool", knows_tools)
        if self.request.repair and knows_tools:
            if self.references.references(code_hash):
                self._act(Problem.ORPHAN_ARTIFACT, str(code_hash), "remove", False, "a tool references it now")
                return
            self._delete(Problem.ORPHAN_ARTIFACT, code_hash)

    def _restore(self, problem: Problem, code_hash: CodeHash, version: ToolVersion) -> None:
        definition = version.definition
        if definition.code_hash != code_hash:
            self._act(problem, str(code_hash), "restore", False, "no tool version holds code with this hash")
            return
        artifact = Artifact(
            code_hash=code_hash,
            language=definition.language,
            code=normalize_code(definition.code),
            entrypoint=definition.entrypoint,
            report=ValidationReport(policy_version=RESTORED_POLICY),
            created_at=self.clock.now(),
        )
        try:
            created = self.artifacts.put(artifact)
        except ToolRuntimeError as exc:
            self._act(problem, str(code_hash), "restore", False, str(exc))
            return
        note = f"from version {version.number} of {definition.name!r}"
        self._act(problem, str(code_hash), "restore", True, note if created else "restored concurrently")

    def _delete(self, problem: Problem, code_hash: CodeHash) -> bool:
        try:
            self.artifacts.delete(code_hash)
        except ToolRuntimeError as exc:
            self._act(problem, str(code_hash), "remove", False, str(exc))
            return False
        self._act(problem, str(code_hash), "remove", True)
        return True

    # -- bookkeeping -----------------------------------------------------------------------------

    def _check_search_index(self) -> None:
        # A separate search index (SQLite's FTS5) can say whether it matches the records and
        # rebuild it from them; the others search the records themselves.
        problems = getattr(self.index, "search_index_problems", None)
        rebuild = getattr(self.index, "rebuild_search_index", None)
        if not callable(problems) or not callable(rebuild):
            return
        try:
            found: list[str] = problems()
        except StorageError as exc:
            found = [f"cannot be read: {exc}"]
        if not found:
            return
        self._find(Problem.SEARCH_INDEX, "search index", "; ".join(found), True)
        if not self.request.repair:
            return
        try:
            count = rebuild()
        except StorageError as exc:
            self._act(Problem.SEARCH_INDEX, "search index", "rebuild from the tool records", False, str(exc))
        else:
            self._act(Problem.SEARCH_INDEX, "search index", f"rebuilt from the tool records ({count} tools)", True)

    def _find(self, problem: Problem, subject: str, message: str, repairable: bool) -> None:
        self.findings.append(RepairFinding(problem, subject, message, repairable))
        log.warning("store_inconsistent", problem=problem.value, subject=subject, detail=message)

    def _act(self, problem: Problem, subject: str, action: str, ok: bool, message: str = "") -> None:
        self.actions.append(RepairAction(problem, subject, action, ok, message))
        event = "store_repaired" if ok else "store_repair_failed"
        log.info(event, problem=problem.value, subject=subject, action=action)


def _corrected(tool: Tool) -> tuple[list[str], Tool]:
    """The problems of ``tool``'s own fields, and a copy with them corrected."""
    problems: list[str] = []
    if not tool.versions:
        return ["has no versions at all"], tool
    versions = []
    for version in tool.versions:
        actual = version.definition.code_hash
        if actual != version.code_hash:
            problems.append(
                f"version {version.number} records hash {version.code_hash.short}, its code hashes to {actual.short}"
            )
            version = attrs.evolve(version, code_hash=actual)
        versions.append(version)
    current = tool.current_version
    numbers = {v.number for v in versions}
    if current not in numbers:
        current = max(numbers)
        problems.append(f"current version {tool.current_version} does not exist; latest is {current}")
    # Passed as a mapping: the attrs plugin mistypes the ``versions`` converter.
    changes: dict[str, Any] = {"versions": tuple(versions), "current_version": current}
    fixed = attrs.evolve(tool, **changes)
    if fixed.name != fixed.definition.name:
        problems.append(f"name {tool.name!r} differs from the current definition's {fixed.definition.name!r}")
        fixed = attrs.evolve(fixed, name=fixed.definition.name)
    return problems, fixed
