"""Tool templates: filled-in definitions, validated once when their code does not change."""

from __future__ import annotations

import pytest

from tests.fakes import CountingValidator, memory_runtime
from toolrt.application import ToolTemplate
from toolrt.domain import ConflictError, NotFoundError, ValidationError, Visibility

MILES = {"tool_name": "miles_to_km", "from_unit": "miles", "to_unit": "kilometres", "factor": "1.609344"}


def test_shipped_templates_are_listed_and_instantiate_into_valid_definitions() -> None:
    rt = memory_runtime()
    names = [t.name for t in rt.list_templates()]
    assert names == sorted(names) and {"json_field", "unit_converter"} <= set(names)
    reg = rt.create_from_template("alice", "unit_converter", MILES)
    assert reg.tool.owner == "alice" and reg.tool.visibility is Visibility.PRIVATE
    definition = reg.tool.definition
    assert definition.name == "miles_to_km" and definition.description == "Convert miles to kilometres."
    assert "FACTOR = 1.609344\nOFFSET = 0\n" in definition.code  # the default offset
    assert definition.input_schema["properties"]["value"]["description"] == "The value in miles."


def test_values_must_match_their_patterns_so_nothing_else_reaches_the_code() -> None:
    rt = memory_runtime()
    with pytest.raises(ValidationError, match="factor='1; import os' does not match"):
        rt.create_from_template("alice", "unit_converter", {**MILES, "factor": "1; import os"})
    with pytest.raises(ValidationError, match="to_unit is required"):
        rt.create_from_template("alice", "unit_converter", {k: v for k, v in MILES.items() if k != "to_unit"})
    with pytest.raises(ValidationError, match="no placeholders"):
        rt.create_from_template("alice", "unit_converter", {**MILES, "colour": "red"})
    with pytest.raises(NotFoundError):
        rt.create_from_template("alice", "no_such_template", {})
    assert rt.list_tools(owner="alice") == []


def test_a_template_whose_code_never_changes_is_validated_once_while_an_instance_is_visible() -> None:
    rt = memory_runtime()
    validator = rt.ports.validator
    assert isinstance(validator, CountingValidator)
    first = rt.create_from_template("alice", "json_field", {"tool_name": "order_total", "what": "the total"})
    second = rt.create_from_template("alice", "json_field", {"tool_name": "city_name", "what": "the city"})
    assert validator.calls == 1 and not first.cache_hit and second.cache_hit
    assert first.code_hash == second.code_hash
    # Bob cannot see alice's private instances: validated again, so nothing tells him they exist.
    third = rt.create_from_template("bob", "json_field", {"tool_name": "price", "what": "the price"})
    assert not third.cache_hit and validator.calls == 2 and third.code_hash == first.code_hash


def test_the_owner_adds_templates_and_bad_ones_are_refused() -> None:
    rt = memory_runtime()
    template = {
        "name": "greeter",
        "description": "Greet someone",
        "placeholders": [{"name": "greeting", "description": "The word", "pattern": "^[A-Za-z]{1,20}$"}],
        "definition": {
            "name": "greet",
            "description": "Say {{greeting}}",
            "language": "python",
            "code": "def handler(who: str) -> str:\n    return '{{greeting}} ' + who\n",
        },
    }
    added = rt.add_template(template)
    assert isinstance(added, ToolTemplate) and "greeter" in [t.name for t in rt.list_templates()]
    with pytest.raises(ConflictError, match="replace=True"):
        rt.add_template(template)
    rt.add_template(template, replace=True)
    assert rt.create_from_template("alice", "greeter", {"greeting": "Hello"}).tool.definition.description == "Say Hello"
    with pytest.raises(ValidationError, match="undeclared placeholders"):
        rt.add_template({**template, "name": "broken", "placeholders": []})
    with pytest.raises(ValidationError, match="malformed template"):
        rt.add_template({"name": "x"})
