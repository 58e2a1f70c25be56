"""The guards that keep calls apart, each checked from outside: frame checks, tenancy, seccomp, memory budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

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


def _fake(mode: str) -> PythonZygote:
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", FAKE_ZYGOTE, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    worker = PythonZygote(proc, None, namespaced=False)
    worker.wait_ready(10)
    return worker


def _request(**fields: object) -> SandboxRequest:
    return SandboxRequest(
        "guard", Language.PYTHON, "def handler():\n    return 1\n", "handler", {}, 5.0, 64, 65536, **fields
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["wrong-nonce", "wrong-id", "oversized", "no-nonce"])
def test_a_frame_that_does_not_belong_to_the_call_kills_the_worker(mode: str) -> None:
    """A result frame without the call's id and nonce, or over its caps, is never accepted: the worker is stopped."""
    worker = _fake(mode)
    try:
        doc, decided, out, err = worker.call(_request(), None)
        assert decided is None
        assert doc is not None and doc["status"] == "killed"
        assert doc["error"]["type"] == "SandboxProtocolError"
        assert "output" not in doc
        assert worker.dead
    finally:
        worker.kill()


@pytest.mark.parametrize("mode", ["stream-wrong-nonce", "stream-oversized", "stream-bad-stream"])
def test_a_forged_stream_frame_kills_the_worker_and_reaches_no_callback(mode: str) -> None:
    """Stream frames are checked like results: without the call's nonce, within the cap and naming
    stdout or stderr, or the worker is stopped and the caller's on_output hears nothing."""
    worker = _fake(mode)
    heard: list[str] = []
    try:
        doc, decided, _, _ = worker.call(_request(on_output=lambda stream, text: heard.append(text)), None)
        assert decided is None and doc is not None
        assert doc["error"]["type"] == "SandboxProtocolError"
        assert heard == [] and worker.dead
    finally:
        worker.kill()


def test_a_stream_frame_of_the_call_reaches_its_callback() -> None:
    """The same stand-in streaming correctly is heard, then its result is taken."""
    worker = _fake("stream")
    heard: list[tuple[str, str]] = []
    try:
        doc, decided, _, _ = worker.call(_request(on_output=lambda stream, text: heard.append((stream, text))), None)
        assert doc is not None and doc["status"] == "succeeded"
        assert heard == [("stdout", "streamed")]
    finally:
        worker.kill()


def test_a_frame_with_the_call_id_and_nonce_is_accepted() -> None:
    """The same stand-in, answering correctly, is believed: the check rejects only what does not match."""
    worker = _fake("honest")
    try:
        doc, decided, _, _ = worker.call(_request(), None)
        assert decided is None and doc is not None
        assert doc["status"] == "succeeded" and doc["output"] == '"forged"'
        assert not worker.dead
    finally:
        worker.kill()


IDENTITY = """
import os
def handler():
    with open("/proc/%d/stat" % os.getppid()) as f:
        return "%d:%s" % (os.getppid(), f.read().rsplit(")", 1)[1].split()[19])
"""


@pytest.fixture
def per_agent() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=1, tenancy="agent")
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.bwrap
def test_tenancy_agent_never_lets_two_agents_share_a_zygote(per_agent: SubprocessSandbox) -> None:
    """With tenancy='agent', agent A's calls and agent B's calls are served by different zygotes."""
    seen: dict[str, set[str]] = {"agent-a": set(), "agent-b": set()}
    for _ in range(3):
        for agent in seen:
            result = per_agent.run(
                SandboxRequest("t", Language.PYTHON, IDENTITY, "handler", {}, 5.0, 64, 65536, tenant=agent)
            )
            assert result.status is ExecutionStatus.SUCCEEDED
            seen[agent].add(str(result.output))
    assert not seen["agent-a"] & seen["agent-b"]
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
def test_connect_with_sandbox_tenancy_agent_keeps_two_agents_on_separate_workers() -> None:
    """Through the public API, sandbox_tenancy='agent' serves each agent from workers of its own."""
    import toolrt

    schema = {"type": "object", "properties": {}}
    with toolrt.connect("memory", sandbox_tenancy="agent", security_checks=False, sandbox_workers=1) as rt:
        seen = {}
        for agent in ("agent-a", "agent-b"):
            reg = rt.register_tool(
                agent,
                {
                    "name": "whoami",
                    "description": "Which zygote serves me.",
                    "language": "python",
                    "code": IDENTITY,
                    "input_schema": schema,
                },
            )
            runs = {str(rt.execute_tool(agent, reg.tool_id, {}).output) for _ in range(2)}
            seen[agent] = runs
        assert not seen["agent-a"] & seen["agent-b"]


def test_an_unknown_tenancy_is_a_settings_error() -> None:
    """sandbox_tenancy accepts only 'shared' and 'agent'."""
    from toolrt.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="sandbox_tenancy"):
        Settings.load({"sandbox_tenancy": "nobody"}, {})
