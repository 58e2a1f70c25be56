"""Examples that must pass: a version is accepted only after it answers its own examples."""

from __future__ import annotations

from typing import Any

import pytest

import toolrt
from toolrt.domain import ValidationError

DOUBLE = "def handler(n: int) -> int:\n    if n < 0:\n        raise ValueError('negative')\n    print('doubling', n)\n    return n * 2\n"
WRONG = "def handler(n: int) -> int:\n    print('tripling', n)\n    return n * 3\n"


def _definition(code: str, examples: Any, name: str = "double") -> dict[str, Any]:
    return {"name": name, "description": "Double a number.", "language": "python", "code": code, "examples": examples}


EXAMPLES = [{"params": {"n": 2}, "output": 4}, {"params": {"n": -1}, "error": "ValueError"}]


@pytest.fixture
def rt() -> Any:
    with toolrt.connect("memory", sandbox="inprocess") as runtime:
        yield runtime


def test_a_version_that_passes_its_examples_is_registered(rt: Any) -> None:
    reg = rt.register_tool("agent-a", _definition(DOUBLE, EXAMPLES))
    assert [e.params for e in reg.tool.definition.examples] == [{"n": 2}, {"n": -1}]
    assert all(r.passed for r in rt.test_tool("agent-a", reg.tool_id))


def test_a_failing_example_refuses_the_version_with_what_came_back_and_stores_nothing(rt: Any) -> None:
    with pytest.raises(ValidationError) as info:
        rt.register_tool("agent-a", _definition(WRONG, [{"params": {"n": 2}, "output": 4}]))
    (finding,) = info.value.report.findings
    assert finding.rule_id == "examples.failed"
    assert "expected output 4, got output 6" in finding.message and "tripling 2" in finding.message
    assert rt.list_tools() == []
    assert list(rt.ports.artifacts.hashes()) == []


def test_an_expected_error_must_be_of_the_named_type(rt: Any) -> None:
    with pytest.raises(ValidationError, match="expected error KeyError, got failed with ValueError"):
        rt.register_tool("agent-a", _definition(DOUBLE, [{"params": {"n": -1}, "error": "KeyError"}]))


def test_an_update_whose_new_code_breaks_an_example_keeps_the_old_version(rt: Any) -> None:
    reg = rt.register_tool("agent-a", _definition(DOUBLE, EXAMPLES))
    with pytest.raises(ValidationError, match="example 1"):
        rt.update_tool("agent-a", reg.tool_id, _definition(WRONG, EXAMPLES))
    assert rt.get_tool(reg.tool_id).current_version == 1


@pytest.mark.parametrize(
    "examples, words",
    [
        ({"params": {}}, "must be a list"),
        ([{"params": {"n": 1}}], "exactly one of output or error"),
        ([{"params": {"n": 1}, "output": 2, "error": "X"}], "exactly one of output or error"),
        ([{"params": {"n": 1}, "result": 2}], "unknown: result"),
        ([{"params": {"n": 1}, "error": "not a type!"}], "must name an exception type"),
    ],
)
def test_malformed_examples_are_clear_errors(rt: Any, examples: Any, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        rt.register_tool("agent-a", _definition(DOUBLE, examples))


def test_examples_with_params_the_schema_refuses_are_reported(rt: Any) -> None:
    with pytest.raises(ValidationError, match="invalid params"):
        rt.register_tool("agent-a", _definition(DOUBLE, [{"params": {"n": "two"}, "output": 4}]))


def _count_runs(rt: Any) -> list[int]:
    runs: list[int] = []
    original = rt.ports.sandbox.run

    def counting(request: Any, cancel: Any = None) -> Any:
        runs.append(1)
        return original(request, cancel)

    rt.ports.sandbox.run = counting
    return runs


def test_the_same_code_and_examples_are_run_once_for_agents_who_see_a_tool_with_them(rt: Any) -> None:
    """A tool agent-b may discover already passed these examples: its registration skips them."""
    runs = _count_runs(rt)
    rt.register_tool("agent-a", _definition(DOUBLE, EXAMPLES), "public")
    rt.register_tool("agent-b", _definition(DOUBLE, EXAMPLES, name="twice"))
    assert len(runs) == 2  # two examples, once


def test_examples_another_agents_private_tool_passed_are_run_again(rt: Any) -> None:
    """Whether a private tool holds this code and these examples never shows: they run for agent-b."""
    runs = _count_runs(rt)
    rt.register_tool("agent-a", _definition(DOUBLE, EXAMPLES))
    rt.register_tool("agent-b", _definition(DOUBLE, EXAMPLES, name="twice"))
    assert len(runs) == 4
    rt.register_tool("agent-b", _definition(DOUBLE, EXAMPLES, name="thrice"))
    assert len(runs) == 4  # agent-b's own tool now holds them


def test_another_agent_cannot_test_a_private_tool(rt: Any) -> None:
    reg = rt.register_tool("agent-a", _definition(DOUBLE, EXAMPLES))
    with pytest.raises(toolrt.NotFoundError):
        rt.test_tool("agent-b", "double")
    with pytest.raises(toolrt.NotFoundError):  # by id too: answered as an unknown id
        rt.test_tool("agent-b", reg.tool_id)


def test_cli_test_reports_each_example(tmp_path: Any) -> None:
    """`toolrt test TOOL` runs the examples of the version in force and says how each went."""
    import json

    from typer.testing import CliRunner

    from toolrt.adapters.cli.main import build_app

    tool = tmp_path / "double.yaml"
    tool.write_text(json.dumps(_definition(DOUBLE, EXAMPLES)))
    app = build_app()
    base = ["--data-dir", str(tmp_path / "store")]
    assert CliRunner().invoke(app, [*base, "register", str(tool)]).exit_code == 0
    done = CliRunner().invoke(app, [*base, "test", "double"])
    assert done.exit_code == 0, done.output
    assert "pass  example 1" in done.stdout and "pass  example 2" in done.stdout
    as_json = json.loads(CliRunner().invoke(app, [*base, "--json", "test", "double"]).stdout)
    assert as_json["passed"] is True and len(as_json["examples"]) == 2
