"""An input schema from a Python entrypoint's signature: type hints, defaults and docstring."""

from __future__ import annotations

import ast
import re
from typing import Any

from toolrt.adapters.validation.python_entrypoint import find_entrypoint

_SIMPLE: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "complex": {},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string"},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
    "Any": {},
    "object": {},
    "dict": {"type": "object"},
    "Dict": {"type": "object"},
    "Mapping": {"type": "object"},
    "MutableMapping": {"type": "object"},
    "list": {"type": "array"},
    "List": {"type": "array"},
    "Sequence": {"type": "array"},
    "Iterable": {"type": "array"},
    "tuple": {"type": "array"},
    "Tuple": {"type": "array"},
    "set": {"type": "array", "uniqueItems": True},
    "Set": {"type": "array", "uniqueItems": True},
    "frozenset": {"type": "array", "uniqueItems": True},
}
_ARRAYS = {"list", "List", "Sequence", "Iterable", "set", "Set", "frozenset", "tuple", "Tuple", "MutableSequence"}
_OBJECTS = {"dict", "Dict", "Mapping", "MutableMapping"}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr  # typing.Optional -> Optional
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return ""


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and set(schema) <= {"type", "items", "uniqueItems", "additionalProperties"}:
        return {**schema, "type": [kind, "null"]}
    if not schema:
        return {}
    return {"anyOf": [schema, {"type": "null"}]}


def annotation_schema(node: ast.expr | None) -> dict[str, Any]:
    """The JSON Schema for one annotation; ``{}`` (anything) when it cannot be translated."""
    if node is None:
        return {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return annotation_schema(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return {}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right])
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer == "Optional":
            return _nullable(annotation_schema(args[0]))
        if outer == "Union":
            return _union(args)
        if outer == "Literal":
            values = [a.value for a in args if isinstance(a, ast.Constant)]
            return {"enum": values}
        if outer == "Annotated":
            return annotation_schema(args[0])
        if outer in _ARRAYS:
            schema = dict(_SIMPLE.get(outer, {"type": "array"}))
            if outer in ("tuple", "Tuple") and not (
                len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis
            ):
                schema["prefixItems"] = [annotation_schema(a) for a in args]
                schema["minItems"] = schema["maxItems"] = len(args)
                return schema
            items = annotation_schema(args[0])
            if items:
                schema["items"] = items
            return schema
        if outer in _OBJECTS:
            schema = {"type": "object"}
            if len(args) == 2:
                value_schema = annotation_schema(args[1])
                if value_schema:
                    schema["additionalProperties"] = value_schema
            return schema
        return {}
    return dict(_SIMPLE.get(_name(node), {}))


def _union(members: list[ast.expr]) -> dict[str, Any]:
    flat: list[ast.expr] = []
    stack = list(members)
    while stack:
        item = stack.pop(0)
        if isinstance(item, ast.BinOp) and isinstance(item.op, ast.BitOr):
            stack[:0] = [item.left, item.right]
        else:
            flat.append(item)
    nullable = any(_name(m) in ("None", "NoneType") for m in flat)
    rest = [annotation_schema(m) for m in flat if _name(m) not in ("None", "NoneType")]
    if any(not r for r in rest):
        return {}
    if len(rest) == 1:
        return _nullable(rest[0]) if nullable else rest[0]
    schema: dict[str, Any] = {"anyOf": rest + ([{"type": "null"}] if nullable else [])}
    return schema


def _literal_default(node: ast.expr) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return True, value
    return False, None


_GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_GOOGLE_ITEM = re.compile(r"^\s*\**(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_REST_ITEM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(:.*)?$")


def docstring_params(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google, NumPy or reST style docstring."""
    lines = doc.expandtabs().splitlines()
    found: dict[str, str] = {}
    # reST: ":param name: text" (continuation lines are indented further)
    current: str | None = None
    for line in lines:
        match = _REST_ITEM.match(line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current and line.strip() and not line.strip().startswith(":"):
            found[current] = f"{found[current]} {line.strip()}".strip()
        else:
            current = None
    if found:
        return found
    for index, line in enumerate(lines):
        if _GOOGLE_SECTION.match(line):
            base = len(line) - len(line.lstrip())
            item_indent: int | None = None
            for body in lines[index + 1 :]:
                if not body.strip():
                    continue
                indent = len(body) - len(body.lstrip())
                if indent <= base:
                    break
                if item_indent is None:
                    item_indent = indent
                match = _GOOGLE_ITEM.match(body)
                if indent == item_indent and match:
                    current = match.group(1)
                    found[current] = match.group(3).strip()
                elif current:
                    found[current] = f"{found[current]} {body.strip()}".strip()
            break
        if line.strip() == "Parameters" and index + 1 < len(lines) and set(lines[index + 1].strip()) == {"-"}:
            base = len(line) - len(line.lstrip())
            current = None
            for body in lines[index + 2 :]:
                if not body.strip():
                    continue
                indent = len(body) - len(body.lstrip())
                stripped = body.strip()
                if indent == base and set(stripped) == {"-"}:
                    break  # the underline of the next section: its title was taken as an item
                if indent == base:
                    match = _NUMPY_ITEM.match(stripped)
                    if not match:
                        break
                    current = match.group(1)
                    found[current] = ""
                elif current:
                    found[current] = f"{found[current]} {stripped}".strip()
            # The title of the next NumPy section ("Returns") was read as a parameter with no text.
            return {
                k: v for k, v in found.items() if v or k not in ("Returns", "Raises", "Yields", "Examples", "Notes")
            }
    return found


def infer_python_schema(tree: ast.Module, entrypoint: str) -> dict[str, Any] | None:
    """The input schema of ``entrypoint`` in ``tree``, or None when it is not a top-level function."""
    node = find_entrypoint(tree, entrypoint)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    args = node.args
    docs = docstring_params(ast.get_docstring(node) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    for arg, default in pairs:
        schema = annotation_schema(arg.annotation)
        if arg.arg in docs and docs[arg.arg]:
            schema["description"] = docs[arg.arg]
        if default is None:
            required.append(arg.arg)
        else:
            ok, value = _literal_default(default)
            if ok:
                schema["default"] = value
        properties[arg.arg] = schema
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    if args.kwarg is None:
        result["additionalProperties"] = False
    summary = (ast.get_docstring(node) or "").strip().split("\n\n")[0].strip()
    if summary:
        result["description"] = " ".join(summary.split())
    return result
