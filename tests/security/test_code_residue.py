"""A Python tool's code, compiled once on the host, never stays in the zygote for its next call.

The host sends each call its bytecode (see ``toolrt.adapters.local.code_cache``); it must travel to
that call's child only. The victim's secret is a constant in its source; the next call, forked from
the same zygote, looks for it in its frames, objects and memory.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

import pytest

from tests.security.conftest import run
from tests.security.test_call_residue import SCAVENGER
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import ExecutionStatus


@pytest.mark.bwrap
def test_a_tools_code_never_reaches_the_next_call_on_the_zygote(served: Callable[[], list[int]]) -> None:
    """The victim's code (a secret constant in it) is absent from the next call's memory, twice over:
    after its first call (compiled on the host) and after a repeated one (bytecode from the cache)."""
    secret = "tok-" + secrets.token_hex(12)
    victim = f"SECRET = {secret!r}\n\ndef handler():\n    return len(SECRET)\n"
    hashes = [hashlib.sha256(secret.encode()).hexdigest()]
    with SubprocessSandbox(isolation="strict", workers=1) as sb:
        for _ in range(2):
            done = run(sb, victim)
            assert done.status is ExecutionStatus.SUCCEEDED, done.error
            found = run(sb, SCAVENGER, {"hashes": hashes}, timeout_s=30.0, memory_mb=512)
            assert found.status is ExecutionStatus.SUCCEEDED, found.error
            assert served()[-1] == served()[-2], "the calls must share a zygote"
            assert found.output["found"] == []
