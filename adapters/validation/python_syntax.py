"""Python syntax: parse a tool's code, reporting where it is invalid and what the compiler warns about."""

from __future__ import annotations

import ast
import warnings

from toolrt.domain import Finding, Severity


def parse_python(code: str) -> tuple[ast.Module | None, list[Finding]]:
    """The module's AST, or None with one ``syntax.python`` finding saying where the code is invalid.

    ``compile`` runs after ``ast.parse`` because some errors (``return`` outside a function,
    ``await`` outside ``async def``, ``nonlocal`` at module level) are only found by the compiler.
    """
    try:
        # Compiler warnings (invalid escape sequences, "is" with a literal) become findings rather
        # than noise on the host's stderr.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tree = ast.parse(code, filename="<tool>")
            compile(tree, "<tool>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno or 0
        text = (exc.text or "").rstrip("\n")
        where = f": {text.strip()!r}" if text.strip() else ""
        return None, [
            Finding(
                "syntax.python",
                Severity.ERROR,
                f"{exc.msg}{where}",
                line=line,
                column=exc.offset or 0,
                hint="fix the syntax at this position; the code must be valid Python 3.11",
            )
        ]
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # Null bytes raise ValueError; absurdly deep nesting exhausts the parser's stack.
        return None, [
            Finding(
                "syntax.python",
                Severity.ERROR,
                f"the code cannot be parsed: {type(exc).__name__}: {exc}",
                hint="remove null bytes and excessively deep nesting",
            )
        ]
    return tree, [
        Finding(
            "syntax.python.warning",
            Severity.WARNING,
            f"{w.category.__name__}: {w.message}",
            line=w.lineno or 0,
            hint="fix it now: Python turns many of these warnings into errors in later versions",
        )
        for w in caught
        if w.filename == "<tool>"
    ]
