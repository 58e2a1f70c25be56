"""A Python function of the embedding program as a tool definition: its own source, schema from its hints."""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

from toolrt.domain import ValidationError

__all__ = ["docstring_summary", "function_definition"]


_SECTIONS = (
    "args",
    "arguments",
    "parameters",
    "params",
    "returns",
    "return",
    "raises",
    "yields",
    "example",
    "examples",
)


def docstring_summary(docstring: str | None) -> str:
    """The docstring's text before its first section (``Args:``, ``Returns:``, ...)."""
    if not docstring:
        return ""
    kept: list[str] = []
    for line in inspect.cleandoc(docstring).splitlines():
        if line.strip().rstrip(":").lower() in _SECTIONS:
            break
        kept.append(line)
    return "\n".join(kept).strip()


def function_definition(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """A definition (a mapping for ``register_tool``) that runs ``fn`` from its own source.

    A tool runs in a sandbox with nothing but its code: the function's source (decorators removed),
    an ``import`` for each module it uses through a global name, and nothing else. Anything it
    would need from the program (a closure, a global value or helper function, a lambda with no
    source) is refused with a ValidationError that says what to move into the function.
    """
    if not isinstance(fn, types.FunctionType):
        raise ValidationError(f"only plain Python functions can become tools, got {type(fn).__name__}")
    if fn.__name__ == "<lambda>":
        raise ValidationError("a lambda cannot become a tool: define it with def and a docstring")
    if fn.__code__.co_freevars:
        raise ValidationError(
            f"{fn.__name__} uses {', '.join(fn.__code__.co_freevars)} from an enclosing function; a tool gets only "
            "its own source: define it at module level and pass those values as parameters"
        )
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise ValidationError(f"the source of {fn.__name__} cannot be read ({exc}): define it in a file") from None
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    lines = source.splitlines(keepends=True)
    body = "".join(lines[node.lineno - 1 :])  # from the def line: decorators stay in the program
    imports, missing = [], []
    for global_name in sorted(_global_names(fn.__code__)):
        value = fn.__globals__.get(global_name, _MISSING)
        if value is _MISSING:
            if not hasattr(builtins, global_name):
                missing.append(global_name)
        elif isinstance(value, types.ModuleType):
            module = value.__name__
            imports.append(f"import {module}\n" if module == global_name else f"import {module} as {global_name}\n")
        elif global_name != fn.__name__:
            missing.append(global_name)
    if missing:
        raise ValidationError(
            f"{fn.__name__} uses {', '.join(missing)} from its module; a tool gets only its own source and "
            "the modules it imports: move them into the function or pass them as parameters"
        )
    summary = description or docstring_summary(fn.__doc__)
    if not summary:
        raise ValidationError(f"{fn.__name__} has no docstring to describe the tool: add one, or pass description=")
    return {
        "name": name or fn.__name__,
        "description": summary,
        "language": "python",
        "code": "".join(imports) + ("\n" if imports else "") + body,
        "entrypoint": fn.__name__,
    }


_MISSING = object()


def _global_names(code: types.CodeType) -> set[str]:
    """Global names a function reads (attribute names excluded), nested code objects included."""
    names: set[str] = set()
    for instruction in __import__("dis").get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(instruction.argval, str):
            names.add(instruction.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names
