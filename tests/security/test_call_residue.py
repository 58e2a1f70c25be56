"""A call inherits nothing of an earlier call by another agent: no object, no frame, no freed memory.

The Python zygote forks each call's child from itself, so whatever the zygote held of an earlier
call (its request, its output) would be in the next child's memory, readable by a tool that walks
frames, scans the garbage collector's objects or reads ``/proc/self/mem``. Checked from outside: the
hostile tool returns what it found, and the test looks for the victim's secrets in it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.conftest import ISOLATION_MODES, one_worker_sandbox, run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import ExecutionStatus

# Which zygote served a call: its pid and start time, as the call's child sees its parent.
IDENTITY = """
import os
def zygote():
    with open("/proc/%d/stat" % os.getppid()) as f:
        return "%d:%s" % (os.getppid(), f.read().rsplit(")", 1)[1].split()[19])
"""

VICTIM = (
    IDENTITY
    + """
def handler(token, note):
    print("stdout of the victim", token)
    return {"echo": token, "note": note, "zygote": zygote()}
"""
)

# Looks everywhere a forked child could find the previous call: live frames, every object the
# collector knows, and every readable private mapping of its own memory (heap and anonymous). It is
# given only the SHA-256 of each secret, so a secret found anywhere came from somewhere else.
SCAVENGER = (
    IDENTITY
    + r"""
import ctypes, gc, hashlib, re, sys

PATTERN = re.compile(rb"(?:tok|note)-[0-9a-f]{24}")

def handler(hashes):
    found = set()
    def look(where, data):
        for m in PATTERN.finditer(data):
            if hashlib.sha256(m.group()).hexdigest() in hashes:
                found.add(where)
    frame = sys._getframe()
    while frame is not None:
        look("frame", repr(frame.f_locals).encode())
        frame = frame.f_back
    for obj in gc.get_objects():
        try:
            look("gc", repr(obj).encode("utf-8", "replace"))
        except Exception:
            continue
    # The child is non-dumpable (so /proc/self/mem is closed to it), but ctypes reads its own memory.
    with open("/proc/self/maps") as maps:
        regions = maps.read().splitlines()
    for line in regions:
        parts = line.split()
        name = parts[5] if len(parts) > 5 else ""
        if not parts[1].startswith("r") or (name and name not in ("[heap]", "[stack]")):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        look("memory", ctypes.string_at(start, end - start))
    return {"found": sorted(found), "zygote": zygote()}
"""
)


def _scavenge(sb: SubprocessSandbox, secrets_: list[str]) -> dict[str, Any]:
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in secrets_]
    result = run(sb, SCAVENGER, {"hashes": hashes}, timeout_s=30.0, memory_mb=512)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert isinstance(result.output, dict)
    return result.output


def _settle(sb: SubprocessSandbox) -> None:
    """Warm calls until two in a row run on the same zygote (the pool has stopped replacing it)."""
    seen = None
    for _ in range(20):
        result = run(sb, IDENTITY + "def handler():\n    return zygote()\n")
        if result.output == seen:
            return
        seen = result.output
        time.sleep(0.2)
    pytest.fail("the pool never settled on one zygote")


@pytest.fixture(params=ISOLATION_MODES)
def one_worker(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    sb = one_worker_sandbox(request.param)
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.bwrap
def test_the_next_call_on_a_zygote_finds_nothing_of_the_previous_agents_call(one_worker: SubprocessSandbox) -> None:
    """The victim's params, output and stdout never appear in a later call's frames, objects or memory."""
    token, note = "tok-" + secrets.token_hex(12), "note-" + secrets.token_hex(12)
    _settle(one_worker)
    victim = run(one_worker, VICTIM, {"token": token, "note": note})
    assert victim.status is ExecutionStatus.SUCCEEDED
    assert victim.output["echo"] == token and victim.output["note"] == note
    assert token in victim.stdout
    found = _scavenge(one_worker, [token, note])
    assert found["zygote"] == victim.output["zygote"], (
        "the two calls must share a zygote for this test to mean anything"
    )
    assert found["found"] == []


# Prints and returns its secrets across many buffer chunks: the zygote's stream buffers start small
# and grow, and every byte of every one of them must be zeroed before the next child is forked.
LOUD_VICTIM = (
    IDENTITY
    + """
import sys
def handler(token, note):
    for i in range(3000):
        sys.stdout.write("%05d %s %s\\n" % (i, token, note))
        sys.stderr.write("%05d %s\\n" % (i, note))
    return {"echo": [token] * 2000, "note": note, "zygote": zygote()}
"""
)


@pytest.mark.bwrap
def test_a_loud_call_leaves_nothing_in_any_chunk_of_the_zygote_buffers(one_worker: SubprocessSandbox) -> None:
    """Output spanning many chunks of the zygote's buffers (and past the cap) is gone from the next child."""
    token, note = "tok-" + secrets.token_hex(12), "note-" + secrets.token_hex(12)
    _settle(one_worker)
    victim = run(one_worker, LOUD_VICTIM, {"token": token, "note": note}, max_output_bytes=128 * 1024)
    assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
    assert victim.stdout.count(token) > 1000 and victim.stdout_truncated  # many chunks, then the cap
    found = _scavenge(one_worker, [token, note])
    assert found["zygote"] == victim.output["zygote"], (
        "the two calls must share a zygote for this test to mean anything"
    )
    assert found["found"] == []
