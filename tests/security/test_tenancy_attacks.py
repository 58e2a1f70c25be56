"""Attacks on what one agent's call leaves in the sandbox for another agent's later call, through the public API.

Each test has two agents on one local runtime, one of them hostile (the validator's security rules
are off: the OS sandbox is the boundary), and asserts from outside: the victim's results are its own,
the attacker's later calls learn nothing of the victim's, and the runtime keeps its limits. Every
exploit here worked when calls of different agents shared a worker and its /dev, pid 1, IPC
namespace and learned imports; each is now contained because each call gets namespaces of its own
and a zygote serves one (caller, owner) pair only.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import toolrt
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus

pytestmark = pytest.mark.bwrap


def register(
    rt: ToolRuntime, agent: str, name: str, code: str, visibility: str = "private", params: tuple[str, ...] = ()
) -> str:
    definition = {
        "name": name,
        "description": f"{name}.",
        "language": "python",
        "code": code,
        "input_schema": {"type": "object", "properties": {name: {} for name in params}},
    }
    return rt.register_tool(agent, definition, visibility).tool_id


def ok(rt: ToolRuntime, agent: str, tool_id: str, params: dict[str, Any] | None = None, **limits: Any) -> Any:
    result = rt.execute_tool(agent, tool_id, params or {}, **limits)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    return result


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    # One zygote per pool: if anything of a call survived it, the next call would meet it.
    runtime = toolrt.connect(
        "local",
        data_dir=tmp_path_factory.mktemp("tenancy-attacks"),
        isolation="strict",
        security_checks=False,
        sandbox_workers=1,
    )
    try:
        yield runtime
    finally:
        runtime.close()


# -- 1. /dev hijack ----------------------------------------------------------------------------------

DEV_PLANT = """
import os

NAMES = ("stdout", "stderr", "stdin", "fd", "core", "ptmx", "null", "urandom")


def handler(mode=""):
    report = {}
    for name in NAMES:
        path = "/dev/" + name
        if mode == "plant":
            try:
                if os.path.lexists(path):
                    os.unlink(path)
                with open(path, "w"):
                    pass
                report[name] = "planted"
            except OSError as exc:
                report[name] = exc.strerror
        else:
            try:
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path) as f:
                        report[name] = f.read()
            except OSError:
                pass
    return report
"""

DEV_VICTIM = """
def handler(card=""):
    with open("/dev/stdout", "w") as out:
        out.write("charging card " + card + "\\n")
    with open("/dev/stderr", "w") as err:
        err.write("receipt for " + card + "\\n")
    return "charged"
"""


def test_a_call_cannot_replace_dev_entries_that_later_calls_write_to(rt: ToolRuntime) -> None:
    """Mallory replaces /dev/stdout, /dev/stderr and the rest with regular files; Victor's tool then
    writes its output to /dev/stdout and /dev/stderr: his recorded streams hold it, and Mallory's
    next call finds nothing of it."""
    plant = register(rt, "mallory", "dev_plant", DEV_PLANT, params=("mode",))
    victim = register(rt, "victor", "dev_victim", DEV_VICTIM, params=("card",))
    card = "4111-1111-" + secrets.token_hex(4)
    planted = ok(rt, "mallory", plant, {"mode": "plant"}).output
    charged = ok(rt, "victor", victim, {"card": card})
    collected = ok(rt, "mallory", plant, {"mode": "collect"}).output
    assert card not in repr(collected)
    assert f"charging card {card}" in charged.stdout
    assert f"receipt for {card}" in charged.stderr
    assert "planted" not in planted.values(), planted  # /dev is read-only in every call


# -- 2. /dev memory ratchet ---------------------------------------------------------------------------

PARK = """
import os

def handler(n=0):
    parked = {}
    for where in ("/dev", "/dev/shm", "/tmp", "/dev/pts", "/dev/mqueue"):
        path = "%s/park-%d" % (where, n)
        try:
            with open(path, "wb") as f:
                for _ in range(15):
                    f.write(b"x" * (1 << 20))
            parked[where] = os.path.getsize(path)
        except OSError as exc:
            parked[where] = exc.strerror
    return parked
"""

DEV_SURVEY = """
import os

def handler():
    left = {}
    for where in ("/dev", "/dev/shm", "/tmp", "/dev/pts"):
        try:
            left[where] = sorted(name for name in os.listdir(where) if name.startswith("park-"))
        except OSError as exc:
            left[where] = exc.strerror
    # The whole budget is the call's: 56 of its 64 MB, in one block.
    block = bytearray(56 << 20)
    block[::4096] = b"y" * len(block[::4096])
    return left
"""


def _sandbox_memory_bytes(rt: ToolRuntime) -> int | None:
    """What the runtime's sandbox cgroups are charged now, read on the host (None without cgroups)."""
    sandbox = rt.ports.sandbox
    groups = getattr(sandbox, "_cgroups", None)
    if groups is None:
        return None
    parent = Path(groups.memory_parent)
    for name in ("memory.usage_in_bytes", "memory.current"):
        if (parent / name).exists():
            return int((parent / name).read_text())
    return None


def test_files_a_call_parks_die_with_it_and_never_shrink_a_later_budget(rt: ToolRuntime) -> None:
    """Mallory's calls (64 MB each) each park 15 MiB files in /dev, /dev/shm and /tmp: nothing
    survives a call, the sandbox's memory does not grow call after call, and Victor's call finds no
    file and has its whole 64 MB budget."""
    park = register(rt, "mallory", "park", PARK, params=("n",))
    survey = register(rt, "victor", "survey", DEV_SURVEY)
    ok(rt, "victor", survey, memory_mb=64)
    before = _sandbox_memory_bytes(rt)
    for n in range(8):
        ok(rt, "mallory", park, {"n": n}, memory_mb=64)
    after = _sandbox_memory_bytes(rt)
    left = ok(rt, "victor", survey, memory_mb=64).output
    assert left == {"/dev": [], "/dev/shm": [], "/tmp": [], "/dev/pts": []}, left
    if before is not None and after is not None:
        assert after - before < 64 << 20, f"the sandbox grew by {(after - before) >> 20} MB over eight calls"


# -- 3 and 4. pid 1's limits and scheduling -------------------------------------------------------------

ATTEMPT = """
import ctypes, os, resource

def attempt(done, name, fn):
    try:
        fn()
        done[name] = "done"
    except OSError as exc:
        done[name] = exc.strerror
"""

LIMIT = (
    ATTEMPT
    + """
def handler():
    done = {}
    for pid in (1, os.getppid()):
        attempt(done, "nofile-%d" % pid, lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64)))
        attempt(done, "nproc-%d" % pid, lambda: resource.prlimit(pid, resource.RLIMIT_NPROC, (3, 3)))
        attempt(done, "as-%d" % pid, lambda: resource.prlimit(pid, resource.RLIMIT_AS, (1 << 26, 1 << 26)))
    return done
"""
)

RESCHEDULE = (
    ATTEMPT
    + """
def handler():
    done = {}
    for pid in (1, os.getppid()):
        attempt(done, "idle-%d" % pid, lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
        attempt(done, "nice-%d" % pid, lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
        attempt(done, "affinity-%d" % pid, lambda: os.sched_setaffinity(pid, {0}))
    attempt(done, "nice-user", lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19))
    libc = ctypes.CDLL(None, use_errno=True)
    # ioprio_set(IOPRIO_WHO_USER, uid, IOPRIO_CLASS_IDLE): every process of this user
    rc = libc.syscall(251, 3, os.getuid(), 3 << 13)
    done["ioprio-user"] = "done" if rc == 0 else os.strerror(ctypes.get_errno())
    return done
"""
)

SETTLED = """
import ctypes, os, resource

def handler():
    libc = ctypes.CDLL(None, use_errno=True)
    return {
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "nproc_above_3": resource.getrlimit(resource.RLIMIT_NPROC)[0] > 3,
        "as_above_64mb": resource.getrlimit(resource.RLIMIT_AS)[0] > 1 << 26,
        "policy": os.sched_getscheduler(0),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "ioprio": libc.syscall(252, 1, 0),
        "files": len([open("/dev/null") for _ in range(100)]),
    }
"""


@pytest.mark.parametrize(
    ("attack", "what"), [(LIMIT, "limits"), (RESCHEDULE, "scheduling")], ids=["limits", "scheduling"]
)
def test_a_call_cannot_change_the_limits_or_scheduling_of_later_calls(rt: ToolRuntime, attack: str, what: str) -> None:
    """Mallory lowers pid 1's (and her parent's) open-files, process and memory limits, or sets them
    to SCHED_IDLE, nice 19 and one CPU and every process of her user to nice 19 and idle I/O:
    Victor's later calls, and Mallory's own, run with exactly the limits and scheduling of a
    pristine call, and succeed."""
    unsettle = register(rt, "mallory", f"unsettle_{what}", attack)
    settled = register(rt, "victor", f"settled_{what}", SETTLED)
    own = register(rt, "mallory", f"settled_too_{what}", SETTLED)
    pristine = ok(rt, "victor", settled).output
    for _ in range(2):
        ok(rt, "mallory", unsettle)
        after = rt.execute_tool("victor", settled, {})
        assert after.status is ExecutionStatus.SUCCEEDED, after.error
        assert after.output == pristine
    assert ok(rt, "mallory", own).output == pristine


# -- 5. POSIX message queues ----------------------------------------------------------------------------

MQUEUE = """
import ctypes, os

rt = ctypes.CDLL("librt.so.1", use_errno=True)
rt.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]

def handler(mode="", secret=""):
    name = b"/toolrt-drop"
    if mode == "leave":
        q = rt.mq_open(name, os.O_CREAT | os.O_RDWR, 0o666, None)
        if q < 0:
            return "mq_open: " + os.strerror(ctypes.get_errno())
        data = secret.encode()
        return "left" if rt.mq_send(q, data, len(data), 0) == 0 else os.strerror(ctypes.get_errno())
    q = rt.mq_open(name, os.O_RDONLY | os.O_NONBLOCK, 0, None)
    if q < 0:
        return "absent: " + os.strerror(ctypes.get_errno())
    buf = ctypes.create_string_buffer(1 << 13)
    n = rt.mq_receive(q, buf, len(buf), None)
    return "read: " + buf.raw[: max(n, 0)].decode()
"""


def test_a_message_queue_left_by_one_call_is_gone_for_the_next(rt: ToolRuntime) -> None:
    """Victor's call leaves a secret in a POSIX message queue; Mallory's later call cannot open it
    (each call has an IPC namespace of its own), nor can Victor's own next call."""
    queue = register(rt, "victor", "mq", MQUEUE, "public", params=("mode", "secret"))
    secret = "mq-" + secrets.token_hex(8)
    assert ok(rt, "victor", queue, {"mode": "leave", "secret": secret}).output == "left"
    found = ok(rt, "mallory", queue, {"mode": "take"}).output
    assert secret not in found and found.startswith("absent"), found
    assert ok(rt, "victor", queue, {"mode": "take"}).output.startswith("absent")


# -- 7. socket families -------------------------------------------------------------------------------

SOCKETS = """
import socket

FAMILIES = {"netlink": (16, 3, 0), "vsock": (40, 1, 0), "packet": (17, 3, 0),
            "unix_stream": (1, 1, 0), "unix_dgram": (1, 2, 0), "appletalk": (5, 2, 0)}

def handler():
    seen = {}
    for name, (family, kind, proto) in FAMILIES.items():
        try:
            socket.socket(family, kind, proto).close()
            seen[name] = "created"
        except OSError as exc:
            seen[name] = exc.errno
    a, b = socket.socketpair()
    a.sendall(b"ping")
    seen["socketpair"] = b.recv(4).decode()
    return seen
"""


def test_a_tool_gets_no_netlink_vsock_packet_or_unix_socket_but_keeps_socketpair(rt: ToolRuntime) -> None:
    """socket() of AF_NETLINK, AF_VSOCK, AF_PACKET and AF_UNIX (and every family but AF_INET and
    AF_INET6) fails with EPERM in tool code; socketpair still works (asyncio and multiprocessing use it)."""
    probe = register(rt, "mallory", "sockets", SOCKETS)
    seen = ok(rt, "mallory", probe).output
    assert seen == {
        "netlink": 1,
        "vsock": 1,
        "packet": 1,
        "unix_stream": 1,
        "unix_dgram": 1,
        "appletalk": 1,
        "socketpair": "ping",
    }


# -- 8. learned imports read by another owner's code ---------------------------------------------------


@pytest.mark.slow
def test_what_a_callers_own_tools_import_is_never_seen_by_another_owners_tool(tmp_path: Path) -> None:
    """Bea's private tool imports dateutil.easter and dateutil.rrule; Ana's public tool, with the
    same requirements, reports which dateutil modules are loaded when it starts. Called by Bea, after
    Bea's zygote had time to learn her imports, Ana's tool sees none of them."""
    from tests.requirements_world import PARSE_DATE, local_runtime, shared_environments, tool

    private = (
        "from dateutil import easter, rrule\n\n\ndef handler() -> str:\n"
        "    return str(easter.easter(2024)) + str(rrule.DAILY)\n"
    )
    public = (
        "import sys\n\nSEEN = sorted(m for m in sys.modules if m.startswith('dateutil.'))\n"
        "import dateutil\n\n\ndef handler() -> list:\n    return SEEN\n"
    )
    runtime = local_runtime(tmp_path, shared_environments(), security_checks=False)
    try:
        bea = runtime.register_tool("bea", tool(PARSE_DATE, name="bea_dates", code=private)).tool_id
        ana = runtime.register_tool("ana", tool(PARSE_DATE, name="ana_modules", code=public), "public").tool_id
        pristine = runtime.execute_tool("ana", ana, {})
        assert pristine.status is ExecutionStatus.SUCCEEDED, pristine.error
        import time

        for _ in range(6):
            assert runtime.execute_tool("bea", bea, {}).status is ExecutionStatus.SUCCEEDED
            time.sleep(0.2)  # idle time in which Bea's zygote imports what her tool named
        for _ in range(3):
            seen = runtime.execute_tool("bea", ana, {})
            assert seen.status is ExecutionStatus.SUCCEEDED, seen.error
            assert "dateutil.easter" not in seen.output and "dateutil.rrule" not in seen.output, seen.output
    finally:
        runtime.close()


NODE_SOCKETS = """
const net = require('node:net');
const cp = require('node:child_process');

function refused(make) {
  return new Promise((resolve) => {
    try {
      const s = make();
      s.on('error', (e) => resolve(e.code));
      s.on('listening', () => { s.close(); resolve('created'); });
      s.on('connect', () => { s.destroy(); resolve('created'); });
    } catch (e) {
      resolve(e.code || String(e));
    }
  });
}

async function handler() {
  return {
    unix_listen: await refused(() => net.createServer().listen('/tmp/planted.sock')),
    unix_connect: await refused(() => net.connect('/tmp/planted.sock')),
    abstract_listen: await refused(() => net.createServer().listen('\\0planted')),
    // Node's own pipes to a child (socketpair underneath) still work.
    child: cp.spawnSync('/bin/echo', ['ping'], { encoding: 'utf8' }).stdout.trim(),
  };
}
"""


@pytest.mark.node
@pytest.mark.parametrize("network", [False, True], ids=["offline", "with-network"])
def test_a_node_tool_gets_no_unix_socket_either(tmp_path: Path, network: bool) -> None:
    """A Node tool's unix sockets fail with EPERM, with or without network (with network, the
    forwarder that needs one runs before Node, in a process of its own); spawning a child, which
    Node does over socketpairs, still works."""
    from toolrt.adapters.node import find_node

    if find_node() is None:
        pytest.skip("needs Node.js 24")
    extra: dict[str, Any] = {"network_allow": ["api.test:443"]} if network else {}
    with toolrt.connect(
        "local", data_dir=tmp_path, isolation="strict", security_checks=False, sandbox_workers=1, **extra
    ) as runtime:
        definition: dict[str, Any] = {
            "name": "node_sockets",
            "description": "Node sockets.",
            "language": "javascript",
            "code": NODE_SOCKETS,
            "input_schema": {"type": "object", "properties": {}},
        }
        if network:
            definition["network"] = {"allow": ["api.test:443"]}
        tool_id = runtime.register_tool("mallory", definition).tool_id
        seen = ok(runtime, "mallory", tool_id).output
    assert seen == {"unix_listen": "EPERM", "unix_connect": "EPERM", "abstract_listen": "EPERM", "child": "ping"}
