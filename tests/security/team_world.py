"""The world the team tests attack: Alice and Bob in team red, Mallory in blue, on either store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes import memory_runtime
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.application import ToolRuntime

STORES = ["memory", "sqlite"]

RADAR = {
    "name": "red_radar",
    "description": "Weather radar images for the red team's stations.",
    "language": "python",
    "code": "def handler(station: str) -> str:\n    return 'radar of ' + station\n",
}


def team_runtime(store: str, tmp_path: Path) -> ToolRuntime:
    """A runtime on ``store`` (memory, or a SQLite file under ``tmp_path``) with the teams set up."""
    overrides: dict[str, Any] = (
        {} if store == "memory" else {"repository": SqliteToolRepository(tmp_path / "tools.sqlite")}
    )
    runtime = memory_runtime(**overrides)
    runtime.add_team_member("red", "alice")
    runtime.add_team_member("red", "bob")
    runtime.add_team_member("blue", "mallory")
    return runtime
