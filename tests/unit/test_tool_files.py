"""Tool files: Python files with documented entrypoints and tool.yaml/tool.json checked by their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.e2e.harness import EXAMPLES
from toolrt.adapters.cli.tool_files import load_tool_file, tool_file_schema
from toolrt.application import to_definition
from toolrt.domain import Language, NotFoundError, ValidationError


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The shipped schema is itself valid, so editors and CI can use it."""
    schema = tool_file_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize(
    "relative",
    [
        "javascript/slugify.yaml",
        "typescript/temperature.json",
        "python/add.py",
        "python/word_stats.py",
        "python/word_stats_v2.py",
    ],
)
def test_every_example_loads_into_a_valid_definition(relative: str) -> None:
    """Each sample tool becomes a ToolDefinition without error."""
    tool = load_tool_file(EXAMPLES / relative)
    definition = to_definition(tool.definition)
    assert definition.code.strip() and definition.description


def test_yaml_code_file_is_read_relative_to_the_tool_file() -> None:
    """code_file names a file next to the tool file; visibility comes out separately."""
    tool = load_tool_file(EXAMPLES / "javascript" / "slugify.yaml")
    assert tool.definition["code"] == (EXAMPLES / "javascript" / "slugify.js").read_text()
    assert tool.visibility == "public" and "visibility" not in tool.definition
    assert to_definition(tool.definition).language is Language.JAVASCRIPT


def test_python_description_and_entrypoint(tmp_path: Path) -> None:
    """The summary of the entrypoint's docstring describes the tool; a single public function is the entrypoint."""
    source = tmp_path / "greet.py"
    source.write_text(
        '"""Module text."""\n\ndef greet(name: str) -> str:\n    """Say hello.\n\n    Args:\n        name: Who.\n    """\n    return "hi " + name\n'
    )
    tool = load_tool_file(source)
    assert (tool.name, tool.definition["entrypoint"], tool.definition["description"]) == (
        "greet",
        "greet",
        "Say hello.",
    )
    renamed = load_tool_file(source, name="hello")
    assert renamed.name == "hello"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            {"name": "x", "description": "d", "language": "python", "code": "c", "limits": {"timeout_s": -1}},
            "at $.limits.timeout_s:",
        ),
        ({"name": "x", "description": "d", "language": "cobol", "code": "c"}, "at $.language:"),
        (
            {"name": "x", "description": "d", "language": "python", "code": "c", "tags": ["ok", "not ok"]},
            "at $.tags[1]:",
        ),
        ({"name": "x", "description": "d", "language": "python"}, "give exactly one of code and code_file"),
        (
            {"name": "x", "description": "d", "language": "python", "code": "c", "colour": "red"},
            "'colour' was unexpected",
        ),
        (
            {"name": "x", "description": "d", "language": "python", "code_file": "missing.py"},
            "at $.code_file: 'missing.py' does not exist",
        ),
    ],
)
def test_malformed_tool_files_name_the_file_and_the_json_path(
    tmp_path: Path, content: dict[str, object], words: str
) -> None:
    """A malformed tool file is refused with the file's name and where in it the problem is."""
    path = tmp_path / "tool.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValidationError) as caught:
        load_tool_file(path)
    assert str(path) in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "place"),
    [
        ("tool.yaml", "name: x\ndescription: [unclosed\n", (3, 1)),
        ("tool.yaml", "name: x\ncode: &c 'def handler(): pass'\ndescription: *c\n", (3, 14)),
        ("tool.json", '{"name": "x",\n "description": }', (2, 17)),
    ],
)
def test_syntax_errors_give_the_line_and_column_once(
    tmp_path: Path, name: str, text: str, place: tuple[int, int]
) -> None:
    """Broken YAML or JSON is reported with its line and column, said once in the message."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_tool_file(path)
    (finding,) = caught.value.report.findings
    assert (finding.line, finding.column) == place
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and message.count(f"line {place[0]}") == 1, message


def test_python_files_without_docstring_or_entrypoint_are_refused(tmp_path: Path) -> None:
    """A Python tool must say what it does and which function to call."""
    undocumented = tmp_path / "u.py"
    undocumented.write_text("def handler(x: int) -> int:\n    return x\n")
    with pytest.raises(ValidationError, match="docstring"):
        load_tool_file(undocumented)
    ambiguous = tmp_path / "a.py"
    ambiguous.write_text('"""Two."""\ndef one(): pass\ndef two(): pass\n')
    with pytest.raises(ValidationError, match="no top-level function 'handler'"):
        load_tool_file(ambiguous)
    broken = tmp_path / "b.py"
    broken.write_text("def handler(:\n")
    with pytest.raises(ValidationError, match="b.py: line 1"):
        load_tool_file(broken)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    """A missing file is NotFoundError; a bare JavaScript file asks for a tool.yaml."""
    with pytest.raises(NotFoundError):
        load_tool_file(tmp_path / "nope.yaml")
    js = tmp_path / "x.js"
    js.write_text("function handler(p) { return p; }")
    with pytest.raises(ValidationError, match="write a tool.yaml"):
        load_tool_file(js)


@pytest.mark.parametrize(
    "code_file", ["../outside.py", "sub/../../outside.py", "/etc/passwd", "../../../../etc/passwd"]
)
def test_code_file_cannot_leave_the_tool_files_folder(tmp_path: Path, code_file: str) -> None:
    """A tool file may only name code beside it: other files of the machine are never read."""
    (tmp_path / "outside.py").write_text("SECRET = 'host data'\n")
    folder = tmp_path / "tools"
    folder.mkdir()
    tool = folder / "leak.yaml"
    tool.write_text(f"name: leak\ndescription: d\nlanguage: python\ncode_file: {code_file}\n")
    with pytest.raises(ValidationError) as caught:
        load_tool_file(tool)
    text = str(caught.value) + " ".join(f.message for f in caught.value.report.findings)
    assert "leak.yaml" in str(caught.value) and "code_file" in text
    assert "host data" not in text and "root:" not in text


def test_a_tool_file_declares_its_network(tmp_path: Path) -> None:
    """tool.json carries network.allow into the definition; a malformed entry fails the file's schema."""
    path = tmp_path / "fetch.json"
    base = {"name": "fetch", "description": "Fetch.", "language": "python", "code": "def handler():\n    return 1\n"}
    path.write_text(json.dumps({**base, "network": {"allow": ["api.example.com:443"]}}))
    definition = to_definition(load_tool_file(path).definition)
    assert [str(e) for e in definition.network.allow] == ["api.example.com:443"]
    path.write_text(json.dumps({**base, "network": {"allow": ["api.example.com"]}}))
    with pytest.raises(ValidationError, match="network"):
        load_tool_file(path)
