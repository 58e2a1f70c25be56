"""An in-process ToolGateway: a registry of published tools that local consumers can read."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from toolrt.domain import NotFoundError, Tool
from toolrt.ports import GatewayHealth


class InProcessGateway:
    """Publishes tools into a dict keyed by tool id (who hears of changes subscribes to the
    runtime's domain events, not to the gateway)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published: dict[str, Tool] = {}

    def register(self, tool: Tool) -> str:
        with self._lock:
            self._published[tool.tool_id] = tool
        return tool.tool_id

    def update(self, tool: Tool) -> None:
        with self._lock:
            if tool.tool_id not in self._published:
                raise NotFoundError("published tool", tool.tool_id)
            self._published[tool.tool_id] = tool

    def deregister(self, tool: Tool) -> None:
        with self._lock:
            self._published.pop(tool.tool_id, None)

    def published(self) -> Sequence[str]:
        with self._lock:
            return list(self._published)

    def tools(self) -> Sequence[Tool]:
        """The published tools themselves, as last registered or updated."""
        with self._lock:
            return list(self._published.values())

    def health(self) -> GatewayHealth:
        return GatewayHealth(True, f"{len(self._published)} tools published in process")
