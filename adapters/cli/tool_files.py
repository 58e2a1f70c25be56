"""Reading tool files: a documented Python file, or a ``tool.yaml``/``tool.json`` checked by its JSON Schema."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import yaml

from toolrt.adapters.validation.python_syntax import parse_python
from toolrt.application.functions import docstring_summary
from toolrt.domain import Finding, NotFoundError, Severity, ValidationError, ValidationReport

if TYPE_CHECKING:
    import jsonschema

PYTHON_SUFFIXES = (".py",)
#: The largest tool file read (bytes). A tool's code fits many times over; a file past it is
#: refused before it is read.
MAX_TOOL_FILE_BYTES = 1024 * 1024
DATA_SUFFIXES = (".yaml", ".yml", ".json")
_CODE_SUFFIXES = {
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
}


@attrs.frozen
class ToolFile:
    """A tool definition read from ``path`` (a plain mapping: the runtime infers a missing schema)."""

    path: Path
    definition: dict[str, Any]
    visibility: str | None = None  # as written: private, shared, public or team:NAME (checked by the schema)

    @property
    def name(self) -> str:
        """The tool's name as the file gives it."""
        return str(self.definition["name"])


@functools.cache
def tool_file_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``tool.yaml``/``tool.json`` files, shipped in toolrt.contracts."""
    text = resources.files("toolrt.contracts").joinpath("schemas/tool.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_tool_file(
    path: Path | str, *, name: str | None = None, entrypoint: str | None = None, description: str | None = None
) -> ToolFile:
    """Read one tool file; ``name``, ``entrypoint`` and ``description`` override what the file says.

    Raises NotFoundError for a missing file and ValidationError (naming the file, and the JSON path
    or line of each problem) for a malformed one.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("tool file", str(path))
    suffix = path.suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        tool = _python_tool(path, entrypoint, description)
    elif suffix in DATA_SUFFIXES:
        tool = _data_tool(path)
        if entrypoint:
            tool.definition["entrypoint"] = entrypoint
    elif suffix in _CODE_SUFFIXES:
        raise _file_error(
            path,
            "file.format",
            f"a {_CODE_SUFFIXES[suffix]} file does not say its parameters",
            hint=f"write a tool.yaml next to it with language: {_CODE_SUFFIXES[suffix]}, code_file: {path.name} and an input_schema",
        )
    else:
        raise _file_error(
            path, "file.format", f"unknown tool file type {suffix or '(none)'!r}", hint="use .py, .yaml, .yml or .json"
        )
    if name:
        tool.definition["name"] = name
    if description:
        tool.definition["description"] = description
    return tool


def _file_error(
    path: Path, rule: str, message: str, *, line: int = 0, column: int = 0, hint: str = ""
) -> ValidationError:
    # The place is said once, by the finding (``line L, col C``), never in ``message`` too.
    finding = Finding(rule, Severity.ERROR, message, line, column, hint)
    return ValidationError(f"{path}: {message}", ValidationReport((finding,)))


# -- Python files ----------------------------------------------------------------------------
def _python_tool(path: Path, entrypoint: str | None, description: str | None = None) -> ToolFile:
    code = _read_text(path)
    module, problems = parse_python(code)
    if module is None:
        # The validator's own finding: the offending line quoted, its place, and a hint.
        finding = problems[0]
        raise ValidationError(f"{path}: line {finding.line}: {finding.message}", ValidationReport((finding,)))
    functions = {node.name: node for node in module.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    chosen = entrypoint or _default_entrypoint(functions)
    if chosen is None or chosen not in functions:
        wanted = chosen or "handler"
        public = ", ".join(n for n in functions if not n.startswith("_")) or "none"
        raise _file_error(
            path,
            "definition.entrypoint",
            f"no top-level function {wanted!r} (functions found: {public})",
            hint="name the function handler, or pass --entrypoint",
        )
    description = (
        description
        or docstring_summary(ast.get_docstring(functions[chosen]))
        or docstring_summary(ast.get_docstring(module))
    )
    if not description:
        raise _file_error(
            path,
            "definition.description",
            f"neither {chosen}() nor the module has a docstring to describe the tool",
            line=functions[chosen].lineno,
            hint="start the function with a docstring saying what the tool does, or pass --description",
        )
    definition: dict[str, Any] = {
        "name": path.stem,
        "description": description,
        "language": "python",
        "code": code,
        "entrypoint": chosen,
    }
    requirements = _inline_dependencies(path, code)
    if requirements:
        definition["requirements"] = requirements
    return ToolFile(path, definition)


# PEP 723 inline script metadata: the standard place a single-file script names its dependencies.
_SCRIPT_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def _inline_dependencies(path: Path, code: str) -> list[str]:
    """The ``dependencies`` of a ``# /// script`` block (PEP 723), as the tool's requirements."""
    blocks = [m for m in _SCRIPT_BLOCK.finditer(code) if m.group("type") == "script"]
    if not blocks:
        return []
    if len(blocks) > 1:
        raise _file_error(path, "file.script_metadata", "more than one '# /// script' block", hint="keep one (PEP 723)")
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:] for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        line = code[: blocks[0].start()].count("\n") + 1
        raise _file_error(
            path, "file.script_metadata", f"the '# /// script' block is not TOML: {exc}", line=line
        ) from None
    dependencies = data.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise _file_error(
            path, "file.script_metadata", "dependencies in the '# /// script' block must be a list of strings"
        )
    return list(dependencies)


def _default_entrypoint(functions: Mapping[str, ast.AST]) -> str | None:
    # "handler" is the contract; a file with a single public function means that one.
    if "handler" in functions:
        return "handler"
    public = [n for n in functions if not n.startswith("_")]
    return public[0] if len(public) == 1 else None


# -- YAML / JSON files -----------------------------------------------------------------------
def _data_tool(path: Path) -> ToolFile:
    import jsonschema  # here: only data tool files need it, and loading it takes tens of milliseconds

    text = _read_text(path)
    data = _parse(path, text)
    errors = sorted(
        jsonschema.Draft202012Validator(tool_file_schema()).iter_errors(data),
        key=lambda e: (list(e.absolute_path), e.message),
    )
    if errors:
        findings = tuple(_schema_finding(error) for error in errors)
        raise ValidationError(f"{path}: not a valid tool file", ValidationReport(findings))
    definition = dict(data)
    visibility = definition.pop("visibility", None)
    code_file = definition.pop("code_file", None)
    if code_file is not None:
        folder = path.parent.resolve()
        source = (folder / code_file).resolve()
        # A tool file names code beside it; it must not pull in any other file of the machine
        # (whose text would be echoed back in validation findings).
        if Path(code_file).is_absolute() or not source.is_relative_to(folder):
            raise _file_error(
                path, "file.code_file", f"at $.code_file: {code_file!r} is outside the tool file's folder {folder}"
            )
        if not source.is_file():
            raise _file_error(
                path, "file.code_file", f"at $.code_file: {code_file!r} does not exist (looked in {path.parent})"
            )
        try:
            definition["code"] = _bounded_read(source).decode("utf-8")
        except _TooLarge as exc:
            raise _file_error(
                path,
                "file.code_file",
                f"at $.code_file: {code_file!r} is {exc.size} bytes; code may be at most {MAX_TOOL_FILE_BYTES} bytes",
                hint="is this the right file?",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _file_error(
                path, "file.code_file", f"at $.code_file: {code_file!r} cannot be read as UTF-8 text: {exc}"
            ) from exc
    return ToolFile(path, definition, visibility)


def code_file_named(path: Path) -> Path | None:
    """The code file a ``tool.yaml``/``tool.json`` names (``code_file``, resolved beside it), or None.

    The file is read within the bounds :func:`load_tool_file` keeps (size, aliases, nesting); a file
    that cannot be read or parsed raises the same ValidationError registering it would.
    """
    data = _parse(path, _read_text(path))
    code_file = data.get("code_file") if isinstance(data, dict) else None
    return (path.parent / code_file).resolve() if isinstance(code_file, str) else None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``): a few hundred bytes of nested aliases
    stand for billions of values once anything walks them (a "billion laughs" file), and a tool
    file never needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in tool files: write the value out", mark
            )
        return super().compose_node(parent, index)


def _parse(path: Path, text: str) -> Any:
    """The data of a tool.yaml/tool.json: aliases refused, nesting bounded by the interpreter's
    recursion limit (a clear error, not a crash), and the size by :func:`_read_text`."""
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise _file_error(path, "file.json", exc.msg, line=exc.lineno, column=exc.colno) from None
        except RecursionError:
            raise _file_error(path, "file.json", "nested too deeply to be a tool file") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise _file_error(path, "file.yaml", "nested too deeply to be a tool file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        column = mark.column + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise _file_error(path, "file.yaml", problem, line=line, column=column) from None


def _schema_finding(error: jsonschema.ValidationError) -> Finding:
    where = json_path(error.absolute_path)
    message = error.message
    if error.validator == "oneOf" and not error.absolute_path:
        message = "give exactly one of code and code_file"
    elif error.validator == "additionalProperties":
        message = f"{error.message}; see the tool file schema for the known fields"
    return Finding(f"file.schema.{error.validator}", Severity.ERROR, f"at {where}: {message}")


def json_path(parts: Any) -> str:
    """``$.limits.timeout_s`` / ``$.tags[2]`` for a jsonschema error path."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _bounded_read(path: Path) -> bytes:
    """The bytes of ``path``, or _TooLarge without reading it whole: its size is checked first and
    the read stops one byte past the limit (a file that grows meanwhile, or a /proc file that says
    it is empty, is still bounded)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_TOOL_FILE_BYTES:
            raise _TooLarge(size)
        data = f.read(MAX_TOOL_FILE_BYTES + 1)
    if len(data) > MAX_TOOL_FILE_BYTES:
        raise _TooLarge(len(data))
    return data


def _read_text(path: Path) -> str:
    try:
        return _bounded_read(path).decode("utf-8")
    except _TooLarge as exc:
        raise _file_error(
            path,
            "file.size",
            f"is {exc.size} bytes; a tool file may be at most {MAX_TOOL_FILE_BYTES} bytes",
            hint="a tool's code and schema fit well within it: is this the right file?",
        ) from None
    except UnicodeDecodeError as exc:
        raise _file_error(path, "file.encoding", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _file_error(path, "file.read", f"cannot be read: {exc.strerror}") from None
