"""Caches and searches answer from what the asker may see: a hostile agent learns nothing of a
victim's private tool from the examples cache, nor from searching while the victim flips it.

Asserted from outside: the sandbox the runtime is given counts what it was asked to run, and a
second process changes the victim's tool on the same SQLite store while the hostile agent searches.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import toolrt
from tests.spawn import children_find_tests
from toolrt.domain import Visibility

SECRET_CODE = "def handler(n: int) -> int:\n    # the victim's pricing rule\n    return n * 7 + 3\n"
EXAMPLES = [{"params": {"n": 1}, "output": 10}, {"params": {"n": 2}, "output": 17}]


def _definition(code: str, name: str) -> dict[str, Any]:
    return {"name": name, "description": "Price.", "language": "python", "code": code, "examples": EXAMPLES}


def test_guessing_a_private_tools_code_with_its_examples_runs_them_like_any_guess() -> None:
    """Mallory registers guesses of Bob's private code, each with Bob's examples: the right guess
    runs every example in the sandbox exactly as a wrong one does, and reports no cache hit."""
    with toolrt.connect("memory", sandbox="inprocess") as rt:
        runs: list[str] = []
        run = rt.ports.sandbox.run

        def counting(request: Any, cancel: Any = None) -> Any:
            runs.append(request.tenant)
            return run(request, cancel)

        rt.ports.sandbox.run = counting  # type: ignore[method-assign]
        rt.register_tool("bob", _definition(SECRET_CODE, "price"))
        assert runs == ["bob", "bob"]
        wrong = SECRET_CODE.replace("# the victim's pricing rule", "# a guess")
        answers = []
        for index, code in enumerate([wrong, SECRET_CODE, wrong, SECRET_CODE]):
            runs.clear()
            reg = rt.register_tool("mallory", _definition(code, f"guess{index}"))
            answers.append((tuple(runs), reg.cache_hit, reg.warnings))
            rt.deregister_tool("mallory", reg.tool_id, purge=True)
        assert answers == [(("mallory", "mallory"), False, ())] * 4


def _flip(data_dir: str, tool_id: str, stop: Any, flips: Any) -> None:
    """Bob, in another process: public, private, public... until told to stop, counting."""
    with toolrt.connect("local", data_dir=data_dir, sandbox="inprocess") as rt:
        while not stop.is_set():
            visibility = Visibility.PRIVATE if flips.value % 2 == 0 else Visibility.PUBLIC
            rt.update_tool("bob", tool_id, visibility=visibility)
            flips.value += 1


def test_a_search_never_returns_a_tool_while_it_is_private(tmp_path: Path) -> None:
    """While Bob flips his tool between public and private from another process, every record a
    search returns to Mallory is one Mallory may see (a public one), however the race falls."""
    data = tmp_path / "data"
    with toolrt.connect("local", data_dir=data, sandbox="inprocess") as rt:
        flipped = rt.register_tool("bob", {**_definition(SECRET_CODE, "price"), "examples": []}, "public").tool
        for i in range(20):
            rt.register_tool("carol", {**_definition(SECRET_CODE + f"# {i}\n", f"price{i}"), "examples": []}, "public")
        ctx = multiprocessing.get_context("spawn")
        stop, flips = ctx.Event(), ctx.Value("i", 0)
        with children_find_tests():
            flipper = ctx.Process(target=_flip, args=(str(data), flipped.tool_id, stop, flips))
            flipper.start()
        try:
            seen_private, searches, found = 0, 0, 0
            deadline = time.monotonic() + 90
            while (searches < 1500 or flips.value < 300) and time.monotonic() < deadline:
                for hit in rt.search_tools("mallory", "price", limit=30):
                    if hit.tool.tool_id == flipped.tool_id:
                        found += 1
                        seen_private += hit.tool.visibility is not Visibility.PUBLIC
                searches += 1
        finally:
            stop.set()
            flipper.join(timeout=60)
    assert flips.value >= 300 and found > 0, (flips.value, found)  # the race was run
    assert seen_private == 0, f"{seen_private} of {searches} searches returned Bob's tool while private"
