"""The tool gateway port: where agents discover published tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from toolrt.domain import Tool


@attrs.frozen
class GatewayHealth:
    """Whether the gateway is usable, and why not."""

    ok: bool
    detail: str = ""


@runtime_checkable
class ToolGateway(Protocol):
    """Publishes tools to agents (MCP server, AgentCore Gateway, in-process registry).

    Rules (``toolrt.contracts.gateway``): ``register`` returns a reference that ``published`` lists
    until ``deregister``; ``update`` of an unpublished tool raises ``NotFoundError``; ``deregister``
    of an unpublished tool is a no-op (cleanup must be repeatable).
    """

    def register(self, tool: Tool) -> str:
        """Publish ``tool``; returns the gateway's reference for it."""

    def update(self, tool: Tool) -> None:
        """Publish the new metadata (name, description, schema) of a published tool."""

    def deregister(self, tool: Tool) -> None:
        """Withdraw ``tool``."""

    def published(self) -> Sequence[str]:
        """References of every published tool."""

    def health(self) -> GatewayHealth:
        """Whether the gateway can be used now."""
