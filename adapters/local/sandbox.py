"""The local sandbox: tool code runs in bubblewrap namespaces under seccomp, cgroups and rlimits, from pre-started workers.

Design, and why. The promise (DESIGN.md, "Tenancy"): nothing one agent's call does may reach
another agent's call, and it must hold by construction, not by a list of attacks. Two rules give it:
a process that one agent's code has run in, or could have changed, never runs a call for another
agent (as caller or as owner of the code); and everything a call can write or set is its own and
dies with it, within one agent too (its calls may serve different end users).

* **A pristine template per kind of zygote.** A template is one ``python -I -S`` that is pid 1 of
  its own bubblewrap sandbox (user, pid, net, ipc, uts, cgroup and mount namespaces; uid 65534; no
  capabilities; read-only minimal root). It imports what tools commonly use (by flavour, see
  ``zygote_flavor``) and forks zygotes when the host asks, over a unix socket: no tool code ever
  runs in it, it relays nothing of any call, and it keeps none of the descriptors it hands on.
  There is one per environment and flavour (``MAX_TEMPLATES``, least recently used retired first: it
  forks no more, and ends when the last of its zygotes, which live in its pid namespace, has ended).
* **One zygote per pool, and a pool per (caller, owner of the code).** A zygote is a clone of its
  template, made ahead of need (``workers`` pristine ones per kind), and bound to the first pool that
  takes it: the calling agent, the owner of the code, network, environment and flavour
  (``PoolKey``). It serves that pool's calls only, one at a time, so no process ever relays calls
  for two callers or runs two owners' code, and what an environment zygote learns (below) comes
  from, and is seen by, its owner's code alone. The host hands the template, with SCM_RIGHTS, the
  zygote's own control socket, stderr pipe, its cgroup's ``cgroup.procs`` files (the zygote writes
  ``0`` to each before it does anything else: it is confined from its first instruction, and the
  kernel checks the host's rights, which opened them) and, for calls that may reach hosts, an O_PATH
  descriptor of its egress socket; the zygote's first frame tells the host its pid through
  SCM_CREDENTIALS (translated by the kernel into the host's pid namespace), and the host holds a
  pidfd to it. The zygote has user, pid, mount, ipc and network namespaces of its own, with its own
  /proc, /tmp (its working folder), /dev/shm and /dev/pts and a read-only /dev, no capabilities,
  and is non-dumpable: what runs in it (a package of its environment) can name no other zygote, no
  template and no host process. It is their pid 1, except in a zygote for an environment: there the
  process the host holds is pid 1 and only waits for the zygote, which is pid 2, so that its calls'
  children (each pid 1 of its own) never share its pid, and the random generators its packages
  started tell each call's from its own. A new agent's first call costs a clone, not a Python start.
* **Each call in namespaces of its own.** A call's child is cloned from its zygote ahead of the call
  into new user and pid namespaces (it is pid 1 there: ``prlimit``, ``setpriority``, ``sched_*``,
  ``ioprio_set`` and ``kill`` of pid 1, of any pid, of its user or its group reach only the call's
  own processes), makes mount and ipc namespaces (and a network namespace when it may reach hosts),
  mounts its own /proc (which shows only its processes; the zygote has no pid it can name), a
  size-capped /tmp and /dev/shm, keeps /dev read-only, drops every capability and loads the call's
  seccomp layer (no namespaces, no mounts, AF_INET/AF_INET6 sockets only, none at all without
  network), all before its request arrives; if any step fails it reports why and runs no tool code.
  When the call ends the zygote kills that pid 1, and the kernel kills everything else in its pid
  namespace; its files, IPC objects and sockets die with its namespaces. So nothing of a call
  survives it, and nothing needs wiping.
* **The host trusts nothing on the pipe.** Each call carries an id and a random nonce that only the
  host and the zygote know; a result frame that does not echo both, or whose sections exceed their
  caps, ends the zygote and the call is reported ``killed``. The zygote moves code, params and
  output between pipes without decoding them, in buffers it zeroes after each call, so a child
  forked later inherits nothing of the previous call, not even in freed memory. Python code is
  compiled once on the host (``code_cache``), per calling agent, and travels in the payload to the
  one child that runs it. Statuses other than succeeded/failed/killed are decided by the host, and a
  zygote that misses its deadline is killed from outside.
* **Memory is a budget per call, not per process.** Each zygote has its own cgroup (v2, or the v1
  memory and pids hierarchies); before each call its limit is set to what the idle zygote holds
  (its usage less the page cache, which the kernel reclaims) plus ``memory_mb``, so all the call's
  processes together stay within it, and the call's total peak is reported as ``max_rss_kb`` (see
  ``cgroups``). A call's tmpfs pages die with its mount namespace, so no call can lower a later
  call's budget or raise the zygote's floor. Without cgroups (not root), a call may run at most
  ``FALLBACK_CALL_PROCESSES`` processes, each under ``RLIMIT_AS``.
* **Bounded for any number of agents.** Zygotes are kept for all pools together within
  ``max_zygotes`` and ``zygote_memory_mb`` (their idle charge), least recently used first, and
  those idle past ``zygote_idle_s`` are ended (``ZygotePools``).
* **Environments.** A zygote for a tool's requirements imports the environment's packages while
  idle (third-party code, in the process that relays the calls: its pool is per caller and owner
  whatever the tenancy), and the submodules its calls' tools import (read from the code on the
  host: ``code_cache.imported_modules``), so that pool's next calls find them loaded.
* **JavaScript and TypeScript run in single-use Node workers**, pre-started per language and memory
  size inside their own sandbox (Node is pid 1 there) and waiting on stdin: nothing runs in one
  before its one call, so a pre-started worker is as pristine for any agent as a new one, and their
  pools are not per agent. Their filter refuses every socket family but AF_INET/AF_INET6; with
  network, a small launcher forks the egress forwarder before Node starts (see ``seccomp_filter``).
  With the ``quickjs-ng`` package, JavaScript the validator proved needs nothing of Node runs in a
  QuickJS runtime made for that call in a zygote's child, like a Python call (``js_engine``).
* **Egress goes through the host's proxy, to declared hosts only** (``egress_proxy``). A call that
  may reach hosts runs in a zygote of a network pool, which holds an O_PATH descriptor of its own
  egress socket; the call's child forks a loopback forwarder that connects through it (the call
  itself can open no unix socket), and gets ``HTTP(S)_PROXY``. The host binds the socket to the
  call it hands the zygote, gives each call a fresh token that every connection presents first, and
  closes the call's connections when it ends.
* **Tenancy.** ``tenancy="agent"`` (the default) is the above. ``tenancy="shared"`` is a weaker,
  cheaper mode: zygotes without an environment are shared by all agents (one pool per network and
  flavour). Each call still runs in namespaces of its own and nothing of it survives it, but one
  zygote relays every agent's calls (a flaw in the relay would reach them all), and agents' calls
  fork from the same memory (the same address layout and Python hash seed).
* **As root, sandboxes start as the host's nobody** so that uid 65534 inside maps to an
  unprivileged host uid (mapped to root it would own every root file it can see).
* **Without bubblewrap** (``isolation="auto"`` only) the same template and zygotes run as plain
  processes as nobody (when root) under the strict filter (loaded by a small launcher), cgroups
  when available, a new session per call and process-tree killing; calls get no namespaces: each
  zygote's scratch folder is wiped after each call, but files outside it are visible, /tmp and
  /dev/shm are the host's, the network is reachable, and a tool can see (not ptrace) other
  processes. ``metrics.isolation`` says ``process``.
"""

from __future__ import annotations

import binascii
import collections
import importlib.util
import marshal
import os
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from toolrt.adapters.local.cgroups import Cgroups
from toolrt.adapters.local.cgroups import detect as detect_cgroups
from toolrt.adapters.local.code_cache import CompiledTools
from toolrt.adapters.local.egress_proxy import SANDBOX_PROXY_PORT, SANDBOX_SOCKET, EgressGate, EgressProxy, Resolver
from toolrt.adapters.local.environments import preload_modules
from toolrt.adapters.local.process_tree import processes_of_user
from toolrt.adapters.local.quickjs_engine import (
    JS_ENGINE_CHOICES,
    QUICKJS_INSIDE,
    TypeScriptStripper,
    choose_engine,
    find_quickjs,
    prelude_source,
)
from toolrt.adapters.local.sandbox_env import (
    NOBODY,
    bwrap_check,
    bytecode_magic,
    drop_to_nobody,
    find_bwrap,
    find_python,
    namespace_args,
    probe_environment,
    reachable_engine,
    world_executable,
)
from toolrt.adapters.local.sandbox_results import build_result, node_death
from toolrt.adapters.local.seccomp_filter import PROGRAMS, SeccompUnavailable, filter_program
from toolrt.adapters.local.worker_pool import WorkerPool, ZygotePools
from toolrt.adapters.local.workers import (
    CALL_PIDS,
    NodeWorker,
    PythonZygote,
    TemplateRetired,
    Worker,
    ZygoteTemplate,
)
from toolrt.adapters.node import node_problem, usable_node
from toolrt.domain import ExecutionError, IsolationLevel, Language
from toolrt.logs import get_logger
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

__all__ = ["SubprocessSandbox", "probe_environment"]

log = get_logger(__name__)

# Node pools kept at once (each holds `workers` pre-started processes): the most recently used sizes.
MAX_NODE_POOLS = 6
# Templates kept at once (one per environment and flavour, each a sandbox with an idle Python), and
# pools of pristine zygotes (one per template and network), least recently used closed first.
MAX_TEMPLATES = 8
MAX_SPARE_POOLS = 12
# Zygotes kept in all, whatever the number of agents (see ``ZygotePools``), the memory their idle
# ones may hold together, and how long an idle one is kept.
DEFAULT_MAX_ZYGOTES = 64
DEFAULT_ZYGOTE_MEMORY_MB = 512
DEFAULT_ZYGOTE_IDLE_S = 300.0
# Processes and threads a zygote may have before its first call (its own, its namespaces' pid 1 for
# an environment, its spare's, and what a package it imports starts).
ZYGOTE_PIDS = CALL_PIDS + 5
# Where a call's environment (its requirements' packages) appears inside the sandbox, read-only.
ENV_MOUNT = "/opt/toolrt/site"
# A JavaScript or TypeScript tool's node_modules: Node looks there from /tmp/work/tool.js upwards.
NODE_ENV_MOUNT = "/node_modules"


@attrs.frozen
class Environment:
    """An environment a zygote serves: its host folder, that folder's inode (a rebuilt environment
    is another one: zygotes bound to the old folder are not reused), and the modules to pre-import."""

    path: str
    inode: int
    preload: tuple[str, ...] = attrs.field(eq=False)

    @classmethod
    def at(cls, path: str) -> Environment:
        """The environment in ``path``; ExecutionError when it is not there."""
        try:
            inode = os.stat(path).st_ino
        except OSError as exc:
            raise ExecutionError(f"the tool's environment is missing: {exc}") from exc
        return cls(path, inode, preload_modules(Path(path)))


@attrs.frozen
class PoolKey:
    """Which zygotes may serve a call: every call of one pool, and no other, runs in children of the
    same zygotes. ``caller`` and ``owner`` are the calling agent and the owner of the code ("" and ""
    for every call in ``tenancy="shared"``, but for calls with an environment)."""

    caller: str
    owner: str
    network: bool
    environment: Environment | None
    flavor: str


# Zygote flavours: what a zygote imports while idle (``WARM`` in the zygote), chosen per call.
PLAIN = "python"  # the standard modules tools commonly use, but asyncio
ASYNC = "async"  # the same and asyncio (with ssl, inspect, logging and the rest it pulls in)
QUICKJS = "quickjs"  # the QuickJS engine and no Python modules: JavaScript calls on QuickJS


def zygote_flavor(code: str, engine: str | None) -> str:
    """The flavour of zygote a call forks from.

    Every call pays to fork its zygote's memory and to tear the copy down, in proportion to what the
    zygote has imported: asyncio and what it pulls in are 4.5 of a Python zygote's 10 MB, and cost
    every call about 0.7 ms of CPU on a 2-core VM (a fork and exit of Python with the zygote's
    modules took 2.2 ms of CPU with asyncio and 1.4 ms without); QuickJS calls need none of
    Python's modules. So a Python tool whose code never says
    ``async`` (no ``async def``, ``await`` or ``asyncio``) forks from a zygote without asyncio,
    an async one from a zygote that has it, and QuickJS calls from one that has only the engine.
    A guess either way costs time, never correctness: a module a zygote lacks is imported by the
    call that needs it."""
    if engine == "quickjs":
        return QUICKJS
    return ASYNC if "async" in code else PLAIN


# The longest argument the zygote's bytecode may take (Linux refuses one of 128 KiB or more).
BOOT_ARG_CAP = 120 * 1024

# How long a call waits for a busy zygote to come back before starting an extra one: a cold start
# (~30-40 ms) costs more than waiting for a short call, but a long call must not hold others up.
ZYGOTE_WAIT_S = 2.0
# Names a call may offer its environment zygote to import while idle (the zygote keeps 256 at most).
MAX_LEARN_PER_CALL = 64

_ISOLATION_CHOICES = ("auto", "strict")
_TENANCY_CHOICES = ("agent", "shared")
_NODE_VIRTUAL_RESERVE_MB = 2048  # V8 reserves address space up front; the heap itself is capped apart
_NODE_RUNTIME_RESERVE_MB = 96  # what Node itself holds beside the heap that --max-old-space-size caps
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def _warn_once(message: str, **fields: Any) -> None:
    key = message + repr(sorted(fields.items()))
    with _WARN_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(message, **fields)


def _harness(name: str) -> str:
    return resources.files("toolrt.adapters.local").joinpath("harness", name).read_text(encoding="utf-8")


def _zygote_boot(source: str, python: Path) -> list[str]:
    """``-c`` arguments that start the zygote: its bytecode when the sandbox's Python reads ours.

    Compiling the zygote costs a cold start about 3 ms; when both interpreters share a bytecode
    magic number, the code object is compiled here once and passed in base64 (it is host-made, so
    ``marshal`` is safe), otherwise the source is passed. Linux caps one argument at
    ``MAX_ARG_STRLEN`` (128 KiB): past ``BOOT_ARG_CAP`` the source goes instead.
    """
    if bytecode_magic(python) != importlib.util.MAGIC_NUMBER:
        return [source]
    code = binascii.b2a_base64(marshal.dumps(compile(source, "python_zygote.py", "exec")), newline=False).decode()
    if len(code) > BOOT_ARG_CAP:
        return [source]
    boot = "import binascii, marshal, sys\nexec(marshal.loads(binascii.a2b_base64(sys.argv.pop(1))))\n"
    return [boot, code]


class SubprocessSandbox:
    """Runs Python, JavaScript and TypeScript tools in bubblewrap sandboxes from pre-started workers.

    ``isolation="strict"`` refuses to start without working bubblewrap namespaces and the seccomp
    filter (raises :class:`~toolrt.domain.ExecutionError`); ``"auto"`` falls back to process
    isolation, reports ``IsolationLevel.PROCESS`` in every result and logs one warning. ``workers``:
    pristine zygotes kept forked ahead per kind of Python call, zygotes a pool (one calling agent and
    one owner of the code, with ``tenancy="agent"``) may have live at once, and idle Node workers
    kept per language and memory size; 0 keeps none of them (each call forks a zygote, or starts a
    Node worker, of its own). ``max_zygotes``, ``zygote_memory_mb`` and ``zygote_idle_s``
    bound the zygotes kept for all agents together (see ``ZygotePools``). ``cgroups=False`` skips the
    per-call memory cgroup even where it is available. Thread-safe.
    """

    def __init__(
        self,
        isolation: str = "auto",
        workers: int = 2,
        *,
        bwrap: bool | None = None,
        tmp_size_mb: int = 64,
        tenancy: str = "agent",
        cgroups: bool = True,
        egress_resolver: Resolver | None = None,
        js_engine: str = "auto",
        max_zygotes: int = DEFAULT_MAX_ZYGOTES,
        zygote_memory_mb: int = DEFAULT_ZYGOTE_MEMORY_MB,
        zygote_idle_s: float = DEFAULT_ZYGOTE_IDLE_S,
    ) -> None:
        """``bwrap=None`` probes the machine; ``False`` forces process isolation (``strict`` then refuses).

        ``egress_resolver`` replaces the system resolver in the egress proxy (tests map names to
        loopback with it); the proxy itself starts with the first call that may reach a host.
        ``js_engine``: ``auto`` (each JavaScript/TypeScript call on the engine its artifact names),
        ``node`` (all on Node) or ``quickjs`` (all on QuickJS; calls of tools recorded as needing
        Node fail). Without the ``quickjs-ng`` package every call runs on Node, whatever this says.
        """
        if js_engine not in JS_ENGINE_CHOICES:
            raise ExecutionError(f"js_engine must be one of {', '.join(JS_ENGINE_CHOICES)}, got {js_engine!r}")
        if isolation not in _ISOLATION_CHOICES:
            raise ExecutionError(f"isolation must be one of {', '.join(_ISOLATION_CHOICES)}, got {isolation!r}")
        if tenancy not in _TENANCY_CHOICES:
            raise ExecutionError(f"tenancy must be one of {', '.join(_TENANCY_CHOICES)}, got {tenancy!r}")
        if workers < 0:
            raise ExecutionError(f"workers must be zero or more, got {workers}")
        if max_zygotes < 1 or zygote_memory_mb < 1 or zygote_idle_s <= 0:
            raise ExecutionError(
                "max_zygotes and zygote_memory_mb must be 1 or more and zygote_idle_s above 0, got "
                f"{max_zygotes}, {zygote_memory_mb} and {zygote_idle_s}"
            )
        works, why = bwrap_check() if bwrap is not False else (False, "bubblewrap was switched off (bwrap=False)")
        if not works and isolation == "strict":
            raise ExecutionError(f"isolation='strict' needs bubblewrap namespaces, which are unavailable: {why}")
        self._programs: dict[str, bytes] | None
        try:
            self._programs = {kind: filter_program(kind) for kind in PROGRAMS}
        except SeccompUnavailable as exc:
            if isolation == "strict":
                raise ExecutionError(
                    f"isolation='strict' needs the seccomp filter, which is unavailable: {exc}"
                ) from exc
            _warn_once("sandbox running without its seccomp filter", reason=str(exc))
            self._programs = None
        if not works:
            _warn_once("sandbox running without namespaces: rlimits and process-group control only", reason=why)
        self._namespaces = works
        self._workers = workers
        self._tenancy = tenancy
        self._tmp_size = tmp_size_mb * 1024 * 1024
        self._python, self._python_prefix = find_python()
        self._node = usable_node()  # None for an older Node.js too (see node_problem)
        if self._node is not None and drop_to_nobody() and not world_executable(self._node.resolve()):
            try:  # installed under a folder closed to others (/root, mktemp -d): see reachable_engine
                self._node = reachable_engine(self._node)
            except OSError as exc:
                _warn_once(
                    "Node.js is not reachable by the sandbox user (nobody) and could not be made so; "
                    "JavaScript and TypeScript tools cannot run",
                    node=str(self._node),
                    reason=str(exc),
                )
                self._node = None
        self._bwrap = find_bwrap()
        self._prlimit = shutil.which("prlimit")
        self._js_engine = js_engine
        self._quickjs = find_quickjs() if js_engine != "node" else None
        if self._quickjs is not None and drop_to_nobody() and not world_executable(self._quickjs.parent):
            try:
                self._quickjs = reachable_engine(self._quickjs)
            except OSError:
                self._quickjs = None
        self._stripper = TypeScriptStripper()
        self._compiled = CompiledTools(self._python)
        self._python_src = _harness("python_zygote.py")
        self._python_boot = _zygote_boot(self._python_src, self._python)
        self._launcher_src = _harness("seccomp_exec.py")
        self._node_src = _harness("node_worker.js") if self._node else ""
        self._cgroups: Cgroups | None = None
        if cgroups:
            self._cgroups, cgroup_why = detect_cgroups()
            if self._cgroups is None:
                _warn_once(
                    "sandbox memory budget per process only (no cgroups): a call may run "
                    "a few processes, each within memory_mb",
                    reason=cgroup_why,
                )
        self._spawner = ThreadPoolExecutor(max_workers=2, thread_name_prefix="toolrt-sandbox-spawn")
        self._lock = threading.Lock()
        self._live: set[Worker] = set()
        self._closed = False
        # Python: one template per environment and flavour (a sandbox whose pid 1 never runs a call),
        # pristine zygotes forked from it ahead of need, per template and network, and the zygotes
        # bound to pools (``PoolKey``): a call runs only in a child of its own pool's zygotes.
        self._templates: collections.OrderedDict[tuple[Environment | None, str], ZygoteTemplate] = (
            collections.OrderedDict()
        )
        self._template_locks: dict[tuple[Environment | None, str], threading.Lock] = {}
        self._spare_pools: collections.OrderedDict[tuple[bool, Environment | None, str], WorkerPool] = (
            collections.OrderedDict()
        )
        self._zygotes = ZygotePools(
            self._new_zygote,
            self._retire_later,
            per_key=max(1, workers),
            max_zygotes=max_zygotes,
            max_idle_bytes=zygote_memory_mb * 1024 * 1024,
            idle_s=zygote_idle_s,
            keep=workers > 0,
        )
        self._zygote_memory = zygote_memory_mb * 1024 * 1024
        self._sweep_every = min(zygote_idle_s / 4, 30.0)
        self._swept = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="toolrt-sandbox-sweep", daemon=True)
        self._sweeper.start()
        # Node workers serve one call each and nothing runs in them before it: a pre-started one is
        # as pristine for any agent as a new one, so their pools are not per agent. They are split by
        # network (workers for calls that may reach hosts have their egress socket bound in; the
        # others have no way out at all, whatever the proxy does), environment (the node_modules
        # bound read-only) and the language and memory size they were started for.
        self._node_pools: collections.OrderedDict[tuple[Language, int, bool, Environment | None], WorkerPool] = (
            collections.OrderedDict()
        )
        self._egress_resolver = egress_resolver
        self._egress: EgressProxy | None = None
        # The commonest template and its pristine zygotes start now, in the background.
        self._spares(False, None, PLAIN).fill()

    # -- the Sandbox port ---------------------------------------------------------------------------

    @property
    def isolation(self) -> IsolationLevel:
        return IsolationLevel.NAMESPACES if self._namespaces else IsolationLevel.PROCESS

    @property
    def guards(self) -> dict[str, str]:
        """What holds calls apart here, for ``toolrt doctor`` and tests: each guard and its state."""
        return {
            "namespaces": "bubblewrap" if self._namespaces else "off",
            "seccomp": "on" if self._programs is not None else "off",
            "memory": self._cgroups.describe() if self._cgroups is not None else "rlimits per process",
            "tenancy": self._tenancy,
            "calls": "own user, pid, mount and ipc namespaces (network too, with egress)"
            if self._namespaces
            else "a forked child; the zygote's scratch folder wiped after it",
            "egress": "proxy to declared hosts" if self._namespaces else "not confined (no network namespace)",
        }

    def supports(self, language: Language) -> bool:
        if language is Language.PYTHON:
            return True
        return self._node is not None or (language is Language.JAVASCRIPT and self._quickjs is not None)

    def unsupported_reason(self, language: Language) -> str | None:
        """Why ``language`` cannot run here (what to install), or None when it can."""
        return None if self.supports(language) else node_problem() or "Node.js cannot run in the sandbox"

    @property
    def js_engines(self) -> dict[str, Any]:
        """The JavaScript engines here and the setting that chooses between them (``toolrt doctor``)."""
        return {
            "setting": self._js_engine,
            "quickjs": str(self._quickjs) if self._quickjs is not None else None,
            "node": str(self._node) if self._node is not None else None,
        }

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        if self._closed:
            raise ExecutionError("the sandbox is closed")
        if not self.supports(request.language):
            raise ExecutionError(f"cannot run {request.language.value}: {node_problem() or 'Node.js 24 was not found'}")
        bound = log.bind(execution_id=request.execution_id, language=request.language.value)
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return build_result({"status": "cancelled"}, None, started, b"", b"", request, self.isolation)
        if request.language is Language.PYTHON:
            result = self._run_python(request, cancel, started)
        else:
            engine = choose_engine(self._js_engine, request.engine, self._quickjs is not None, self._node is not None)
            if engine == "quickjs":
                result = self._run_quickjs(request, cancel, started)
            elif engine == "refuse":
                result = build_result(
                    {
                        "status": "failed",
                        "error": {
                            "type": "EngineMismatch",
                            "message": "this tool needs Node.js (its validation found Node APIs), but this "
                            "sandbox runs JavaScript on QuickJS only (js_engine='quickjs')",
                        },
                    },
                    None,
                    started,
                    b"",
                    b"",
                    request,
                    self.isolation,
                )
            else:
                result = self._run_node(request, cancel, started)
        bound.debug("sandbox run finished", status=result.status.value, wall_ms=result.metrics.wall_ms)
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = [*self._spare_pools.values(), *self._node_pools.values()]
            templates = list(self._templates.values())
        self._swept.set()
        self._zygotes.close()
        for pool in pools:
            pool.close()
        self._spawner.shutdown(wait=True, cancel_futures=True)
        for pool in pools:
            pool.close()
        with self._lock:
            live, self._live = list(self._live), set()
        # Zygotes first: each is then gone before its template (its parent) goes.
        for worker in sorted({*live, *templates}, key=lambda w: isinstance(w, ZygoteTemplate)):
            worker.kill()
        if self._cgroups is not None:
            self._cgroups.close()
        if self._egress is not None:
            self._egress.close()

    def __enter__(self) -> SubprocessSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pools --------------------------------------------------------------------------------------

    def _pool_key(
        self, request: SandboxRequest, network: bool, environment: Environment | None, flavor: str
    ) -> PoolKey:
        """The pool whose zygotes may serve this call: its caller's and its code owner's own
        (``tenancy="agent"``), or everyone's (``"shared"``). A zygote for an environment imports its
        packages while idle, and what the tools it serves import (third-party code, chosen by the
        code's owner, in the process that relays the calls): it serves one caller and one owner,
        whatever the tenancy."""
        owner = request.owner or request.tenant
        if self._tenancy == "agent" or environment is not None:
            return PoolKey(request.tenant, owner, network, environment, flavor)
        return PoolKey("", "", network, environment, flavor)

    def _pool(
        self, pools: collections.OrderedDict[Any, WorkerPool], key: Any, limit: int, factory: Callable[[], Worker]
    ) -> WorkerPool:
        evicted: list[WorkerPool] = []
        with self._lock:
            pool = pools.get(key)
            if pool is None:
                pool = WorkerPool(self._workers, factory, self._spawner, self._retire)
                pools[key] = pool
                while len(pools) > limit:
                    evicted.append(pools.popitem(last=False)[1])
            else:
                pools.move_to_end(key)
        for old in evicted:
            old.close()  # its idle workers are killed; a call holding one of its workers finishes
        return pool

    def _spares(self, network: bool, environment: Environment | None, flavor: str) -> WorkerPool:
        """Pristine zygotes of one kind, forked from their template ahead of need (``workers`` of
        them): a new pool's first call takes one instead of paying the fork itself."""
        return self._pool(
            self._spare_pools,
            (network, environment, flavor),
            MAX_SPARE_POOLS,
            lambda: self._fork_zygote(network, environment, flavor),
        )

    def _node_pool(
        self, language: Language, memory_mb: int, network: bool, environment: Environment | None = None
    ) -> WorkerPool:
        return self._pool(
            self._node_pools,
            (language, memory_mb, network, environment),
            MAX_NODE_POOLS,
            lambda: self._start_node(language, memory_mb, network, environment),
        )

    def _sweep(self) -> None:
        """Retire idle zygotes past ``zygote_idle_s``, every so often, until the sandbox closes."""
        while not self._swept.wait(self._sweep_every):
            try:
                self._zygotes.sweep()
            except Exception as exc:  # never let the sweeper die: the next round tries again
                log.warning("could not retire idle sandbox zygotes", error=str(exc))

    # -- egress -------------------------------------------------------------------------------------

    def _network(self, request: SandboxRequest) -> bool:
        """Whether this call runs in a worker with an egress socket (it may reach some host).

        Without namespaces there is no network namespace to confine a tool to the proxy: such a
        worker reaches the network directly, with or without ``network`` (see docs/egress.md), so the
        proxy is not offered there.
        """
        if request.egress is None or not request.egress:
            return False
        if not self._namespaces:
            _warn_once("egress is not confined without namespaces: tools reach the network directly")
            return False
        return True

    def _egress_gate(self) -> EgressGate:
        with self._lock:
            if self._closed:
                raise ExecutionError("the sandbox is closed")
            if self._egress is None:
                self._egress = EgressProxy(self._egress_resolver, socket_owner=NOBODY if drop_to_nobody() else None)
            proxy = self._egress
        return proxy.open_gate()

    def _egress_env(self) -> tuple[tuple[str, str], ...]:
        url = f"http://127.0.0.1:{SANDBOX_PROXY_PORT}"
        return tuple((name, url) for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"))

    # -- Python -------------------------------------------------------------------------------------

    def _run_quickjs(self, request: SandboxRequest, cancel: CancelSignal | None, started: float) -> SandboxResult:
        code = request.code
        if request.language is Language.TYPESCRIPT:
            try:
                code = self._stripper.strip(code)
            except ExecutionError as exc:
                doc = {"status": "failed", "error": {"type": "SyntaxError", "message": str(exc)}}
                return build_result(doc, None, started, b"", b"", request, self.isolation)
        # QuickJS has no network API: the call runs in a zygote without an egress socket. Nor has it
        # packages: a tool with requirements imports them, and importing keeps a tool on Node.
        plain = attrs.evolve(request, language=Language.JAVASCRIPT, code=code, egress=None, environment=None)
        return self._run_python(plain, cancel, started, engine="quickjs")

    def _run_python(
        self, request: SandboxRequest, cancel: CancelSignal | None, started: float, engine: str | None = None
    ) -> SandboxResult:
        network = self._network(request)
        environment = Environment.at(request.environment) if request.environment is not None else None
        key = self._pool_key(request, network, environment, zygote_flavor(request.code, engine))
        # Zygotes are reused: a call waits for one of its pool to come back rather than take another.
        worker = self._zygotes.take(key, ZYGOTE_WAIT_S)
        for _ in range(3):
            if worker.alive():
                break
            # It ended while idle (out of memory, or a learned import past its CPU allowance): it
            # never gets the call, which goes to another zygote.
            self._zygotes.forget(key)
            self._retire_later(worker)
            worker = self._zygotes.take(key, ZYGOTE_WAIT_S)
        assert isinstance(worker, PythonZygote) and worker.tenant == key and (worker.gate is not None) == network
        assert worker.environment == environment
        doc: dict[str, Any] | None
        token = None
        if worker.gate is not None:
            # The zygote serves call after call: a fresh token per call keeps a connection an earlier
            # call left queued on the socket from riding this call's grant.
            token = secrets.token_hex(16)
            worker.gate.begin(request.execution_id, request.egress, token=token)
        try:
            bytecode = self._compiled.bytecode(request.tenant, request.code) if engine is None else None
            learn: tuple[str, ...] = ()
            if environment is not None and engine is None:
                # The environment's modules this tool imports (``from dateutil import parser``): its
                # zygote imports them while idle for the next call. The zygote serves this caller's
                # calls of this owner's code only, so what it learns from the owner's code is seen
                # by the owner's code alone.
                learn = tuple(
                    name
                    for name in self._compiled.imports(request.tenant, request.code)
                    if "." in name
                    and name.split(".", 1)[0] in environment.preload
                    and not any(part.startswith("__") for part in name.split("."))
                )[:MAX_LEARN_PER_CALL]
            # With as many zygotes as are kept, this one will likely be retired before its pool calls
            # again: it forks its next call's child only if that call comes.
            next_spare = not self._zygotes.crowded()
            doc, decided, out, err = worker.call(request, cancel, token, engine, bytecode, learn, next_spare)
        except OSError as exc:
            doc, decided, out, err = None, "crashed", b"", b""
            log.warning("python sandbox worker failed", error=str(exc))
        finally:
            if worker.gate is not None:
                # Before the zygote serves anyone else: this call's connections close, its grant goes.
                worker.gate.end()
        log.debug("sandbox zygote served a call", execution_id=request.execution_id, zygote=worker.pid)
        if doc is None or worker.dead:
            self._zygotes.forget(key)
            self._retire(worker)
            if doc is None:
                doc = {"status": decided if decided in ("timed_out", "cancelled") else "failed"}
                if decided == "crashed":
                    doc["error"] = {"type": "SandboxCrashed", "message": "the sandbox worker died during the call"}
        else:
            self._zygotes.give_back(key, worker)
        return build_result(doc, decided, started, out, err, request, self.isolation)

    def _new_zygote(self, key: Hashable) -> Worker:
        """A zygote for a pool that needs one more: a pristine one forked ahead of need (or now, when
        none is ready), bound to the pool from now on."""
        assert isinstance(key, PoolKey)
        worker = self._spares(key.network, key.environment, key.flavor).take(refill=True)
        worker.tenant = key
        return worker

    def _template(self, environment: Environment | None, flavor: str) -> ZygoteTemplate:
        """The running template for an environment and flavour, started when there is none."""
        key = (environment, flavor)
        with self._lock:
            if self._closed:
                raise ExecutionError("the sandbox is closed")
            lock = self._template_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                template = self._templates.get(key)
                if template is not None and template.alive():
                    self._templates.move_to_end(key)
                    return template
            if template is not None:
                self._retire(template)  # it died: its zygotes went with it
            template = self._start_template(environment, flavor)
            with self._lock:
                self._templates[key] = template
                evicted = []
                while len(self._templates) > MAX_TEMPLATES:
                    old_key, old = self._templates.popitem(last=False)
                    self._template_locks.pop(old_key, None)
                    evicted.append((old_key, old))
        for old_key, old in evicted:
            self._drain(old_key, old)
        return template

    def _drain(self, key: tuple[Environment | None, str], template: ZygoteTemplate) -> None:
        """Retire a template that is no longer kept. Its zygotes live in its pid namespace and would
        die with it, whatever call they serve (another agent's, as like as not): it forks no more,
        its pristine and idle zygotes are retired now, those serving a call when their call ends,
        and the template itself when the last of them has ended."""
        environment, flavor = key
        with self._lock:
            spares = [self._spare_pools.pop((network, environment, flavor), None) for network in (False, True)]
        template.drain(self._retire_later)
        for pool in spares:
            if pool is not None:
                pool.close()
        self._zygotes.retire_idle(lambda worker: isinstance(worker, PythonZygote) and worker.template is template)

    def _start_template(self, environment: Environment | None, flavor: str) -> ZygoteTemplate:
        scratch = None if self._namespaces else self._scratch_dir(workdir=False)
        programs = self._programs or {}
        config: dict[str, Any] = {
            "role": "template",
            "namespaces": self._namespaces,
            "flavor": flavor,
            "tmp_size": self._tmp_size,
            "proxy_port": SANDBOX_PROXY_PORT,
            # Each call's own layer on top of the sandbox's filter (without namespaces the sandbox's
            # own filter is already the strict one: see _spawn).
            "call_filter": programs.get("call", b"") if self._namespaces else b"",
            "offline_filter": programs.get("offline", b"") if self._namespaces else b"",
            "forwarder_filter": programs.get("forwarder", b""),
        }
        quickjs_binds: tuple[tuple[Path, str], ...] = ()
        if self._quickjs is not None and flavor == QUICKJS:
            # The engine file alone is bound in (read-only), not the environment it was installed in.
            config["quickjs"] = QUICKJS_INSIDE if self._namespaces else str(self._quickjs)
            config["prelude"] = prelude_source()
            quickjs_binds = ((self._quickjs, QUICKJS_INSIDE),) if self._namespaces else ()
        env_fd = -1
        extra_env: tuple[tuple[str, str], ...] = ()
        if environment is not None:
            # Bound read-only through an fd this (possibly root) process opened: the sandbox user
            # need not reach the host path. Without namespaces the host path itself is used.
            try:
                env_fd = os.open(environment.path, os.O_PATH | os.O_DIRECTORY)
            except OSError as exc:
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
                raise ExecutionError(f"the tool's environment is missing: {exc}") from exc
            config["environment"] = ENV_MOUNT if self._namespaces else environment.path
            config["preload"] = list(environment.preload)
            # Numeric libraries start a thread per core at import: one per call is what a sandbox has.
            extra_env = tuple((name, "1") for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"))
        boot = binascii.b2a_base64(marshal.dumps(config), newline=False).decode()
        cmd = [str(self._python), "-I", "-S", "-c", *self._python_boot, boot]
        host_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = self._spawn(
                cmd,
                [self._python_prefix],
                scratch,
                pass_fds=(env_fd,) if env_fd >= 0 else (),
                extra_env=extra_env,
                extra_binds=quickjs_binds,
                fd_binds=((env_fd, ENV_MOUNT),) if env_fd >= 0 and self._namespaces else (),
                program="zygote" if self._namespaces else "strict",
                stdin=template_end.fileno(),
                stdout=subprocess.DEVNULL,
                nested_userns=True,
            )
        except BaseException:
            host_end.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        finally:
            template_end.close()
            if env_fd >= 0:
                os.close(env_fd)
        template = ZygoteTemplate(proc, host_end, namespaced=self._namespaces, environment=environment, flavor=flavor)
        template.scratch = scratch
        self._track(template)
        template.wait_ready(timeout=30)
        self._confine(template)
        return template

    def _fork_zygote(self, network: bool, environment: Environment | None, flavor: str) -> Worker:
        """A pristine zygote forked from its template, in a cgroup of its own from its first instruction."""
        template = self._template(environment, flavor)
        gate = self._egress_gate() if network else None
        cgroup = None
        if self._cgroups is not None:
            try:
                cgroup = self._cgroups.worker()
                # Bounds from its first instruction: an environment's packages import while idle,
                # before any call sets the call's own (no zygote may hold more than all together).
                cgroup.set_limits(self._zygote_memory, ZYGOTE_PIDS)
            except OSError as exc:
                if cgroup is not None:
                    cgroup.remove()
                    cgroup = None
                _warn_once("could not create a sandbox cgroup; calls keep per-process limits", error=str(exc))
        scratch = None if self._namespaces else self._scratch_dir(workdir=False)
        try:
            try:
                zygote = template.fork_zygote(cgroup, gate, scratch, timeout=30)
            except TemplateRetired:
                # Retired since it was looked up (the start of another kind pushed it out): its
                # successor forks the zygote.
                zygote = self._template(environment, flavor).fork_zygote(cgroup, gate, scratch, timeout=30)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            if gate is not None:
                gate.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        zygote.cgroup = cgroup
        zygote.gate = gate
        self._track(zygote)
        zygote.wait_ready(timeout=30)
        return zygote

    # -- JavaScript / TypeScript -------------------------------------------------------------------

    def _run_node(self, request: SandboxRequest, cancel: CancelSignal | None, started: float) -> SandboxResult:
        network = self._network(request)
        environment = Environment.at(request.environment) if request.environment is not None else None
        pool = self._node_pool(request.language, request.memory_mb, network, environment)
        # Refill after the call, not during it: a Node start competes with the call for the CPU.
        worker = pool.take(refill=False)
        assert isinstance(worker, NodeWorker) and (worker.gate is not None) == network
        if worker.gate is not None:
            worker.gate.begin(request.execution_id, request.egress)
        try:
            doc, decided, out, err = worker.call(request, cancel)
        except BaseException:
            self._retire(worker)
            raise
        finally:
            if worker.gate is not None:
                worker.gate.end()
        if decided is None and "status" not in doc:
            # It died without a result: wait for its exit status to say why.
            self._retire(worker)
            doc.update(node_death(worker.proc.returncode, err, request.memory_mb))
        else:
            self._retire_later(worker)
        pool.fill()
        return build_result(doc, decided, started, out, err, request, self.isolation, worker.proc.returncode)

    def _start_node(
        self, language: Language, memory_mb: int, network: bool, environment: Environment | None = None
    ) -> Worker:
        assert self._node is not None
        scratch = None if self._namespaces else self._scratch_dir(workdir=True)
        if environment is not None and scratch is not None:
            (scratch / "node_modules").symlink_to(environment.path)  # where Node looks from work/tool.js up
        cmd = [
            str(self._node),
            f"--max-old-space-size={memory_mb}",
            "--disable-warning=ExperimentalWarning",
            "-e",
            self._node_src,
        ]
        read_fd, write_fd = os.pipe()
        cmd += [language.value, str(write_fd)]  # what to prepare for; the fd it writes its result to
        if self._prlimit:
            virtual = (memory_mb + _NODE_VIRTUAL_RESERVE_MB) * 1024 * 1024
            cmd = [
                self._prlimit,
                f"--as={virtual}",
                f"--nproc={self._node_nproc()}",
                "--nofile=256",
                "--core=0",
                f"--fsize={16 * 1024 * 1024}",
                "--cpu=600",
                "--",
                *cmd,
            ]
        gate = self._egress_gate() if network else None
        # Node reads NODE_USE_ENV_PROXY when it starts: fetch and http/https then honour HTTP(S)_PROXY,
        # which point at the worker's forwarder to the egress socket. Node itself may open no unix
        # socket (the call's filter): a small launcher forks the forwarder, loads that filter, runs Node.
        env = (*self._egress_env(), ("NODE_USE_ENV_PROXY", "1")) if gate else ()
        ro = [self._node.parent.parent]
        if gate is not None and self._programs is not None:
            config = {
                "role": "node",
                "socket": SANDBOX_SOCKET,
                "proxy_port": SANDBOX_PROXY_PORT,
                "call_filter": self._programs["call"],
                "forwarder_filter": self._programs["forwarder"],
            }
            boot = binascii.b2a_base64(marshal.dumps(config), newline=False).decode()
            cmd = [str(self._python), "-I", "-S", "-c", *self._python_boot, boot, *cmd]
            ro.append(self._python_prefix)
        env_fd = -1
        try:
            if environment is not None and scratch is None:
                # The tool's node_modules at /node_modules, read-only, through a descriptor: Node looks
                # there from /tmp/work/tool.js upwards.
                try:
                    env_fd = os.open(environment.path, os.O_PATH | os.O_DIRECTORY)
                except OSError as exc:
                    raise ExecutionError(f"the tool's environment is missing: {exc}") from exc
            proc = self._spawn(
                cmd,
                ro,
                scratch,
                pass_fds=(write_fd,) if env_fd < 0 else (write_fd, env_fd),
                workdir=True,
                gate=gate,
                extra_env=env,
                fd_binds=((env_fd, NODE_ENV_MOUNT),) if env_fd >= 0 else (),
                program="worker" if gate is not None else "strict",
            )
        except BaseException:
            os.close(read_fd)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if gate is not None:
                gate.close()
            raise
        finally:
            os.close(write_fd)
            if env_fd >= 0:
                os.close(env_fd)
        worker = NodeWorker(proc, scratch, read_fd, namespaced=self._namespaces)
        worker.gate = gate
        self._track(worker)
        ready = select.select([read_fd], [], [], 30)[0] and os.read(read_fd, 1) == b"\n"
        if not ready:
            detail = worker.stderr_tail()
            self._retire(worker)
            raise ExecutionError(f"the Node sandbox worker did not start: {detail or 'no reason given'}")
        self._confine(worker, fixed_mb=memory_mb + _NODE_RUNTIME_RESERVE_MB)
        return worker

    # -- shared -------------------------------------------------------------------------------------

    def _node_nproc(self) -> int:
        """RLIMIT_NPROC for a Node worker (V8 starts about ten threads).

        The kernel counts it per user, and per user namespace: with namespaces each worker has its
        own count, so 64 bounds the worker. Without them every worker of every agent runs as the same
        host user and shares one count, so a fixed 64 would let busy workers starve a new one (and one
        tenant's threads fail another's start). There the worker's pids cgroup is the bound, when it
        has one; else the limit is what the user runs now plus 64.
        """
        if self._namespaces:
            return 64
        if self._cgroups is not None:
            return 1 << 15
        return processes_of_user(NOBODY if drop_to_nobody() else os.getuid()) + 64

    def _confine(self, worker: Worker, fixed_mb: int | None = None) -> None:
        """Move a freshly started worker (no tool code has run in it yet) into a cgroup of its own.

        ``fixed_mb``: a budget for the worker's whole life on top of what it holds now (single-use
        Node workers); zygotes get theirs per call.
        """
        if self._cgroups is None:
            return
        try:
            group = self._cgroups.worker()
        except OSError as exc:
            _warn_once("could not create a sandbox cgroup; calls keep per-process limits", error=str(exc))
            return
        worker.cgroup = group
        try:
            # Twice: a process forked while the first pass moved its parent is caught by the second.
            for _ in range(2):
                group.attach(worker.tree())
            if fixed_mb is not None:
                # What the group is charged beyond its page cache (a kept group may still be charged
                # the cache its last worker read), plus the worker's own budget.
                held = max(0, group.usage() - group.reclaimable())
                group.set_limits(held + fixed_mb * 1024 * 1024, len(worker.tree()) + 64)
        except OSError as exc:
            self._retire(worker)
            raise ExecutionError(f"could not confine a sandbox worker to its cgroup: {exc}") from exc

    def _scratch_dir(self, workdir: bool) -> Path:
        """A private host directory for a worker without namespaces (``workdir``: with ``work/`` inside)."""
        path = Path(tempfile.mkdtemp(prefix="toolrt-sandbox-"))
        if drop_to_nobody():
            os.chown(path, NOBODY, NOBODY)
        if workdir:
            (path / "work").mkdir()
            if drop_to_nobody():
                os.chown(path / "work", NOBODY, NOBODY)
        return path

    def _spawn(
        self,
        cmd: list[str],
        ro: list[Path],
        scratch: Path | None,
        pass_fds: tuple[int, ...],
        workdir: bool = False,
        gate: EgressGate | None = None,
        extra_env: tuple[tuple[str, str], ...] = (),
        extra_binds: tuple[tuple[Path, str], ...] = (),
        fd_binds: tuple[tuple[int, str], ...] = (),
        *,
        program: str = "strict",
        stdin: int = subprocess.PIPE,
        stdout: int = subprocess.PIPE,
        nested_userns: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in a sandbox of its own under the seccomp ``program`` (see ``PROGRAMS``).

        ``nested_userns``: the sandbox may create user namespaces inside (a template's zygotes and
        calls each get namespaces of their own; everything else runs with that refused)."""
        identity: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if drop_to_nobody() else {}
        filter_fd = -1
        seccomp = self._programs[program] if self._programs is not None else None
        if seccomp is not None and self._namespaces:
            filter_fd = os.memfd_create("toolrt-seccomp", 0)
            os.write(filter_fd, seccomp)
            os.lseek(filter_fd, 0, os.SEEK_SET)
            pass_fds = (*pass_fds, filter_fd)
        try:
            if self._namespaces:
                assert self._bwrap is not None
                binds = (((gate.path, SANDBOX_SOCKET),) if gate is not None else ()) + extra_binds
                chdir = "/tmp/work" if workdir else "/tmp"
                args = [
                    str(self._bwrap),
                    *namespace_args(
                        ro,
                        self._tmp_size,
                        chdir,
                        binds=binds,
                        env=extra_env,
                        fd_binds=fd_binds,
                        nested_userns=nested_userns,
                    ),
                ]
                args += ["--as-pid-1"]
                if filter_fd >= 0:
                    args += ["--seccomp", str(filter_fd)]
                full = [*args, "--", *cmd]
                cwd = "/"
            else:
                assert scratch is not None
                full = cmd
                if seccomp is not None:
                    full = [str(self._python), "-I", "-S", "-c", self._launcher_src, seccomp.hex(), *cmd]
                cwd = str(scratch / "work") if workdir else str(scratch)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **dict(extra_env)}
            if not self._namespaces and scratch is not None:
                env.update(HOME=cwd, TMPDIR=str(scratch))
            with self._lock:
                if self._closed:
                    raise ExecutionError("the sandbox is closed")
            return subprocess.Popen(
                full,
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                pass_fds=pass_fds,
                start_new_session=True,
                **identity,
            )
        finally:
            if filter_fd >= 0:
                os.close(filter_fd)

    def _track(self, worker: Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
                raise ExecutionError("the sandbox is closed")
            self._live.add(worker)

    def _retire(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)

    def _retire_later(self, worker: Worker) -> None:
        """Kill a worker now but reap it off the caller's path (the SIGKILL itself is immediate)."""
        worker.signal_kill()
        try:
            self._spawner.submit(self._retire, worker)
        except RuntimeError:  # shutting down: reap here
            self._retire(worker)
