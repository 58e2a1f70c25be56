"""Python tool code compiled once on the host: per agent, bounded, and compiled as the child would."""

from __future__ import annotations

import keyword
import marshal
import sys
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from toolrt.adapters.local.code_cache import CompiledTools, imported_modules


def cache(max_bytes: int = 1 << 20) -> CompiledTools:
    return CompiledTools(Path(sys.executable), max_bytes=max_bytes)


def test_bytecode_runs_like_the_source() -> None:
    """The bytecode defines the same handler, with the tool's file name and line numbers."""
    data = cache().bytecode("alice", "x = 1\n\ndef handler(n):\n    return n + x\n")
    assert data is not None
    code = marshal.loads(data)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    handler = namespace["handler"]
    assert callable(handler) and handler(n=2) == 3
    assert code.co_filename == "tool.py" and handler.__code__.co_firstlineno == 3  # type: ignore[attr-defined]


def test_the_hosts_future_flags_do_not_leak_into_the_tool() -> None:
    """Annotations are evaluated as the child would evaluate them (this module's __future__ import aside)."""
    code = marshal.loads(cache().bytecode("a", "def handler(x: missing_name): return x\n") or b"")
    try:
        exec(code, {})
    except NameError:
        return
    raise AssertionError("annotations were deferred: the host's __future__ flags leaked into the tool")


def test_code_that_does_not_compile_is_left_to_the_child() -> None:
    """A syntax error gives no bytecode: the child compiles and reports it as before."""
    assert cache().bytecode("a", "def handler(:\n") is None


def test_entries_are_per_agent_and_bounded() -> None:
    """One agent's entry is never another's (a first call's speed tells nothing), and old entries go."""
    compiled = cache(max_bytes=2000)
    first = compiled.bytecode("alice", "def handler():\n    return 1\n")
    assert compiled.bytecode("alice", "def handler():\n    return 1\n") is first
    assert compiled.bytecode("bob", "def handler():\n    return 1\n") is not first
    for i in range(40):
        compiled.bytecode("alice", f"def handler():\n    return {i}\n")
    assert compiled._size <= 2000  # noqa: SLF001 - the bound itself is what is tested
    assert compiled.bytecode("alice", "def handler():\n    return 1\n") is not first


def test_the_modules_a_tool_imports_are_read_from_anywhere_in_its_code() -> None:
    code = (
        "import a.b, c as d\n"
        "from dateutil import parser, tz as zone\n"
        "from . import sibling\n"
        "from os.path import *\n"
        "def handler():\n"
        "    from numpy.linalg import norm\n"
        "    import json\n"
    )
    assert imported_modules(code) == (
        "a.b",
        "c",
        "dateutil",
        "dateutil.parser",
        "dateutil.tz",
        "os.path",
        "numpy.linalg",
        "numpy.linalg.norm",
        "json",
    )
    assert imported_modules("def broken(:\n") == ()


@given(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=4))
def test_every_import_form_names_its_module(parts: list[str]) -> None:
    assume(not any(keyword.iskeyword(part) for part in parts))
    dotted = ".".join(parts)
    assert imported_modules(f"import {dotted}\n") == (dotted,)
    assert imported_modules(f"def f():\n    from {dotted} import x as y\n") == (dotted, f"{dotted}.x")
