"""Read-side use cases: a tool's status, listings and version history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from toolrt.application._artifacts import visible_users
from toolrt.application.access import may_see
from toolrt.domain import CodeHash, NotFoundError, Tool, ToolStatus, ToolVersion, Visibility
from toolrt.ports import ArtifactStore, CodeReferences, Teams, ToolQuery, ToolRecords


@attrs.frozen
class ToolStatusReport:
    """What a caller needs to know about one tool now."""

    tool_id: str
    name: str
    owner: str
    status: ToolStatus
    visibility: Visibility
    current_version: int
    latest_version: int
    code_hash: CodeHash
    published: bool
    gateway_ref: str | None
    artifact_stored: bool
    shared_by: int
    updated_at: datetime
    team: str | None = None
    # JavaScript/TypeScript: the engine chosen at registration ("quickjs" or "node"; None: Python, or
    # an artifact stored before engines were chosen, which runs on Node).
    js_engine: str | None = None


class GetToolStatus:
    """Report a tool's status.

    Business rules: any caller may ask about a tool it can discover or execute; others get
    NotFoundError, so that private tools do not reveal their existence.
    """

    def __init__(
        self, *, tools: ToolRecords, references: CodeReferences, teams: Teams, artifacts: ArtifactStore
    ) -> None:
        self._tools = tools
        self._references = references
        self._teams = teams
        self._artifacts = artifacts

    def execute(self, tool_id: str, agent_id: str | None = None) -> ToolStatusReport:
        tool = self._tools.get(tool_id)
        if agent_id is not None and not may_see(self._teams, tool, agent_id):
            raise NotFoundError("tool", tool_id)
        return ToolStatusReport(
            tool_id=tool.tool_id,
            name=tool.name,
            owner=tool.owner,
            status=tool.status,
            visibility=tool.visibility,
            current_version=tool.current_version,
            latest_version=tool.latest_version,
            code_hash=tool.code_hash,
            published=tool.gateway_ref is not None,
            gateway_ref=tool.gateway_ref,
            artifact_stored=self._stored(tool, agent_id),
            shared_by=self._shared_by(tool, agent_id),
            updated_at=tool.updated_at,
            team=tool.team,
            js_engine=self._engine(tool),
        )

    def _engine(self, tool: Tool) -> str | None:
        artifact = self._artifacts.get(tool.code_hash)
        return artifact.engine if artifact is not None else None

    def _shared_by(self, tool: Tool, agent_id: str | None) -> int:
        # Counting tools the asker cannot see would tell it that someone holds this exact code.
        if agent_id is None:
            return len(self._references.references(tool.code_hash))
        return len(self._visible_users(tool.code_hash, agent_id))

    def _stored(self, tool: Tool, agent_id: str | None) -> bool:
        # An inactive tool's code kept only for tools the asker cannot see is reported as gone.
        stored = self._artifacts.get(tool.code_hash) is not None
        if agent_id is None or not stored or tool.is_active:
            return stored
        return bool(self._visible_users(tool.code_hash, agent_id, limit=1))

    def _visible_users(self, code_hash: CodeHash, agent_id: str, limit: int | None = None) -> list[Tool]:
        return visible_users(
            code_hash, agent_id, tools=self._tools, references=self._references, teams=self._teams, limit=limit
        )


class ListTools:
    """List or discover tools.

    Business rules: ``visible_to`` narrows to what that agent may discover (its own tools, public
    ones, and its teams' tools: the caller reads ``teams`` from the store); without it the listing
    is the runtime owner's unrestricted view.
    """

    def __init__(self, *, tools: ToolRecords) -> None:
        self._tools = tools

    def execute(self, query: ToolQuery) -> Sequence[Tool]:
        return self._tools.list(query)


class ListVersions:
    """A tool's version history, oldest first. Same visibility rule as GetToolStatus."""

    def __init__(self, *, tools: ToolRecords, teams: Teams) -> None:
        self._tools = tools
        self._teams = teams

    def execute(self, tool_id: str, agent_id: str | None = None) -> Sequence[ToolVersion]:
        tool = self._tools.get(tool_id)
        if agent_id is not None and not may_see(self._teams, tool, agent_id):
            raise NotFoundError("tool", tool_id)
        return sorted(tool.versions, key=lambda v: v.number)
