"""An MCP host starting ``toolrt serve`` over stdio, as it does on every launch, with the SDK client.

The first start answers ``initialize`` once the SDK has loaded; later starts send the answer kept
from it at once (``stdio_front``). Whichever answered, the host sees the same server and the
session works the same.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

TOOLRT = Path(sys.executable).parent / "toolrt"


def _session(tmp_path: Path, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "TOOLRT_DATA_DIR": str(tmp_path / "data"), "XDG_CACHE_HOME": str(cache)}
    params = StdioServerParameters(command=str(TOOLRT), args=["--agent", "host-agent", "serve"], env=env)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with Client(params, mode="legacy") as client:
            seen["protocol"] = client.protocol_version
            seen["server"] = client.server_info.model_dump() if client.server_info else None
            seen["capabilities"] = client.server_capabilities.model_dump()
            seen["instructions"] = client.instructions
            seen["tools"] = sorted(t.name for t in (await client.list_tools()).tools)

    anyio.run(scenario)
    return seen


@pytest.mark.slow
def test_every_start_answers_the_host_the_same(tmp_path: Path) -> None:
    """A first start (nothing kept) and a later one (the kept answer sent early) give the SDK client the
    same protocol version, server, capabilities and instructions, and both sessions list the tools."""
    cache = tmp_path / "cache"
    first = _session(tmp_path, cache)
    kept = json.loads((cache / "toolrt" / "mcp-initialize.json").read_text())
    assert len(kept) == 1 and next(iter(kept.values()))["serverInfo"]["name"] == first["server"]["name"]
    later = _session(tmp_path, cache)
    assert later == first and "manage_tools" in first["tools"]


def test_a_stale_kept_answer_is_replaced_by_the_servers_own(tmp_path: Path) -> None:
    """When the kept answer no longer matches what the server says (it should not: the SDK's and
    toolrt's versions are part of its key), the server's own replaces it for the next start."""
    cache = tmp_path / "cache"
    first = _session(tmp_path, cache)
    store = cache / "toolrt" / "mcp-initialize.json"
    kept = json.loads(store.read_text())
    key = next(iter(kept))
    stale = {**kept[key], "instructions": "stale"}
    store.write_text(json.dumps({key: stale}))
    _session(tmp_path, cache)
    assert json.loads(store.read_text())[key] == kept[key]
    assert _session(tmp_path, cache) == first
