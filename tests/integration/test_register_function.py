"""A Python function of the embedding program becomes a sandboxed tool, from its own source."""

from __future__ import annotations

import math
import statistics as stats
from collections.abc import Iterator

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
    reg = decorated.toolrt_registration
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
