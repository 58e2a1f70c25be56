"""The environment fingerprint: after any sequence of hostile calls, a probe sees the sandbox a pristine call sees.

A probe tool (Python, and JavaScript on Node and on QuickJS) records what a tool can observe of its
surroundings: the files and links under /, /dev, /tmp, /dev/shm and the other writable-looking
places, how full those file systems are, System V IPC objects and POSIX message queues, its own
limits, scheduling, nice value, CPU affinity, I/O priority, umask, signal dispositions and masks,
capabilities and filters, cgroup, environment, working directory, descriptors, the processes it
can see, unix and TCP sockets, the mount table and, in JavaScript, the globals and prototypes. A
hypothesis state machine interleaves hostile mutations (each family an attack from the issues of
this sandbox, and more) by Mallory and by Victor himself with probes by both, and asserts every
probe's fingerprint equals the pristine one. Calls go through the public API on the local profile,
with the validator's security rules off (the OS sandbox is the boundary).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

import toolrt
from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.adapters.node import find_node
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

MQUEUES = ("/fp-drop", "/fp-other")

PROBE = r"""
import ctypes, os, re, resource, signal, socket, stat, sys

WATCHED = ("/dev", "/tmp", "/dev/shm", "/dev/pts", "/run", "/opt", "/var", "/home", "/root", "/etc", "/srv", "/mnt")


def tree(root):
    found = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError as exc:
                found.append([path, exc.strerror])
                continue
            entry = [path, stat.filemode(st.st_mode), st.st_uid, st.st_gid]
            if stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                entry.append(st.st_size)
            found.append(entry)
        if folder.count("/") >= 3:
            dirs[:] = []
    return found


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        return exc.strerror


def handler():
    libc = ctypes.CDLL(None, use_errno=True)
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    rt.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    fp = {"root": sorted(os.listdir("/")), "trees": {d: tree(d) for d in WATCHED}}
    fp["usage"] = {}
    for d in ("/tmp", "/dev", "/dev/shm"):
        s = os.statvfs(d)
        fp["usage"][d] = [s.f_flag, s.f_blocks - s.f_bfree, s.f_files - s.f_ffree]
    fp["sysvipc"] = {k: read("/proc/sysvipc/" + k).splitlines()[1:] for k in ("shm", "msg", "sem")}
    fp["mqueues"] = {}
    for name in MQUEUES:
        q = rt.mq_open(name.encode(), os.O_RDONLY | os.O_NONBLOCK, 0, None)
        fp["mqueues"][name] = "open" if q >= 0 else os.strerror(ctypes.get_errno())
    fp["rlimits"] = {n: list(resource.getrlimit(getattr(resource, n))) for n in sorted(dir(resource)) if n.startswith("RLIMIT_")}
    # RLIMIT_AS is the process's own size at its start plus the call's budget: in 8 MB steps.
    fp["rlimits"]["RLIMIT_AS"] = [v // (8 << 20) for v in fp["rlimits"]["RLIMIT_AS"]]
    fp["sched"] = {}
    for pid in (0, 1):
        try:
            fp["sched"][pid] = [os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority,
                                os.getpriority(os.PRIO_PROCESS, pid), sorted(os.sched_getaffinity(pid)),
                                libc.syscall(252, 1, pid)]
        except OSError as exc:
            fp["sched"][pid] = exc.strerror
    fp["nice_user"] = os.getpriority(os.PRIO_USER, os.getuid())
    fp["umask"] = os.umask(0o022)
    fp["signals"] = {s.name: repr(signal.getsignal(s)) for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP)}
    fp["sigmask"] = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    keep = ("Cap", "NoNewPrivs", "Seccomp", "Sig", "Shd", "Uid", "Gid", "Groups", "Cpus_allowed_list", "Umask")
    fp["status"] = [line for line in read("/proc/self/status").splitlines() if line.startswith(keep)]
    fp["cgroup"] = sorted(read("/proc/self/cgroup").splitlines())
    fp["env"] = dict(os.environ)
    fp["cwd"] = os.getcwd()
    fds = {}
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            fds[fd] = re.sub(r"\[\d+\]", "[]", os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass
    fp["fds"] = fds
    fp["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    fp["ppid"] = os.getppid()
    fp["unix"] = sorted(" ".join(line.split()[4:6] + line.split()[7:]) for line in read("/proc/net/unix").splitlines()[1:])
    fp["tcp"] = sorted(" ".join(line.split()[1:4]) for line in read("/proc/net/tcp").splitlines()[1:])
    fp["hostname"] = socket.gethostname()
    fp["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]
    fp["mounts"] = sorted(" ".join(line.split()[3:6] + line.split(" - ", 1)[1].split()[:1]) for line in read("/proc/self/mountinfo").splitlines())
    fp["planted"] = sorted(m for m in sys.modules if "plant" in m)
    fp["builtins"] = sorted(n for n in dir(__builtins__) if "plant" in n)
    fp["budget"] = len(bytearray(40 << 20))  # most of the call's 64 MB is there
    return fp
""".replace("MQUEUES", repr(MQUEUES))

# Each family one kind of attack on what outlives a call; many leave a detached process holding
# what they made (it must die with the call). Every step ignores its own outcome: only its effect
# on a later probe counts.
MUTATE = r'''
import ctypes, os, resource, signal, socket, subprocess, sys, time


def linger(hold):
    """Leave a detached grandchild holding ``hold`` (a list of objects kept alive) for a minute."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)


def attempt(fn):
    try:
        fn()
    except Exception:
        pass


def handler(family="", n=0):
    libc = ctypes.CDLL(None, use_errno=True)
    if family == "dev":
        for name in ("stdout", "stderr", "stdin", "fd", "core", "ptmx", "null", "zero", "random", "urandom", "tty", "x"):
            path = "/dev/" + name
            attempt(lambda: os.unlink(path))
            attempt(lambda: open(path, "w").write("planted"))
            attempt(lambda: os.symlink("/tmp/evil", path + "-link"))
        attempt(lambda: os.chmod("/dev", 0o777))
    elif family == "files":
        for folder in ("/tmp", "/tmp/work", "/dev/shm", "/dev/pts", "/run", "/var/tmp", os.getcwd()):
            attempt(lambda: open(os.path.join(folder, "planted-%d" % n), "wb").write(b"x" * (1 << 20)))
            attempt(lambda: os.mkdir(os.path.join(folder, "dir-%d" % n)))
        attempt(lambda: os.chmod("/tmp", 0o777))
        attempt(lambda: os.chmod("/dev/shm", 0o700))
        held = open("/tmp/held-%d" % n, "wb")
        held.write(b"y" * (1 << 20))
        linger([held])
    elif family == "ipc":
        libc.shmget(0x7F01_0000 + n, 4096, 0o1666)
        libc.msgget(0x7F02_0000 + n, 0o1666)
        libc.semget(0x7F03_0000 + n, 1, 0o1666)
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        rt.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        for name in MQUEUES:
            rt.mq_open(name.encode(), os.O_CREAT | os.O_RDWR, 0o666, None)
        linger([])
    elif family == "limits":
        for pid in (1, os.getppid(), 0):
            for res, value in ((resource.RLIMIT_NOFILE, 32), (resource.RLIMIT_NPROC, 2), (resource.RLIMIT_AS, 1 << 25),
                               (resource.RLIMIT_CPU, 1), (resource.RLIMIT_FSIZE, 1), (resource.RLIMIT_STACK, 1 << 16),
                               (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_MSGQUEUE, 0)):
                attempt(lambda: resource.prlimit(pid, res, (value, value)))
    elif family == "sched":
        for pid in (1, os.getppid(), 0):
            attempt(lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
            attempt(lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
            attempt(lambda: os.sched_setaffinity(pid, {0}))
            libc.syscall(251, 1, pid, 3 << 13)
        attempt(lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19))
        attempt(lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
        libc.syscall(251, 3, os.getuid(), 3 << 13)
        libc.syscall(251, 2, 0, 3 << 13)
    elif family == "process":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGHUP])
        os.umask(0o777)
        os.environ["PLANTED"] = "1"
        os.chdir("/")
        sys.modules["planted_module"] = type(sys)("planted_module")
        import builtins
        builtins.planted_builtin = 1
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGINT):
            attempt(lambda: os.kill(1, sig))
            attempt(lambda: os.kill(-1, sig))
        linger([])
    elif family == "sockets":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        attempt(lambda: a.bind(b"\0planted-%d" % n))
        for family_, kind in ((socket.AF_UNIX, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_STREAM),
                              (socket.AF_NETLINK, socket.SOCK_RAW)):
            def listen():
                s = socket.socket(family_, kind)
                s.bind(("127.0.0.1", 40000 + n) if family_ == socket.AF_INET else "\0planted-listen-%d" % n)
                s.listen(1)
            attempt(listen)
        linger([a, b])
    elif family == "pty":
        master, slave = os.openpty()
        linger([master, slave])
    elif family == "hostname":
        attempt(lambda: socket.sethostname("planted"))
        libc.unshare(0x04000000)
    return family
'''.replace("MQUEUES", repr(MQUEUES))

PYTHON_FAMILIES = ("dev", "files", "ipc", "limits", "sched", "process", "sockets", "pty", "hostname")

# JavaScript on QuickJS sees only its own runtime: the globals and builtins are what it could change.
QUICKJS_PROBE = """
function handler() {
  const names = (o) => Object.getOwnPropertyNames(o).sort();
  const top = (function () { return this; })();
  return {
    globals: names(top),
    object: names(Object.prototype),
    array: names(Array.prototype),
    string: names(String.prototype),
    push: String(Array.prototype.push),
    json: String(JSON.stringify),
    random: typeof Math.random(),
  };
}
"""

QUICKJS_MUTATE = """
function handler() {
  Object.prototype.planted = 1;
  Array.prototype.push = function () { return 'planted'; };
  String.prototype.plantedToo = 2;
  JSON.stringify = () => 'planted';
  globalThis.planted = { keep: true };
  Math.random = () => 4;
  return 'mutated';
}
"""

NODE_PROBE = """
const fs = require('fs');
const os = require('os');

function tree(root) {
  const found = [];
  const walk = (dir, depth) => {
    let names;
    try { names = fs.readdirSync(dir).sort(); } catch (e) { found.push([dir, e.code]); return; }
    for (const name of names) {
      const path = dir + '/' + name;
      let st;
      try { st = fs.lstatSync(path); } catch (e) { found.push([path, e.code]); continue; }
      const entry = [path, st.mode, st.uid];
      if (st.isSymbolicLink()) entry.push(fs.readlinkSync(path));
      else if (st.isFile()) entry.push(st.size);
      found.push(entry);
      if (st.isDirectory() && depth < 2) walk(path, depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

function read(path) { try { return fs.readFileSync(path, 'utf8'); } catch (e) { return e.code; } }

function handler() {
  const names = (o) => Object.getOwnPropertyNames(o).sort();
  const keep = /^(Cap|NoNewPrivs|Seccomp|Sig|Uid|Gid|Groups|Cpus_allowed_list|Umask)/;
  return {
    root: fs.readdirSync('/').sort(),
    trees: Object.fromEntries(['/dev', '/tmp', '/dev/shm', '/run', '/opt'].map((d) => [d, tree(d)])),
    limits: read('/proc/self/limits'),
    status: read('/proc/self/status').split('\\n').filter((l) => keep.test(l)),
    pids: fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).length,
    unix: read('/proc/net/unix').split('\\n').slice(1).map((l) => l.split(/\\s+/).slice(4, 6).concat(l.split(/\\s+/).slice(7)).join(' ')).sort(),
    sysvipc: ['shm', 'msg', 'sem'].map((k) => read('/proc/sysvipc/' + k).split('\\n').slice(1)),
    env: process.env,
    cwd: process.cwd(),
    umask: process.umask(),
    hostname: os.hostname(),
    globals: names(globalThis),
    object: names(Object.prototype),
  };
}
"""

NODE_MUTATE = """
const fs = require('fs');
const cp = require('child_process');

function handler() {
  const attempt = (fn) => { try { fn(); } catch (e) { /* refused */ } };
  for (const dir of ['/tmp', '/dev/shm', '/dev', '/run', '/tmp/work']) {
    attempt(() => fs.writeFileSync(dir + '/planted-node', 'x'.repeat(1 << 20)));
  }
  attempt(() => fs.unlinkSync('/dev/stdout'));
  attempt(() => fs.writeFileSync('/dev/stdout', 'planted'));
  Object.prototype.planted = 1;
  globalThis.planted = true;
  process.env.PLANTED = '1';
  process.umask(0o777);
  attempt(() => cp.spawn('/bin/sleep', ['60'], { detached: true, stdio: 'ignore' }).unref());
  return 'mutated';
}
"""

MUTATION_PARAMS = {"family": {"type": "string"}, "n": {"type": "integer"}}


def _register(rt: ToolRuntime, agent: str, name: str, language: str, code: str) -> str:
    params = MUTATION_PARAMS if "def handler(family" in code else {}
    schema = {"type": "object", "properties": params}
    definition = {"name": name, "description": f"{name}.", "language": language, "code": code, "input_schema": schema}
    return rt.register_tool(agent, definition).tool_id


def _fingerprint(rt: ToolRuntime, agent: str, tool_id: str) -> Any:
    result = rt.execute_tool(agent, tool_id, {}, memory_mb=64)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    return _normal(result.output)


def _normal(output: Any) -> Any:
    """What legitimately differs between two pristine calls, taken out: nothing but the /proc/self/fd
    entry the probe's own listing opened (its number is the same, its target a fresh directory)."""
    if isinstance(output, dict) and isinstance(output.get("fds"), dict):
        output["fds"] = {fd: target for fd, target in output["fds"].items() if not target.startswith("/proc/")}
    return output


AGENTS = ("victor", "mallory")
ENGINES = ["python"] + (["quickjs"] if find_quickjs() is not None else []) + (["node"] if find_node() else [])


class World:
    """One runtime, every agent's probes and mutators, and the pristine fingerprints."""

    def __init__(self, rt: ToolRuntime) -> None:
        self.rt = rt
        self.probes: dict[tuple[str, str], str] = {}
        self.mutators: dict[tuple[str, str], str] = {}
        sources = {"python": PROBE, "quickjs": QUICKJS_PROBE, "node": NODE_PROBE}
        mutators = {"python": MUTATE, "quickjs": QUICKJS_MUTATE, "node": NODE_MUTATE}
        for agent in AGENTS:
            for engine in ENGINES:
                language = "python" if engine == "python" else "javascript"
                self.probes[(agent, engine)] = _register(rt, agent, f"probe_{engine}", language, sources[engine])
                self.mutators[(agent, engine)] = _register(rt, agent, f"mutate_{engine}", language, mutators[engine])
        self.pristine = {engine: self._settled(engine) for engine in ENGINES}
        for engine in ENGINES[1:]:
            on_node = "process" in self.pristine[engine]["globals"]
            assert on_node == (engine == "node"), f"the {engine} probe did not run on {engine}"

    def _settled(self, engine: str) -> Any:
        """A pristine call's fingerprint: the same from each agent's first calls."""
        seen = [_fingerprint(self.rt, agent, self.probes[(agent, engine)]) for agent in AGENTS for _ in range(2)]
        assert all(fp == seen[0] for fp in seen), "two pristine calls saw different sandboxes"
        return seen[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with toolrt.connect(
        "local",
        data_dir=tmp_path_factory.mktemp("fingerprint"),
        isolation="strict",
        security_checks=False,
        sandbox_workers=1,
    ) as rt:
        yield World(rt)


def test_the_pristine_fingerprint_shows_a_call_alone_in_its_sandbox(world: World) -> None:
    """What a pristine call sees: only its own process (pid 1, no parent it can name), nothing in
    the IPC namespace, no socket, /dev read-only, an empty /tmp and /dev/shm, its own limits."""
    fp = world.pristine["python"]
    assert fp["pids"] == [1] and fp["ppid"] == 0
    assert fp["sysvipc"] == {"shm": [], "msg": [], "sem": []}
    assert set(fp["mqueues"].values()) == {"No such file or directory"}
    assert fp["unix"] == [] and fp["tcp"] == []
    assert fp["usage"]["/dev"][0] & 1  # ST_RDONLY
    assert fp["trees"]["/tmp"] == [["/tmp/work", "drwx------", 65534, 65534]]
    assert fp["trees"]["/dev/shm"] == []
    assert fp["rlimits"]["RLIMIT_NOFILE"] == [256, 256]
    assert all(line.endswith(":/") for line in fp["cgroup"]), fp["cgroup"]  # no zygote's name shows
    for kind in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert f"{kind}:\t0000000000000000" in fp["status"], fp["status"]
    assert "NoNewPrivs:\t1" in fp["status"] and "Seccomp:\t2" in fp["status"]


class Tenancy(RuleBasedStateMachine):
    """Hostile mutations by either agent, probes by either agent on every engine: always pristine."""

    world: World

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    @rule(agent=st.sampled_from(AGENTS), family=st.sampled_from(PYTHON_FAMILIES))
    def mutate_in_python(self, agent: str, family: str) -> None:
        self.steps += 1
        self.world.rt.execute_tool(agent, self.world.mutators[(agent, "python")], {"family": family, "n": self.steps})

    @rule(agent=st.sampled_from(AGENTS), engine=st.sampled_from(ENGINES[1:] or ["python"]))
    def mutate_in_javascript(self, agent: str, engine: str) -> None:
        self.world.rt.execute_tool(agent, self.world.mutators[(agent, engine)], {})

    @rule(agent=st.sampled_from(AGENTS), engine=st.sampled_from(ENGINES))
    def probe(self, agent: str, engine: str) -> None:
        seen = _fingerprint(self.world.rt, agent, self.world.probes[(agent, engine)])
        expected = self.world.pristine[engine]
        assert seen == expected, _difference(expected, seen)


def _difference(expected: Any, seen: Any) -> str:
    if isinstance(expected, dict) and isinstance(seen, dict):
        keys = sorted(set(expected) | set(seen))
        return "; ".join(f"{k}: {expected.get(k)!r} -> {seen.get(k)!r}" for k in keys if expected.get(k) != seen.get(k))
    return f"{expected!r} -> {seen!r}"


def test_no_sequence_of_hostile_calls_changes_what_a_probe_sees(world: World) -> None:
    """Random sequences of mutations from both agents, interleaved with probes from both, on every
    engine: each probe's fingerprint is the pristine one."""
    Tenancy.world = world
    run_state_machine_as_test(
        Tenancy,
        settings=settings(
            max_examples=4, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_every_family_of_mutation_runs_and_is_contained(world: World) -> None:
    """Each family once, from Mallory, then the probes: the property's rules reach every family
    whatever hypothesis draws (it draws few examples to keep the suite fast)."""
    for n, family in enumerate(PYTHON_FAMILIES):
        result = world.rt.execute_tool("mallory", world.mutators[("mallory", "python")], {"family": family, "n": n})
        assert result.status is ExecutionStatus.SUCCEEDED and result.output == family, (family, result.error)
    for engine in ENGINES[1:]:
        world.rt.execute_tool("mallory", world.mutators[("mallory", engine)], {})
    for agent in AGENTS:
        for engine in ENGINES:
            seen = _fingerprint(world.rt, agent, world.probes[(agent, engine)])
            assert seen == world.pristine[engine], _difference(world.pristine[engine], seen)


def test_the_probe_notices_what_it_is_meant_to(world: World) -> None:
    """The probe is not blind: in its own call, what the mutations do shows in its fingerprint."""
    code = (
        MUTATE.replace("def handler(", "def mutate(")
        + "\n"
        + PROBE.replace("def handler(", "def probe(")
        + (
            "\n\ndef handler():\n    mutate('files', 0)\n    mutate('ipc', 0)\n    mutate('process', 0)\n    return probe()\n"
        )
    )
    tool_id = _register(world.rt, "mallory", "self_probe", "python", code)
    seen = _fingerprint(world.rt, "mallory", tool_id)
    pristine = world.pristine["python"]
    for key in ("trees", "usage", "sysvipc", "mqueues", "umask", "env", "cwd", "signals", "sigmask", "pids", "planted"):
        assert seen[key] != pristine[key], key
    assert re.search("planted", repr(seen["trees"]["/tmp"]))
