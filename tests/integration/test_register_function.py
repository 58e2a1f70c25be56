"""A Python function of the embedding program becomes a sandboxed tool, from its own source."""

from __future__ import annotations

import json
import math
import statistics as stats
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt
from toolrt.application import ToolRuntime

SCALE = 3


def hypotenuse(a: float, b: float = 4.0) -> float:
    """Length of the hypotenuse of a right triangle.

    Args:
        a: One leg.
        b: The other leg.
    """
    return math.sqrt(a * a + b * b)


def spread(values: list[float]) -> float:
    """Population standard deviation of the values."""
    return stats.pstdev(values)


def scaled(x: int) -> int:
    """Multiply by the program's scale."""
    return x * SCALE


def undocumented(x: int) -> int:
    return x


def make_adder(n: int):  # type: ignore[no-untyped-def]
    def add(x: int) -> int:
        """Add n."""
        return x + n

    return add


@pytest.fixture(scope="module")
def rt() -> Iterator[ToolRuntime]:
    with toolrt.connect("memory") as runtime:
        yield runtime


def test_a_decorated_function_runs_in_the_sandbox_with_its_imports(rt: ToolRuntime) -> None:
    """@rt.tool registers the function (schema from hints and docstring) and it runs isolated, imports included."""
    decorated = rt.tool("agent-1")(hypotenuse)
    reg = decorated.toolrt_registration  # type: ignore[attr-defined]
    assert decorated is hypotenuse and decorated(3.0) == 5.0  # still callable in-process
    tool = rt.get_tool(reg.tool_id)
    schema = tool.current.definition.input_schema
    assert schema["required"] == ["a"] and schema["properties"]["a"]["type"] == "number"
    assert tool.current.definition.description == "Length of the hypotenuse of a right triangle."
    result = rt.execute_tool("agent-1", "hypotenuse", {"a": 3.0})
    assert result.status.value == "succeeded" and result.output == 5.0
    assert result.metrics.isolation.value != "none"


def test_an_aliased_module_import_is_carried_along(rt: ToolRuntime) -> None:
    """A module imported under another name (import statistics as stats) is imported the same way in the tool."""
    reg = rt.register_function("agent-1", spread, description="Spread of the values.")
    assert "import statistics as stats" in rt.get_tool(reg.tool_id).current.definition.code
    assert rt.execute_tool("agent-1", reg.tool_id, {"values": [1, 3]}).output == 1.0


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (scaled, "SCALE"),
        (make_adder(2), "enclosing function"),
        (lambda x: x, "lambda"),
        (len, "plain Python functions"),
        (undocumented, "docstring"),
    ],
    ids=["global value", "closure", "lambda", "builtin", "no docstring"],
)
def test_a_function_that_cannot_stand_alone_is_refused_with_what_to_do(rt: ToolRuntime, fn: object, words: str) -> None:
    """Closures, program globals, lambdas, builtins and undocumented functions are ValidationErrors naming the cause."""
    with pytest.raises(toolrt.ValidationError, match=words):
        rt.register_function("agent-1", fn)  # type: ignore[arg-type]


SCRIPT = '''
import json, sys
import toolrt

rt = toolrt.connect("local", data_dir=sys.argv[1])


@rt.tool("p")
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b {change}


def double(x: int) -> int:
    """Double a number."""
    return 2 * x


reg = rt.register_function("p", double)
print(json.dumps({{
    "add": [add.toolrt_registration.tool_id, add.toolrt_registration.version, add.toolrt_registration.reused,
            add.toolrt_registration.updated],
    "double": [reg.tool_id, reg.version, reg.reused],
    "result": rt.execute_tool("p", "add", {{"a": 2, "b": 3}}).output,
}}))
rt.close()
'''


def _run_script(tmp_path: Path, change: str = "") -> dict[str, Any]:
    script = tmp_path / "tools_script.py"
    script.write_text(SCRIPT.format(change=change))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_running_a_script_that_registers_its_tools_again_finds_them(tmp_path: Path) -> None:
    """The same script run twice on one local store returns the tools it registered the first time
    (no ConflictError); once a function changes, its tool gets a new version and the other stays."""
    first = _run_script(tmp_path)
    again = _run_script(tmp_path)
    assert first["add"][:2] == [again["add"][0], 1] and again["add"][1:] == [1, True, False]
    assert again["double"] == [first["double"][0], 1, True] and again["result"] == 5
    changed = _run_script(tmp_path, change="+ 1")
    assert changed["add"] == [first["add"][0], 2, False, True] and changed["result"] == 6
    assert changed["double"] == [first["double"][0], 1, True]


def test_on_duplicate_chooses_what_a_second_registration_does(rt: ToolRuntime) -> None:
    """register_function and @rt.tool take on_duplicate: 'error' refuses a second tool that does the
    same, 'create' makes a second one beside it when the name is free."""
    rt.register_function("agent-dup", spread)
    with pytest.raises(toolrt.ConflictError):
        rt.register_function("agent-dup", spread, on_duplicate="error")
    other = rt.tool("agent-dup", name="spread_copy", on_duplicate="create")(spread).toolrt_registration  # type: ignore[attr-defined]
    assert other.tool.name == "spread_copy" and not other.reused
    with pytest.raises(toolrt.ValidationError, match="on_duplicate"):
        rt.register_function("agent-dup", spread, on_duplicate="sometimes")
