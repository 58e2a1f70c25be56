"""Which engine a JavaScript call gets: from the checker's facts at registration, and per call in the sandbox."""

from __future__ import annotations

import pytest

from toolrt.adapters.local.quickjs_engine import choose_engine
from toolrt.adapters.validation import js_engine
from toolrt.adapters.validation.policy import PolicyError, load_policy
from toolrt.domain import Severity

CLEAN: dict[str, list[dict[str, object]]] = {"modules": [], "globals": [], "members": [], "aliases": []}


def test_clean_facts_choose_quickjs_without_findings() -> None:
    """Code with no Node use goes to QuickJS, silently."""
    assert js_engine.choose(CLEAN, load_policy()) == ("quickjs", [])


@pytest.mark.parametrize(
    ("facts", "word"),
    [
        ({"modules": [{"name": "fs", "kind": "require", "line": 1, "column": 11}]}, "'fs'"),
        ({"modules": [{"name": None, "kind": "dynamic-import", "line": 1, "column": 1}]}, "computed name"),
        ({"globals": [{"name": "process", "line": 2, "column": 3}]}, "process"),
        ({"globals": [{"name": "TextEncoder", "line": 2, "column": 3}]}, "TextEncoder"),
        ({"members": [{"path": "globalThis.fetch", "line": 2, "column": 3}]}, "globalThis.fetch"),
        ({"members": [{"path": "globalThis[*]", "line": 2, "column": 3}]}, "computed access"),
        ({"aliases": [{"name": "globalThis", "line": 2, "column": 3}]}, "used as a value"),
        ({"properties": [{"name": "localeCompare", "line": 4, "column": 9}]}, "localeCompare"),
        ({"renamedExports": [{"name": "handler", "line": 3, "column": 9}]}, "another name"),
    ],
)
def test_each_node_use_keeps_a_tool_on_node_with_one_info_finding(facts: dict[str, object], word: str) -> None:
    """Any Node use under ``auto`` gives ``node`` and one informational finding naming it and its line."""
    engine, findings = js_engine.choose({**CLEAN, **facts}, load_policy())
    assert engine == "node"
    assert len(findings) == 1 and findings[0].severity is Severity.INFO and word in findings[0].message
    assert findings[0].line > 0


def test_globals_quickjs_has_are_not_node_uses() -> None:
    """Names QuickJS provides too (the harness's console and timers, atob) do not count."""
    facts = {**CLEAN, "globals": [{"name": n, "line": 1, "column": 1} for n in ("console", "setTimeout", "atob")]}
    assert js_engine.choose(facts, load_policy())[0] == "quickjs"


def test_a_quickjs_policy_turns_every_node_use_into_an_error() -> None:
    """Under javascript.engine=quickjs each use is an error finding at its own position."""
    facts = {
        **CLEAN,
        "globals": [{"name": "Buffer", "line": 3, "column": 5}, {"name": "process", "line": 1, "column": 2}],
    }
    engine, findings = js_engine.choose(facts, load_policy({"javascript": {"engine": "quickjs"}}))
    assert engine == "quickjs"
    assert [(f.severity, f.line) for f in findings] == [(Severity.ERROR, 1), (Severity.ERROR, 3)]


def test_a_node_policy_records_node_for_everything() -> None:
    """Under javascript.engine=node even clean code is recorded for Node."""
    assert js_engine.choose(CLEAN, load_policy({"javascript": {"engine": "node"}})) == ("node", [])


def test_an_unknown_engine_setting_is_refused_by_name() -> None:
    """A policy naming another engine fails to load, saying which values are allowed."""
    with pytest.raises(PolicyError, match="javascript.engine.*auto, node, quickjs"):
        load_policy({"javascript": {"engine": "v8"}})


@pytest.mark.parametrize(
    ("setting", "recorded", "quickjs", "node", "expected"),
    [
        ("auto", "quickjs", True, True, "quickjs"),
        ("auto", "node", True, True, "node"),
        ("auto", None, True, True, "node"),  # stored before engines were chosen
        ("auto", None, True, False, "quickjs"),  # no Node at all: QuickJS is the only engine
        ("auto", "quickjs", False, True, "node"),  # quickjs-ng not installed: Node, no error
        ("node", "quickjs", True, True, "node"),
        ("quickjs", None, True, True, "quickjs"),
        ("quickjs", "quickjs", True, True, "quickjs"),
        ("quickjs", "node", True, True, "refuse"),
        ("quickjs", "node", False, True, "node"),
    ],
)
def test_the_sandbox_engine_per_call(
    setting: str, recorded: str | None, quickjs: bool, node: bool, expected: str
) -> None:
    """The sandbox honours the recorded engine under auto, and the owner's override otherwise."""
    assert choose_engine(setting, recorded, quickjs, node) == expected
