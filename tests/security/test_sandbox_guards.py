"""The guards that keep calls apart, each checked from outside: frame checks, tenancy, seccomp, memory budget."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest

from tests.security.conftest import run
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.adapters.local.workers import PythonZygote
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import SandboxRequest

# A stand-in zygote that answers each call with a frame bent the way argv[1] says.
FAKE_ZYGOTE = textwrap.dedent("""
    import json, marshal, os, struct, sys
    mode = sys.argv[1]
    def frame(doc, tail=b""):
        body = json.dumps(doc).encode()
        os.write(1, struct.pack(">I", len(body)) + body + tail)
    def read(n):
        data = b""
        while len(data) < n:
            chunk = os.read(0, n - len(data))
            if not chunk:
                sys.exit(0)
            data += chunk
        return data
    frame({"ready": True})
    while True:
        head = marshal.loads(read(struct.unpack(">I", read(4))[0]))
        read(head["payload"])
        result = json.dumps({"status": "succeeded", "output": json.dumps("forged")}).encode()
        doc = {"id": head["id"], "nonce": head["nonce"], "sizes": [len(result), 0, 0]}
        if mode == "wrong-nonce":
            doc["nonce"] = "0" * 32
        elif mode == "wrong-id":
            doc["id"] = head["id"] + 1
        elif mode == "oversized":
            doc["sizes"] = [len(result), 1 << 30, 0]
        elif mode == "no-nonce":
            del doc["nonce"]
        if mode.startswith("stream"):
            text = b"streamed"
            sdoc = {"id": head["id"], "nonce": head["nonce"], "stream": 1, "size": len(text)}
            if mode == "stream-wrong-nonce":
                sdoc["nonce"] = "0" * 32
            elif mode == "stream-oversized":
                sdoc["size"] = 1 << 20
                text = b"x" * (1 << 20)
            elif mode == "stream-bad-stream":
                sdoc["stream"] = 3
            frame(sdoc, text)
        frame(doc, result)
""")


@contextlib.contextmanager
def _fake(mode: str) -> Iterator[PythonZygote]:
    """The stand-in as the host sees a zygote: its control socket, its stderr, its pid from its first frame."""
    host_end, zygote_end = socket.socketpair()
    host_end.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", FAKE_ZYGOTE, mode],
        stdin=zygote_end.fileno(),
        stdout=zygote_end.fileno(),
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    zygote_end.close()
    assert proc.stderr is not None
    worker = PythonZygote(host_end, os.dup(proc.stderr.fileno()), None, namespaced=False)
    try:
        worker.wait_ready(10)
        assert worker.pid == proc.pid
        yield worker
    finally:
        worker.kill()
        proc.wait(10)
        proc.stderr.close()


def _request(**fields: object) -> SandboxRequest:
    return SandboxRequest(
        "guard",
        Language.PYTHON,
        "def handler():\n    return 1\n",
        "handler",
        {},
        5.0,
        64,
        65536,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("mode", ["wrong-nonce", "wrong-id", "oversized", "no-nonce"])
def test_a_frame_that_does_not_belong_to_the_call_kills_the_worker(mode: str) -> None:
    """A result frame without the call's id and nonce, or over its caps, is never accepted: the worker is stopped."""
    with _fake(mode) as worker:
        doc, decided, out, err = worker.call(_request(), None)
        assert decided is None
        assert doc is not None and doc["status"] == "killed"
        assert doc["error"]["type"] == "SandboxProtocolError"
        assert "output" not in doc
        assert worker.dead


@pytest.mark.parametrize("mode", ["stream-wrong-nonce", "stream-oversized", "stream-bad-stream"])
def test_a_forged_stream_frame_kills_the_worker_and_reaches_no_callback(mode: str) -> None:
    """Stream frames are checked like results: without the call's nonce, within the cap and naming
    stdout or stderr, or the worker is stopped and the caller's on_output hears nothing."""
    heard: list[str] = []
    with _fake(mode) as worker:
        doc, decided, _, _ = worker.call(_request(on_output=lambda stream, text: heard.append(text)), None)
        assert decided is None and doc is not None
        assert doc["error"]["type"] == "SandboxProtocolError"
        assert heard == [] and worker.dead


def test_a_stream_frame_of_the_call_reaches_its_callback() -> None:
    """The same stand-in streaming correctly is heard, then its result is taken."""
    heard: list[tuple[str, str]] = []
    with _fake("stream") as worker:
        doc, decided, _, _ = worker.call(_request(on_output=lambda stream, text: heard.append((stream, text))), None)
        assert doc is not None and doc["status"] == "succeeded"
        assert heard == [("stdout", "streamed")]


def test_a_frame_with_the_call_id_and_nonce_is_accepted() -> None:
    """The same stand-in, answering correctly, is believed: the check rejects only what does not match."""
    with _fake("honest") as worker:
        doc, decided, _, _ = worker.call(_request(), None)
        assert decided is None and doc is not None
        assert doc["status"] == "succeeded" and doc["output"] == '"forged"'
        assert not worker.dead


@pytest.fixture
def per_agent() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=1, tenancy="agent")
    try:
        yield sb
    finally:
        sb.close()


PAIRS = [("agent-a", "agent-a"), ("agent-b", "agent-b"), ("agent-b", "agent-a"), ("agent-a", "agent-b")]


@pytest.mark.bwrap
def test_each_caller_and_code_owner_pair_has_zygotes_of_its_own(
    per_agent: SubprocessSandbox, served: Callable[[], list[int]]
) -> None:
    """With tenancy='agent' (the default), agent A's calls of its own tools, B's of its own, B's of
    A's and A's of B's are each served by zygotes of their own: no process relays calls for two
    callers, or runs two owners' code."""
    seen: dict[tuple[str, str], set[int]] = {pair: set() for pair in PAIRS}
    for _ in range(3):
        for caller, owner in PAIRS:
            request = SandboxRequest(
                "t", Language.PYTHON, "def handler():\n    return 1\n", "handler", {}, 5.0, 64, 65536,
                tenant=caller, owner=owner,
            )  # fmt: skip
            assert per_agent.run(request).status is ExecutionStatus.SUCCEEDED
            seen[(caller, owner)].add(served()[-1])
    for pair, zygotes in seen.items():
        others = set().union(*(z for other, z in seen.items() if other != pair))
        assert not zygotes & others, f"{pair} shared a zygote"
    assert per_agent.guards["tenancy"] == "agent"


PTRACE_PARENT = """
import ctypes, os
def handler():
    libc = ctypes.CDLL(None, use_errno=True)
    results = {}
    for name, nr, args in (("ptrace", 101, (16, os.getppid(), 0, 0)), ("pidfd_open", 434, (os.getppid(), 0)),
                           ("unshare", 272, (0x10000000,)), ("process_vm_readv", 310, (os.getppid(), 0, 0, 0, 0, 0))):
        rc = libc.syscall(nr, *args)
        results[name] = (rc, ctypes.get_errno())
    return results
"""


@pytest.mark.parametrize("bwrap", [None, False], ids=["namespaces", "process"])
def test_the_seccomp_filter_holds_with_and_without_namespaces(bwrap: bool | None) -> None:
    """ptrace, pidfd_open, unshare and process_vm_readv fail with EPERM in both isolation modes."""
    sb = SubprocessSandbox(workers=0, bwrap=bwrap)
    try:
        assert sb.guards["seccomp"] == "on"
        result = run(sb, PTRACE_PARENT)
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output == {name: [-1, 1] for name in ("ptrace", "pidfd_open", "unshare", "process_vm_readv")}
    finally:
        sb.close()


FAN_OUT = """
import os, time
def handler(mb, kids, hold_s=2):
    pids = []
    for _ in range(kids):
        pid = os.fork()
        if pid == 0:
            try:
                block = bytearray(mb * 1024 * 1024)
                for i in range(0, len(block), 4096):
                    block[i] = 1
            except MemoryError:
                os._exit(3)
            time.sleep(hold_s)
            os._exit(0)
        pids.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in pids]
"""


@pytest.mark.bwrap
def test_max_rss_is_the_total_of_the_calls_processes(sandbox: SubprocessSandbox) -> None:
    """Two children holding 60 MB each at once report a peak above 100 MB: the call's total, not one process's."""
    assert sandbox.guards["memory"].startswith("cgroup"), "these machines run toolrt as root, with cgroups"
    result = run(sandbox, FAN_OUT, {"mb": 60, "kids": 2, "hold_s": 0.5}, memory_mb=256)
    assert result.status is ExecutionStatus.SUCCEEDED and result.output == [0, 0]
    assert result.metrics.max_rss_kb > 100 * 1024


@pytest.mark.bwrap
def test_forked_children_share_one_memory_budget(sandbox: SubprocessSandbox) -> None:
    """Eight children of 100 MB each under memory_mb=128: the call's total never passes its budget."""
    result = run(sandbox, FAN_OUT, {"mb": 100, "kids": 8}, memory_mb=128, timeout_s=20.0)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    statuses = result.output
    assert isinstance(statuses, list) and len(statuses) == 8
    assert sum(1 for s in statuses if s == 0) <= 1, "at most one child can hold 100 MB of a 128 MB budget"
    assert result.metrics.max_rss_kb <= 128 * 1024 + 1024
    # And the sandbox keeps serving.
    assert run(sandbox, "def handler():\n    return 'alive'\n").output == "alive"


@pytest.mark.bwrap
def test_connect_keeps_two_agents_on_separate_zygotes_by_default(served: Callable[[], list[int]]) -> None:
    """Through the public API, with default settings, each agent is served by zygotes of its own."""
    import toolrt

    schema = {"type": "object", "properties": {}}
    with toolrt.connect("memory", security_checks=False, sandbox_workers=1) as rt:
        seen = {}
        for agent in ("agent-a", "agent-b"):
            reg = rt.register_tool(
                agent,
                {
                    "name": "whoami",
                    "description": "Returns one.",
                    "language": "python",
                    "code": "def handler():\n    return 1\n",
                    "input_schema": schema,
                },
            )
            for _ in range(2):
                assert rt.execute_tool(agent, reg.tool_id, {}).output == 1
            seen[agent] = set(served()[-2:])
        assert not seen["agent-a"] & seen["agent-b"]


def test_an_unknown_tenancy_is_a_settings_error() -> None:
    """sandbox_tenancy accepts only 'agent' and 'shared'."""
    from toolrt.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="sandbox_tenancy"):
        Settings.load({"sandbox_tenancy": "nobody"}, {})


@pytest.mark.bwrap
def test_a_call_whose_filter_does_not_load_never_runs_tool_code() -> None:
    """Fail closed: when a call's own seccomp layer cannot be loaded (here a program the kernel
    refuses), the call fails saying so, and the tool's code never ran (it would have printed)."""
    sb = SubprocessSandbox(isolation="strict", workers=0)
    try:
        assert sb._programs is not None  # noqa: SLF001 - a broken layer, before the template starts
        sb._programs["offline"] = b"\x01\x01\x00\x00\x00\x00\x00\x00"  # noqa: SLF001 - an invalid BPF opcode
        result = run(sb, "print('tool code ran')\ndef handler():\n    return 'ran'\n")
        assert result.status is ExecutionStatus.FAILED and result.error is not None
        assert result.error.type == "SandboxSetupError" and "seccomp" in result.error.message
        assert result.stdout == "" and result.output is None
    finally:
        sb.close()
