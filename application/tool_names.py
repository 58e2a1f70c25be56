"""The names an agent's tools are exported under to model APIs and MCP clients (the wire formats are
``toolrt.adapters.wire_formats``).

Names. Model APIs accept function names of at most 64 characters from ``[A-Za-z0-9_-]``, and
frameworks (smolagents, LangChain, pydantic-ai) take identifiers: every exported name is a letter,
then letters, digits and ``_`` (a tool's ``-`` is shown as ``_``). A tool is exported under its own
name; when another visible tool has the same name, the agent's own keeps it and the others become
``<qualifier>__<name>``, the qualifier derived from the owner's id alone
(``toolrt.domain.naming``: different owners never share one, and no tool's own name holds ``__``,
so no agent can register a name another agent's tool is exported as), cut to 64 characters with a
short hash of the tool id when too long. The mapping depends only on the tools the agent can see,
so :func:`exported_names` gives the same names when a call comes back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from toolrt.domain import Tool, identifier, may_show_plain, qualified_name

__all__ = ["MAX_NAME", "exported_names"]

# Model APIs take function names of at most this many characters.
MAX_NAME = 64


def _fit(name: str, tool_id: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    suffix = "_" + hashlib.sha256(tool_id.encode()).hexdigest()[:8]
    return name[: MAX_NAME - len(suffix)] + suffix


def exported_names(tools: Sequence[Tool], agent_id: str, *, reserved: Collection[str] = ()) -> dict[str, Tool]:
    """API-safe, unique names for ``tools`` as ``agent_id`` sees them (deterministic).

    A name in ``reserved`` (the MCP server's own tools) is never given to a tool unqualified, nor is
    a name holding ``__`` (a tool stored before that was refused). Qualified names of different
    owners never clash; two of one owner's tools that would are told apart by their ids."""
    by_name: dict[str, list[Tool]] = {}
    for tool in sorted(tools, key=lambda t: t.tool_id):
        by_name.setdefault(identifier(tool.name), []).append(tool)
    names: dict[str, Tool] = {}
    for name, group in sorted(by_name.items()):
        plain = None
        if name not in reserved and may_show_plain(name):
            own = [t for t in group if t.owner == agent_id]
            plain = own[0] if own else (group[0] if len(group) == 1 else None)
        for tool in group:
            exported = name if tool is plain else _fit(qualified_name(tool.owner, name), tool.tool_id)
            if exported in names:  # two of one owner's tools: the tool id decides
                exported = _fit(f"{exported}_{identifier(tool.tool_id)}", tool.tool_id)
            names[exported] = tool
    return names
