"""toolrt logs like a library: silent by default, standard logging under "toolrt" once an application asks."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, sys
    import toolrt
    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s|%(levelname)s|%(message)s")
    code = "def handler(a: int) -> int:\\n    return a + 1\\n"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with toolrt.connect("memory", security_checks=False) as rt:
        reg = rt.register_tool("agent-1", {"name": "inc", "description": "Add one.", "language": "python",
                                           "code": code, "input_schema": schema})
        print(rt.execute_tool("agent-1", reg.tool_id, {"a": 1}).output)
""")


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)


def test_an_embedding_program_sees_nothing_it_did_not_print() -> None:
    """With logging unconfigured, register and execute write nothing to stdout or stderr, not even warnings."""
    done = _run("silent")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2\n"
    assert done.stderr == ""


def test_configured_logging_receives_toolrt_events_as_key_values() -> None:
    """Once the application configures logging, toolrt's events arrive under toolrt.* with their fields."""
    done = _run("configured")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2\n"
    lines = [line.split("|", 2) for line in done.stderr.splitlines() if line.startswith("toolrt.")]
    registered = [msg for name, level, msg in lines if msg.startswith("tool registered")]
    executed = [msg for name, level, msg in lines if msg.startswith("tool executed")]
    assert registered and "agent_id=agent-1" in registered[0] and "tool_name=inc" in registered[0]
    assert executed and "status=succeeded" in executed[0]
    assert all(name.startswith("toolrt.") for name, _, _ in lines)
