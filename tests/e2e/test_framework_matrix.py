"""The framework matrix (tests/frameworks) passes in the frameworks' own virtualenv, with the mcp SDK pip resolves there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-frameworks" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.bwrap
@pytest.mark.timeout(900)
def test_every_framework_drives_toolrt_over_stdio_and_http() -> None:
    """smolagents, the OpenAI Agents SDK, LangChain's MCP adapters and pydantic-ai each list, call, get
    toolrt's errors, values without printed output, and tools registered mid-session, over both transports."""
    if not PYTHON.exists():
        pytest.fail(f"the frameworks' virtualenv is missing: run `make frameworks-venv` in {ROOT} (make test does)")
    done = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-c", "tests/frameworks/pytest.ini", "tests/frameworks", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    summary = done.stdout.strip().splitlines()[-1:]
    assert done.returncode == 0, f"framework matrix failed ({summary}):\n{done.stdout[-12000:]}\n{done.stderr[-3000:]}"
