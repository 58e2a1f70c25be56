"""`toolrt doctor` reports a store damaged by a killed process, and `--repair` makes it clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from toolrt.adapters.cli.main import build_app

# A registration's first step (storing the artifact), then the process dies before the record.
KILLED_MID_REGISTRATION = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from toolrt.adapters.local.file_artifacts import FileArtifactStore
from toolrt.domain import Artifact, CodeHash, Language, ValidationReport
code = "def handler():\\n    return 'orphan'"
store = FileArtifactStore(Path(sys.argv[1]) / "artifacts")
store.put(Artifact(CodeHash.of("python", code), Language.PYTHON, code, "handler", ValidationReport(), datetime.now(UTC)))
os.kill(os.getpid(), signal.SIGKILL)
"""


def doctor(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(build_app(), ["--json", "--data-dir", str(data_dir), "doctor", *args])
    out = result.stdout
    return result.exit_code, json.loads(out[out.index("{") :])


def test_doctor_reports_and_repairs_a_killed_registration(tmp_path: Path) -> None:
    """SIGKILL between artifact and record leaves an orphan: reported, repaired, then clean."""
    pytest.importorskip("toolrt.adapters.local.sandbox")
    data = tmp_path / "data"
    code, first = doctor(data)
    assert code == 0, first
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_REGISTRATION, str(data)], capture_output=True, timeout=60)
    assert killed.returncode == -9
    _, damaged = doctor(data, "--grace", "0")
    store = next(c for c in damaged["checks"] if c["name"] == "store")
    assert store["state"] == "warn" and "orphan" in store["detail"]
    _, repaired = doctor(data, "--repair", "--grace", "0")
    assert any("orphan" in a for a in repaired["repair"]["actions"])
    _, clean = doctor(data)
    assert next(c for c in clean["checks"] if c["name"] == "store")["state"] == "ok"
