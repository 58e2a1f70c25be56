"""toolrt installed beside the frameworks: the mcp SDK pip resolved there (1.x today) runs toolrt serve, and doctor says so."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import version

from tests.frameworks.conftest import TOOLRT
from toolrt.adapters.mcp.sdk import sdk_support


def test_doctor_names_the_sdk_and_that_serve_runs_on_it() -> None:
    """`toolrt doctor` reports the installed mcp release and that the MCP server imports on it."""
    support = sdk_support()
    assert support.serves, support.problem
    done = subprocess.run([TOOLRT, "--json", "doctor"], capture_output=True, text=True, timeout=120)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    mcp = checks["extra: mcp"]
    assert mcp["state"] == "ok" and f"mcp {version('mcp')}" in mcp["detail"]
