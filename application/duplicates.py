"""Near-duplicates at registration: visible tools that already do what a new definition does."""

from __future__ import annotations

import enum
import threading

import attrs

from toolrt.application._artifacts import visible_users
from toolrt.application.search_tools import SearchTools
from toolrt.domain import Tool, ToolDefinition, ValidationError
from toolrt.domain.structure import structural_hash
from toolrt.ports import CodeReferences, Teams, ToolRecords

#: How many of the tools closest by name and description are compared structurally.
NEIGHBOURS = 8
#: The cosine similarity past which an embedder's verdict counts as "does the same thing".
SEMANTIC_THRESHOLD = 0.9
#: ``update`` is about the agent's own tool of the same name rather than look-alikes: the same
#: definition returns that tool, a changed one becomes its new version (re-running a script).
ON_DUPLICATE = ("create", "warn", "reuse", "error", "update")
#: At most this many visible tools with the same code are reported as exact matches.
MAX_EXACT = 5


class DuplicateKind(str, enum.Enum):
    """How a visible tool resembles a new definition, strongest first."""

    EXACT = "exact"  # the same code (same code hash)
    STRUCTURAL = "structural"  # the same code up to local names, layout, comments and docstrings
    SEMANTIC = "semantic"  # an embedder says the descriptions mean the same (only with an embedder)


@attrs.frozen
class SimilarTool:
    """A visible tool like the one being registered: ``score`` is 1.0 for exact and structural
    matches and the cosine similarity for semantic ones."""

    kind: DuplicateKind
    score: float
    tool_id: str
    name: str
    owner: str

    def describe(self) -> str:
        """One line for a warning."""
        return f"{self.name} ({self.tool_id}, owner {self.owner}): {self.kind.value} match"


class DuplicateFinder:
    """Find the visible tools a new definition duplicates.

    Business rules:

    - Only tools ``agent_id`` may discover are compared: another agent's private tool is never
      reported, reused or refused against.
    - Exact matches come from the code-hash index. Structural matches are looked for among the
      :data:`NEIGHBOURS` visible tools closest by name and description (the search index), so a
      copy renamed *and* redescribed beyond recognition may go unnoticed; the cost stays bounded.
    - Languages never mix: a JavaScript tool is not a duplicate of a Python one.
    """

    def __init__(self, *, tools: ToolRecords, references: CodeReferences, teams: Teams, search: SearchTools) -> None:
        self._tools = tools
        self._references = references
        self._teams = teams
        self._search = search
        self._structures: dict[tuple[str, int], str | None] = {}
        self._lock = threading.Lock()

    def _structure(self, tool: Tool) -> str | None:
        key = (tool.tool_id, tool.record_version)
        with self._lock:
            if key in self._structures:
                return self._structures[key]
        found = structural_hash(tool.definition.language.value, tool.definition.code)
        with self._lock:
            if len(self._structures) > 100_000:
                self._structures.clear()
            self._structures[key] = found
        return found

    def find(self, agent_id: str, definition: ToolDefinition) -> list[SimilarTool]:
        found: dict[str, SimilarTool] = {}
        # Code shared by thousands of tools (a template's) must not cost thousands of reads: the
        # first few visible users are enough to say "this exists", and to reuse one.
        # Tools the agent cannot see are filtered out before any cap (see visible_users).
        users = visible_users(
            definition.code_hash,
            agent_id,
            tools=self._tools,
            references=self._references,
            teams=self._teams,
            limit=2 * MAX_EXACT,
        )
        for tool in users:
            if tool.code_hash == definition.code_hash:
                found[tool.tool_id] = SimilarTool(DuplicateKind.EXACT, 1.0, tool.tool_id, tool.name, tool.owner)
                if len(found) == MAX_EXACT:
                    break
        structure = structural_hash(definition.language.value, definition.code)
        text = f"{definition.name.replace('_', ' ')} {definition.description}"[:1000]
        try:
            neighbours = self._search.execute(agent_id, text, limit=NEIGHBOURS, counted=False)
        except ValidationError:
            neighbours = []
        for result in neighbours:
            tool = result.tool
            if tool.tool_id in found or tool.definition.language is not definition.language:
                continue
            if structure is not None and self._structure(tool) == structure:
                found[tool.tool_id] = SimilarTool(DuplicateKind.STRUCTURAL, 1.0, tool.tool_id, tool.name, tool.owner)
            elif result.semantic_score is not None and result.semantic_score >= SEMANTIC_THRESHOLD:
                found[tool.tool_id] = SimilarTool(
                    DuplicateKind.SEMANTIC, round(result.semantic_score, 4), tool.tool_id, tool.name, tool.owner
                )
        order = list(DuplicateKind)
        return sorted(found.values(), key=lambda s: (order.index(s.kind), -s.score, s.tool_id))
