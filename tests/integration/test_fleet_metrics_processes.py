"""Fleet metrics add up across processes: two real processes on one local store, one reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import toolrt

WORKLOAD = textwrap.dedent(
    """
    import sys
    import toolrt
    from toolrt.domain import ToolRuntimeError

    agent, data_dir = sys.argv[1], sys.argv[2]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    code = "def handler(n: int) -> int:\\n    if n < 0:\\n        raise ValueError(n)\\n    return n * 2\\n"
    with toolrt.connect("local", data_dir=data_dir, sandbox="inprocess") as rt:
        reg = rt.register_tool(agent, {"name": "double", "description": "Double.", "language": "python",
                                       "code": code, "input_schema": schema})
        rt.register_tool(agent, {"name": "double_again", "description": "Double.", "language": "python",
                                 "code": code, "input_schema": schema})
        for n in range(5):
            rt.execute_tool(agent, reg.tool_id, {"n": n})
        rt.execute_tool(agent, reg.tool_id, {"n": -1})
        try:
            rt.execute_tool(agent, reg.tool_id, {"n": "x"})
        except ToolRuntimeError:
            pass
        try:
            rt.register_tool(agent, {"name": "broken", "description": "x", "language": "python",
                                     "code": "def handler(:", "input_schema": schema})
        except ToolRuntimeError:
            pass
    """
)


def test_counts_of_two_processes_on_one_local_store_add_up(tmp_path: Path) -> None:
    """Registrations, cache hits and refusals (stored counters) and executions (records) made by two
    separate processes are all in the figures a third runtime reads from the same store."""
    data_dir = tmp_path / "store"
    toolrt.connect("local", data_dir=str(data_dir), sandbox="inprocess").close()  # the schema, made once
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKLOAD, agent, str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for agent in ("agent-a", "agent-b")
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
    with toolrt.connect("local", data_dir=str(data_dir), sandbox="inprocess") as rt:
        fleet = rt.fleet_metrics("1h")
    assert (fleet.tools, fleet.agents, fleet.callers) == (4, 2, 2)
    assert (fleet.executions, fleet.succeeded, fleet.failed) == (12, 10, 2)
    assert dict(fleet.error_types) == {"ValueError": 2}
    assert (fleet.registrations, fleet.registrations_failed) == (4, 2)
    # Each process: the first "double" is a miss (its agent sees no tool with that code, the other
    # agent's is private), "double_again" a hit, "broken" a miss.
    assert (fleet.cache_hits, fleet.cache_misses) == (2, 4)
    assert rt.metrics()["counters"] == {}  # nothing of it was counted in this process
    refused = {(r.operation, r.error_type): r.count for r in fleet.refusals}
    assert refused[("execute", "ValidationError")] == 2
    assert refused[("register", "ValidationError")] == 2
