"""Zygote flavours: plain Python, async Python and QuickJS calls fork from zygotes of their own.

What a zygote has imported is what each of its calls forks, so the sandbox keeps asyncio out of the
zygotes of tools that never use it and Python's modules out of QuickJS zygotes (``zygote_flavor``).
Checked from inside the calls (what their process has loaded) and, for two agents one of which is
hostile, that sharing a flavour's zygote shares nothing of a call with the next.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.adapters.local.sandbox import ASYNC, PLAIN, QUICKJS, SubprocessSandbox, zygote_flavor
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest, SandboxResult

# Whether the zygote's idle imports are done ("uuid" comes last), and what the call's process holds
# (the module's name spelled in two parts: the word itself would send the tool to the async zygote).
LOADED = """
import sys
def handler():
    return {"warm": "uuid" in sys.modules, "aio": "asy" "ncio" in sys.modules, "quickjs": "_quickjs" in sys.modules}
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(workers=1, js_engine="auto")
    try:
        yield sb
    finally:
        sb.close()


def run(
    sb: SubprocessSandbox,
    code: str,
    tenant: str = "it",
    language: Language = Language.PYTHON,
    engine: str | None = None,
) -> SandboxResult:
    request = SandboxRequest(f"exec-{tenant}", language, code, "handler", {}, 10.0, 128, 64 * 1024, tenant=tenant)
    return sb.run(attrs.evolve(request, engine=engine))


def loaded_when_warm(sb: SubprocessSandbox, code: str) -> dict[str, Any]:
    """What a call of ``code`` finds loaded once its zygote has finished importing while idle."""
    deadline = time.monotonic() + 60
    while True:
        result = run(sb, code)
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert isinstance(result.output, dict)
        if result.output["warm"] or time.monotonic() > deadline:
            return result.output
        time.sleep(0.05)


def test_a_tool_that_never_says_async_forks_from_a_zygote_without_asyncio(sandbox: SubprocessSandbox) -> None:
    found = loaded_when_warm(sandbox, LOADED)
    assert found == {"warm": True, "aio": False, "quickjs": False}


def test_a_tool_that_says_async_forks_from_a_zygote_with_asyncio(sandbox: SubprocessSandbox) -> None:
    found = loaded_when_warm(sandbox, LOADED + "# async helpers may come later\n")
    assert found == {"warm": True, "aio": True, "quickjs": False}


def test_a_plain_tool_that_imports_asyncio_itself_still_runs(sandbox: SubprocessSandbox) -> None:
    # The guess reads the code's text: a tool reaching asyncio by another name pays its import, no more.
    code = "import importlib\ndef handler():\n    return importlib.import_module('as' + 'yncio').run.__name__\n"
    assert "async" not in code
    result = run(sandbox, code)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output == "run"


@pytest.mark.quickjs
@pytest.mark.skipif(find_quickjs() is None, reason="quickjs-ng is not installed (pip install 'toolrt[js]')")
def test_quickjs_calls_fork_from_a_zygote_of_their_own(sandbox: SubprocessSandbox) -> None:
    js = run(sandbox, "function handler() { return 6 * 7; }", language=Language.JAVASCRIPT, engine="quickjs")
    assert js.status is ExecutionStatus.SUCCEEDED and js.output == 42
    assert run(sandbox, LOADED).status is ExecutionStatus.SUCCEEDED
    flavors = {key.flavor for key, _ in sandbox._zygotes.idle()}  # type: ignore[attr-defined]
    assert {PLAIN, QUICKJS} <= flavors
    # And the Python zygotes never load the engine.
    assert loaded_when_warm(sandbox, LOADED)["quickjs"] is False


def test_a_hostile_agents_async_call_leaves_nothing_in_the_async_zygote() -> None:
    """Two agents on one async zygote (shared tenancy, the weaker mode, one worker): the hostile one
    rewrites asyncio and plants a module in its call; the victim's next call on that zygote finds
    asyncio as it was."""
    hostile = """
import asyncio, sys, types
async def handler():
    asyncio.sleep = None
    asyncio.gather = lambda *a, **k: "hijacked"
    sys.modules["planted"] = types.ModuleType("planted")
    sys.modules["planted"].secret_sink = []
    return "planted"
"""
    victim = """
import asyncio, sys
async def handler():
    await asyncio.sleep(0)
    both = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
    return {"gather": both, "planted": "planted" in sys.modules}
"""
    with SubprocessSandbox(workers=1, tenancy="shared") as sb:
        first = run(sb, hostile, tenant="mallory")
        assert first.status is ExecutionStatus.SUCCEEDED and first.output == "planted"
        assert [key.flavor for key, _ in sb._zygotes.idle()].count(ASYNC) == 1  # type: ignore[attr-defined]  # one async pool serves both
        second = run(sb, victim, tenant="alice")
    assert second.status is ExecutionStatus.SUCCEEDED, second.error
    assert second.output == {"gather": ["a", "b"], "planted": False}


@given(st.text(max_size=200))
def test_the_flavour_follows_the_word_async_and_the_engine(code: str) -> None:
    expected = ASYNC if "async" in code else PLAIN
    assert zygote_flavor(code, None) == expected
    assert zygote_flavor(code + "\nasync def f(): pass\n", None) == ASYNC
    assert zygote_flavor(code, "quickjs") == QUICKJS
