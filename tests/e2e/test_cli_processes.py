"""The local profile across processes: what one `toolrt` command stores, the next one finds and changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def toolrt(data: Path, *args: str) -> Any:
    exe = shutil.which("toolrt", path=str(Path(sys.executable).parent))
    assert exe, "the toolrt console script is installed with the package"
    done = subprocess.run(
        [exe, "--json", "--data-dir", str(data), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_register_update_invoke_rollback_in_separate_processes(tmp_path: Path) -> None:
    """Each command is a new process on the same data dir: updates and rollbacks of earlier tools work."""
    data = tmp_path / "data"
    toolrt(data, "register", "examples/python/word_stats.py")
    updated = toolrt(data, "update", "examples/python/word_stats_v2.py", "--name", "word_stats")
    assert updated["version"] == 2
    run = toolrt(data, "invoke", "word_stats", "text=one two. three")
    assert run["status"] == "succeeded" and run["output"]["words"] == 3
    toolrt(data, "rollback", "word_stats", "1")
    versions = toolrt(data, "versions", "word_stats")
    assert [(v["version"], v["current"]) for v in versions["versions"]] == [(1, True), (2, False)]
