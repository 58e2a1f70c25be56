"""Python entrypoint compliance: the entrypoint exists, is a function, and its parameters agree with the input schema."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from toolrt.domain import Finding, Severity


def find_entrypoint(tree: ast.Module, entrypoint: str) -> ast.AST | None:
    """The top-level statement that binds ``entrypoint`` (also inside top-level if/try blocks)."""
    found: ast.AST | None = None
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        stmt = stack.pop(0)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == entrypoint:
            found = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == entrypoint for t in targets):
                found = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name) == entrypoint for a in stmt.names):
                found = stmt
        elif isinstance(stmt, ast.If):
            stack.extend(stmt.body + stmt.orelse)
        elif isinstance(stmt, ast.Try):
            stack.extend(stmt.body + stmt.orelse + stmt.finalbody)
    return found


def check_entrypoint(tree: ast.Module, entrypoint: str, schema: Mapping[str, Any]) -> list[Finding]:
    """Compliance of the entrypoint: it exists, is a function, and agrees with ``schema``."""
    node = find_entrypoint(tree, entrypoint)
    if node is None:
        functions = [s.name for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        shown = ", ".join(functions) if functions else "none"
        return [
            Finding(
                "compliance.entrypoint.missing",
                Severity.ERROR,
                f"no top-level function named {entrypoint!r} (top-level functions: {shown})",
                hint=f"define 'def {entrypoint}(...)' at module level, or set entrypoint to one of: {shown}",
            )
        ]
    args: ast.arguments | None = None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
    elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Lambda):
        args = node.value.args
    if args is None:
        return [
            Finding(
                "compliance.entrypoint.not_function",
                Severity.ERROR,
                f"{entrypoint!r} is defined on line {getattr(node, 'lineno', 0)} but is not a function",
                line=getattr(node, "lineno", 0),
                column=getattr(node, "col_offset", 0) + 1,
                hint=f"make {entrypoint} a top-level 'def {entrypoint}(...)' that returns a JSON-serializable value",
            )
        ]
    return _check_params(node, args, entrypoint, schema)


def _check_params(node: ast.AST, args: ast.arguments, entrypoint: str, schema: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    properties = schema.get("properties", {})
    properties = properties if isinstance(properties, Mapping) else {}
    required_raw = schema.get("required", [])
    required = {r for r in required_raw if isinstance(r, str)} if isinstance(required_raw, list) else set()

    def mismatch(message: str, at: ast.AST, hint: str) -> None:
        findings.append(
            Finding(
                "compliance.schema.param_mismatch",
                Severity.ERROR,
                message,
                getattr(at, "lineno", 0),
                getattr(at, "col_offset", 0) + 1,
                hint,
            )
        )

    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params: dict[str, tuple[ast.arg, bool]] = {}
    for index, arg in enumerate(positional):
        params[arg.arg] = (arg, index >= first_default)
        if index < len(args.posonlyargs) and index < first_default:
            mismatch(
                f"parameter {arg.arg!r} of {entrypoint} is positional-only, but parameters are passed by name",
                arg,
                f"remove the '/' from {entrypoint}'s signature",
            )
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params[arg.arg] = (arg, default is not None)
    accepts_any = args.kwarg is not None

    for name, (arg, has_default) in params.items():
        if has_default:
            continue  # an optional parameter the schema does not offer is simply never passed
        if name not in properties:
            mismatch(
                f"parameter {name!r} of {entrypoint} has no default and is not in input_schema.properties",
                arg,
                f"add {name!r} to input_schema.properties and to required, or give it a default",
            )
        elif name not in required:
            mismatch(
                f"parameter {name!r} of {entrypoint} has no default but input_schema does not require it",
                arg,
                f"add {name!r} to input_schema.required, or give the parameter a default value",
            )
    if not accepts_any:
        for name in sorted(set(properties) | required):
            if name in params:
                continue
            what = "required" if name in required else "declared"
            mismatch(
                f"input_schema {what} property {name!r} is not a parameter of {entrypoint}",
                node,
                f"add a parameter {name!r} to {entrypoint}, remove it from the schema, or accept **kwargs",
            )
    return findings
