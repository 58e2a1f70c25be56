"""A call inherits nothing of an earlier call on its zygote: no object, no frame, no freed memory.

The Python zygote forks each call's child from itself, so whatever the zygote held of an earlier
call (its request, its output) would be in the next child's memory, readable by a tool that walks
frames, scans the garbage collector's objects or reads ``/proc/self/mem``. Checked from outside: the
hostile tool returns what it found, and the test looks for the victim's secrets in it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.security.conftest import ISOLATION_MODES, one_worker_sandbox, run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import ExecutionStatus

VICTIM = """
def handler(token, note):
    print("stdout of the victim", token)
    return {"echo": token, "note": note}
"""

# Looks everywhere a forked child could find the previous call: live frames, every object the
# collector knows, and every readable private mapping of its own memory (heap and anonymous). It is
# given only the SHA-256 of each secret, so a secret found anywhere came from somewhere else.
SCAVENGER = r"""
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
    return {"found": sorted(found)}
"""


def _scavenge(sb: SubprocessSandbox, secrets_: list[str]) -> dict[str, Any]:
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in secrets_]
    result = run(sb, SCAVENGER, {"hashes": hashes}, timeout_s=30.0, memory_mb=512)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert isinstance(result.output, dict)
    return result.output


@pytest.fixture(params=ISOLATION_MODES)
def one_worker(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    sb = one_worker_sandbox(request.param)
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.bwrap
def test_the_next_call_on_a_zygote_finds_nothing_of_the_previous_call(
    one_worker: SubprocessSandbox, served: Callable[[], list[int]]
) -> None:
    """The victim's params, output and stdout never appear in a later call's frames, objects or memory,
    even on the same zygote (the same agent's next call: it may serve another end user)."""
    token, note = "tok-" + secrets.token_hex(12), "note-" + secrets.token_hex(12)
    victim = run(one_worker, VICTIM, {"token": token, "note": note})
    assert victim.status is ExecutionStatus.SUCCEEDED
    assert victim.output["echo"] == token and victim.output["note"] == note
    assert token in victim.stdout
    found = _scavenge(one_worker, [token, note])
    assert served()[-1] == served()[-2], "the two calls must share a zygote for this test to mean anything"
    assert found["found"] == []


# Prints and returns its secrets across many buffer chunks: the zygote's stream buffers start small
# and grow, and every byte of every one of them must be zeroed before the next child is forked.
LOUD_VICTIM = """
import sys
def handler(token, note):
    for i in range(3000):
        sys.stdout.write("%05d %s %s\\n" % (i, token, note))
        sys.stderr.write("%05d %s\\n" % (i, note))
    return {"echo": [token] * 2000, "note": note}
"""


@pytest.mark.bwrap
def test_a_loud_call_leaves_nothing_in_any_chunk_of_the_zygote_buffers(
    one_worker: SubprocessSandbox, served: Callable[[], list[int]]
) -> None:
    """Output spanning many chunks of the zygote's buffers (and past the cap) is gone from the next child."""
    token, note = "tok-" + secrets.token_hex(12), "note-" + secrets.token_hex(12)
    victim = run(one_worker, LOUD_VICTIM, {"token": token, "note": note}, max_output_bytes=128 * 1024)
    assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
    assert victim.stdout.count(token) > 1000 and victim.stdout_truncated  # many chunks, then the cap
    found = _scavenge(one_worker, [token, note])
    assert served()[-1] == served()[-2], "the two calls must share a zygote for this test to mean anything"
    assert found["found"] == []


# System V IPC objects live in an IPC namespace, not in any process: each call has one of its own,
# gone with it. Fixed keys, so the next call could attach by key.
IPC_KEYS = (0x7001_0001, 0x7001_0002, 0x7001_0003)
IPC_VICTIM = """
import ctypes
def handler(keys, secret):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shm = libc.shmget(keys[0], 4096, 0o1600)
    address = libc.shmat(shm, None, 0)
    ctypes.memmove(address, secret.encode(), len(secret))
    msg = libc.msgget(keys[1], 0o1600)
    text = (b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00" + secret.encode())
    libc.msgsnd(msg, text, len(secret), 0)
    sem = libc.semget(keys[2], 1, 0o1600)
    return [shm, msg, sem]
"""
IPC_SCAVENGER = """
import ctypes
def handler(keys):
    libc = ctypes.CDLL(None, use_errno=True)
    by_key = [libc.shmget(keys[0], 0, 0), libc.msgget(keys[1], 0), libc.semget(keys[2], 0, 0)]
    listed = {k: open("/proc/sysvipc/" + k).read().splitlines()[1:] for k in ("shm", "msg", "sem")}
    return {"by_key": by_key, "listed": listed}
"""


@pytest.mark.bwrap
def test_system_v_ipc_objects_of_a_call_are_gone_before_the_next_agents_call() -> None:
    """Shared memory, a message queue and a semaphore set one agent's call created (with its
    secret in them) can be neither found by key nor listed by the next call on the zygote."""
    sb = one_worker_sandbox("namespaces")
    try:
        secret = "tok-" + secrets.token_hex(12)
        victim = run(sb, IPC_VICTIM, {"keys": list(IPC_KEYS), "secret": secret})
        assert victim.status is ExecutionStatus.SUCCEEDED, victim.error
        assert all(ident >= 0 for ident in victim.output)  # the objects were made
        found = run(sb, IPC_SCAVENGER, {"keys": list(IPC_KEYS)})
        assert found.status is ExecutionStatus.SUCCEEDED, found.error
        assert found.output == {"by_key": [-1, -1, -1], "listed": {"shm": [], "msg": [], "sem": []}}
    finally:
        sb.close()
