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


def _in_terminal(data: Path, *args: str) -> tuple[int, str]:
    """Run ``toolrt --data-dir DATA ARGS`` with stdout and stderr on a pseudo-terminal; its exit
    code and the text it wrote there, without terminal escapes."""
    import os
    import pty

    exe = shutil.which("toolrt", path=str(Path(sys.executable).parent))
    assert exe
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen([exe, "--data-dir", str(data), *args], cwd=ROOT, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))  # colours, cursor moves
    return proc.wait(timeout=120), text


def test_invoke_in_a_terminal_shows_a_spinner_with_the_elapsed_time_and_the_streamed_output(tmp_path: Path) -> None:
    """On a terminal `toolrt invoke` shows the tool's name with the seconds elapsed while it runs,
    the printed lines as they come with --stream, then the output; --no-progress shows no spinner."""
    data = tmp_path / "data"
    tool = tmp_path / "stepper.py"
    tool.write_text(
        '"""Print steps while working."""\n'
        "import time\n\n\n"
        "def handler(steps: int) -> int:\n"
        '    """Print each step.\n\n    Args:\n        steps: how many\n    """\n'
        "    for i in range(steps):\n"
        "        print(f'step {i} done', flush=True)\n"
        "        time.sleep(0.4)\n"
        "    return steps\n",
        encoding="utf-8",
    )
    toolrt(data, "register", str(tool))
    code, screen = _in_terminal(data, "invoke", "stepper", "steps=4", "--stream")
    assert code == 0, screen
    assert "running stepper: " in screen and " s" in screen
    seconds = [float(part.split(" s")[0]) for part in screen.split("running stepper: ")[1:] if part[:1].isdigit()]
    assert seconds and max(seconds) >= 1.0 and seconds == sorted(seconds)
    assert all(f"step {i} done" in screen for i in range(4))
    assert screen.rstrip().endswith("4")
    code, quiet = _in_terminal(data, "invoke", "stepper", "steps=1", "--no-progress")
    assert code == 0 and "running stepper" not in quiet and quiet.strip().endswith("1")
