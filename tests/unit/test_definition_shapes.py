"""A tool definition's shape has one source: ToolDefinition, from which the tool-file and MCP schemas are built."""

from __future__ import annotations

from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolrt.adapters.mcp import management
from toolrt.application import to_definition
from toolrt.contracts.schemas import TOOL_FILE_SCHEMA_NAME, render, tool_file_schema
from toolrt.domain import ToolDefinition, ValidationError, definition_schema
from toolrt.domain.json_schema import RUNTIME_SET, json_schema, object_schema, written_fields

BASE: dict[str, Any] = {
    "name": "add",
    "description": "Add two numbers.",
    "language": "python",
    "code": "def handler(a, b):\n    return a + b\n",
}


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()

# Values of each field as JSON gives them, with the verdict the domain gives: True accepted, False
# refused. "exact" values are decided by the schema alone, so the schema must agree with the
# domain; "looser" values pass the schema's outline and are refused only by the domain's finer
# rules (a requirement that does not parse, a port above 65535): the schema may not refuse what the
# domain accepts, but it need not refuse these. The Python API's conveniences (a single string for
# tags, "Python" for python, a "lock" read back from a stored definition) are not JSON's shape and
# are left out.
_HOSTS = [f"h{i}.example.com:443" for i in range(17)]
EXACT: dict[str, list[tuple[Any, bool]]] = {
    "name": [
        (ABSENT, False),
        ("a" * 64, True),
        ("a" * 65, False),
        ("1add", False),
        ("a-b_c", True),
        ("", False),
        (5, False),
    ],
    "description": [(ABSENT, False), ("x" * 4096, True), ("x" * 4097, False), (7, False)],
    "language": [(ABSENT, False), ("javascript", True), ("typescript", True), ("cobol", False)],
    "code": [(ABSENT, False), ("", False), ("  \n\t", False), (3, False), ("x", True)],
    "input_schema": [
        (ABSENT, True),
        ({"type": "object", "properties": {"a": {"type": "number"}}}, True),
        ({"type": "array"}, False),
        ({}, False),
        ("object", False),
    ],
    "entrypoint": [(ABSENT, True), ("$main", True), ("a" * 128, True), ("a" * 129, False), ("2x", False), (2, False)],
    "output_schema": [(ABSENT, True), ({"type": "number"}, True), ([], False)],
    "limits": [
        (ABSENT, True),
        ({}, True),
        ({"timeout_s": 1.5, "memory_mb": 64, "max_output_bytes": 1000}, True),
        ({"timeout_s": 2}, True),
        ({"timeout_s": 0}, False),
        ({"memory_mb": 1.5}, False),
        ({"memory_mb": True}, False),
        ({"max_output_bytes": -1}, False),
        ({"cpu": 1}, False),
        ("fast", False),
    ],
    "tags": [
        (ABSENT, True),
        ([], True),
        (["math", "util"], True),
        ([f"t{i}" for i in range(32)], True),
        ([f"t{i}" for i in range(33)], False),
        (["1bad"], False),
        ([3], False),
    ],
    "examples": [
        (ABSENT, True),
        ([], True),
        ([{"params": {"a": 1, "b": 2}, "output": 3}], True),
        ([{"output": 0}], True),
        ([{"params": {}, "error": "ValueError"}], True),
        ([{"params": {}, "output": 1, "description": "one"}], True),
        ([{"params": {}, "output": i} for i in range(20)], True),
        ([{"params": {}, "output": i} for i in range(21)], False),
        ([{"params": {}, "output": 1, "error": "ValueError"}], False),
        ([{"params": {}}], False),
        ([{"params": [], "output": 1}], False),
        ([{"params": {}, "error": "not a type"}], False),
        ([{"params": {}, "output": 1, "note": "x"}], False),
        ("none", False),
    ],
    "network": [
        (ABSENT, True),
        ({}, True),
        ({"allow": []}, True),
        ({"allow": ["api.example.com:443", "[::1]:8080"]}, True),
        ({"allow": _HOSTS[:16]}, True),
        ({"allow": _HOSTS}, False),
        ({"allow": ["api.example.com"]}, False),
        ({"deny": []}, False),
        ("api.example.com:443", False),
    ],
    "requirements": [
        (ABSENT, True),
        ([], True),
        ([f"pkg{i}" for i in range(32)], True),
        ([f"pkg{i}" for i in range(33)], False),
        ([""], False),
        (["p" * 257], False),
    ],
}
LOOSER: dict[str, list[tuple[Any, bool]]] = {
    "network": [({"allow": ["api.example.com:99999"]}, False), ({"allow": ["a..b.example:443"]}, False)],
    "requirements": [(["not a requirement!!"], False), (["lodash@^4.17"], False), ([" "], False)],
}
CASES = [(field, value, ok, True) for field, values in EXACT.items() for value, ok in values] + [
    (field, value, ok, False) for field, values in LOOSER.items() for value, ok in values
]


def _mapping(changes: dict[str, Any]) -> dict[str, Any]:
    mapping = {**BASE, **changes}
    return {key: value for key, value in mapping.items() if value is not ABSENT}


def _domain_accepts(mapping: dict[str, Any]) -> bool:
    try:
        to_definition(mapping)
    except ValidationError:
        return False
    return True


def _schema_accepts(schema: dict[str, Any], mapping: dict[str, Any]) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(mapping))


def _manage_tools_accepts(mapping: dict[str, Any]) -> bool:
    # As the MCP server checks it: manage_tools' own schema, then that of the tool the action stands for.
    arguments = {**mapping, "action": "register"}
    if not _schema_accepts(management.SCHEMAS["manage_tools"], arguments):
        return False
    name, resolved = management.resolve("manage_tools", arguments)
    return _schema_accepts(management.SCHEMAS[name], resolved)


def _verdicts(mapping: dict[str, Any]) -> dict[str, bool]:
    """What each schema a definition meets where it enters toolrt says of it."""
    return {
        "definition": _schema_accepts(definition_schema(), mapping),
        "tool file": _schema_accepts(tool_file_schema(), mapping),
        "MCP register_tool": _schema_accepts(management.SCHEMAS["register_tool"], mapping),
        "MCP manage_tools": _manage_tools_accepts(mapping),
    }


def _check_agreement(changes: dict[str, Any], exact: bool) -> None:
    mapping = _mapping(changes)
    domain = _domain_accepts(mapping)
    for where, verdict in _verdicts(mapping).items():
        if exact:
            assert verdict == domain, f"{where} schema says {verdict}, the domain says {domain} for {changes}"
        else:
            assert verdict or not domain, f"{where} schema refuses {changes}, which the domain accepts"


@pytest.mark.parametrize(("field", "value", "ok", "exact"), CASES, ids=lambda v: str(v)[:30])
def test_each_value_is_judged_alike_by_the_domain_and_every_schema(
    field: str, value: Any, ok: bool, exact: bool
) -> None:
    """A definition value the domain accepts passes every schema; one the schema can judge gets the domain's verdict."""
    assert _domain_accepts(_mapping({field: value})) is ok
    _check_agreement({field: value}, exact)


@given(st.lists(st.sampled_from(CASES), max_size=3, unique_by=lambda case: case[0]))
def test_any_mix_of_values_is_judged_alike(cases: list[tuple[str, Any, bool, bool]]) -> None:
    """Several fields changed at once: the domain and the schemas still agree (where the schema can judge)."""
    _check_agreement({field: value for field, value, _, _ in cases}, all(exact for *_, exact in cases))


def test_the_shipped_tool_file_schema_is_built_from_the_definition() -> None:
    """contracts/schemas/tool.schema.json is what the domain class gives; `python -m toolrt.contracts.schemas` writes it."""
    from importlib import resources

    shipped = resources.files("toolrt.contracts.schemas").joinpath(TOOL_FILE_SCHEMA_NAME).read_text(encoding="utf-8")
    assert shipped == render(tool_file_schema()), "run python -m toolrt.contracts.schemas to write it again"
    jsonschema.Draft202012Validator.check_schema(tool_file_schema())


def test_every_field_users_write_is_in_every_schema_and_nothing_else() -> None:
    """A field of ToolDefinition is a property of the tool file, of MCP's register and update, and known to to_definition."""
    written = set(written_fields(ToolDefinition))
    assert written == set(attrs.fields_dict(ToolDefinition)) - {"lock"}
    assert set(definition_schema()["properties"]) == written
    assert set(tool_file_schema()["properties"]) == written | {"code_file", "visibility"}
    assert set(management.SCHEMAS["register_tool"]["properties"]) == written | {"visibility", "on_duplicate"}
    assert set(management.SCHEMAS["update_tool"]["properties"]) == written | {"visibility", "tool"}
    assert written <= set(management.SCHEMAS["manage_tools"]["properties"])
    assert management.SCHEMAS["register_tool"]["required"] == definition_schema()["required"]
    with pytest.raises(ValidationError) as refused:
        to_definition({**BASE, "colour": "red"})
    assert f"known fields: {', '.join(sorted(written))}" in refused.value.report.findings[0].hint


def test_a_field_that_does_not_say_its_shape_is_an_error_naming_it() -> None:
    """Adding a field without a JSON shape fails as soon as a schema is built, naming the class and field."""

    @attrs.frozen
    class Definition:
        name: str = attrs.field(metadata=json_schema(type="string"))
        colour: str = "red"
        lock: str | None = attrs.field(default=None, metadata=RUNTIME_SET)

    with pytest.raises(TypeError, match=r"Definition\.colour says nothing of its JSON shape"):
        object_schema(Definition)


def test_an_object_schema_lists_the_fields_without_default_as_required() -> None:
    """Required properties are the fields without a default; runtime-set fields are not properties."""

    @attrs.frozen
    class Shape:
        name: str = attrs.field(metadata=json_schema(type="string"))
        size: int = attrs.field(default=1, metadata=json_schema(type="integer"))
        lock: str | None = attrs.field(default=None, metadata=RUNTIME_SET)

    assert object_schema(Shape, description="A shape.") == {
        "description": "A shape.",
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
        "additionalProperties": False,
    }


_ACCEPTED = [case for case in CASES if case[2] and case[1] is not ABSENT]


@given(st.lists(st.sampled_from(_ACCEPTED), max_size=4, unique_by=lambda case: case[0]))
def test_a_definition_written_out_is_read_back_as_the_same_definition(cases: list[tuple[str, Any, bool, bool]]) -> None:
    """``definition.to_json()`` passes every schema and makes the same definition again (an MCP update merges it)."""
    definition = to_definition(_mapping({field: value for field, value, _, _ in cases}))
    written = definition.to_json()
    assert all(_verdicts(written).values()), _verdicts(written)
    assert to_definition(written) == definition
