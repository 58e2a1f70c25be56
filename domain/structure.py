"""Structural hashes: the same code written with other local names, layout, comments or docstrings.

Two tools whose code differs only in what a reader would call cosmetics get the same structural
hash; the exact code hash (``CodeHash``) still tells them apart. The language is part of the hash,
so a Python tool and a JavaScript tool are never near-duplicates of each other.

- Python: the AST (``ast.dump`` without positions) after dropping docstrings and renaming every
  name the code binds itself (functions, classes, parameters, assigned variables, imports' local
  aliases) to ``n0``, ``n1``... in order of first appearance. Names it does not bind (builtins,
  module attributes such as ``math.sqrt``) are kept, because they change what the code does.
- JavaScript and TypeScript: a token stream without comments and statement-ending semicolons,
  where every identifier that is not a keyword, a well-known global or a property name (after
  ``.``) is renamed the same way.
"""

from __future__ import annotations

import ast
import hashlib
import re

_JS_KEEP = frozenset(
    """break case catch class const continue debugger default delete do else export extends finally for
    function if import in instanceof let new return super switch this throw try typeof var void while
    with yield async await of static get set null true false undefined NaN Infinity Math JSON Object
    Array String Number Boolean Symbol BigInt Date Promise Map Set WeakMap WeakSet Error TypeError
    RangeError RegExp console fetch parseInt parseFloat isNaN isFinite require module exports globalThis
    structuredClone encodeURIComponent decodeURIComponent URL URLSearchParams TextEncoder TextDecoder
    Uint8Array Int32Array Float64Array ArrayBuffer DataView Intl interface type enum implements private
    public protected readonly declare namespace abstract as any unknown never string number boolean
    object keyof infer is satisfies""".split()
)
_JS_TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*.*?\*/)
    |(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`)
    |(?P<number>\d[\w.]*)
    |(?P<name>[A-Za-z_$][\w$]*)
    |(?P<punct>\S)""",
    re.VERBOSE | re.DOTALL,
)


def _digest(language: str, canonical: str) -> str:
    return hashlib.sha256(f"{language}\0{canonical}".encode()).hexdigest()


class _Renamer(ast.NodeTransformer):
    """Renames the names the module binds, in order of first appearance."""

    def __init__(self, bound: set[str]) -> None:
        self.bound = bound
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.names.setdefault(name, f"n{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._name(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._name(node.arg)
        node.annotation = None  # type hints do not change what the code does
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.name = self._name(node.name)
        node.returns = None
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self._name(node.name)
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    def visit_alias(self, node: ast.alias) -> ast.AST:
        if node.asname is not None:
            node.asname = self._name(node.asname)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.annotation = ast.Constant(None)
        self.generic_visit(node)
        return node


def _drop_docstring(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.alias) and node.asname is not None:
            bound.add(node.asname)
    return bound


def _python(code: str) -> str | None:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    _drop_docstring(tree)
    renamed = _Renamer(_bound_names(tree)).visit(tree)
    return ast.dump(renamed, annotate_fields=False, include_attributes=False)


def _javascript(code: str) -> str:
    names: dict[str, str] = {}
    out: list[str] = []
    previous = ""
    depth = 0
    for match in _JS_TOKEN.finditer(code):
        kind, text = match.lastgroup, match.group()
        if kind == "comment":
            continue
        depth += {"(": 1, ")": -1}.get(text, 0) if kind == "punct" else 0
        if kind == "punct" and text == ";" and depth <= 0:
            continue  # statement ends are optional in JavaScript (ASI); a for (;;) keeps its own
        if kind == "name" and text not in _JS_KEEP and previous != ".":
            text = names.setdefault(text, f"n{len(names)}")
        out.append(text)
        previous = text
    return " ".join(out)


def structural_hash(language: str, code: str) -> str | None:
    """The structural hash of ``code`` (``None`` when Python code does not parse)."""
    if language == "python":
        canonical = _python(code)
        return None if canonical is None else _digest(language, canonical)
    return _digest(language, _javascript(code))
