"""The local sandbox: tool code runs in bubblewrap namespaces under seccomp, cgroups and rlimits, from pre-started workers.

Design, and why:

* **Python runs from a zygote.** Each worker is one ``python -I -S`` process inside its own
  bubblewrap sandbox (user, pid, net, ipc, uts, cgroup and mount namespaces; uid 65534; no
  capabilities; read-only minimal root; private size-capped ``/tmp``). It pre-imports common
  modules while idle and forks one child per call, ahead of the call (the child waits for its
  request on a pipe), so a call costs neither an interpreter start nor a fork on its path, and
  every call starts from the same clean state (nothing a call does flows back into the zygote).
* **Nothing a tool runs can reach a process that outlives its call.** The zygote is pid 1 of its
  namespace (``--as-pid-1``: no bubblewrap init holding the host's pipes stays beside it), it is
  non-dumpable (no ptrace, no ``/proc/1/mem``, no ``/proc/1/fd``), and it alone holds the pipes to
  the host; the call's child gets only its own streams. A **seccomp filter** (libseccomp, loaded by
  bubblewrap) refuses ptrace, ``process_vm_*``, pidfd, kcmp, io_uring, userfaultfd, bpf, perf,
  keyring, mount and namespace calls to every worker, Python and Node alike (see
  ``seccomp_filter``). Signals sent from inside the namespace to pid 1 are ignored by the kernel.
* **The host trusts nothing on the pipe.** Each call carries an id and a random nonce that only the
  host and the zygote know; a result frame that does not echo both, or whose sections exceed their
  caps, ends the worker and the call is reported ``killed``: a forged frame is never taken for
  another call's result. The zygote moves code, params and output between pipes without decoding
  them, in buffers it zeroes after each call, so a child forked later (maybe for another agent)
  inherits nothing of the previous call, not even in freed memory.
* **A zygote serves one call at a time, so its pid namespace is the unit of killing.** The child
  calls ``setsid`` and gets its own rlimits (CPU, address space, processes, file size, open files)
  and a fresh work dir. When the call ends, times out or is cancelled, the zygote sends SIGKILL to
  every other process in the namespace (``kill(-1)``), then reaps them (as pid 1 it is their
  reaper). It then wipes ``/tmp``, ``/dev/shm`` and System V IPC objects, so nothing leaks into the
  next call.
* **Memory is a budget per call, not per process.** Each worker has its own cgroup (v2, or the v1
  memory and pids hierarchies) from before any tool code runs; before each call its limit is set to
  what the idle zygote uses plus ``memory_mb``, so all the call's processes together stay within it,
  and the call's total peak is reported as ``max_rss_kb`` (see ``cgroups``). Without cgroups (not
  root), a call may run at most ``FALLBACK_CALL_PROCESSES`` processes, each under ``RLIMIT_AS``.
* **JavaScript and TypeScript run in single-use Node workers**, pre-started per memory size inside
  their own sandbox (Node is pid 1 there) and waiting on stdin; Node cannot fork, so each call takes
  a fresh process. TypeScript goes through ``module.stripTypeScriptTypes``; ``prlimit`` sets the
  rlimits and the worker's cgroup bounds the whole process.
* **Python code is compiled once, on the host** (``code_cache``), per calling agent: each call's
  payload carries the bytecode to its child, which loads it instead of compiling the source. The
  zygote never keeps it, so no later child (another agent's) inherits it.
* **JavaScript on QuickJS, where the validator proved it needs nothing of Node.** With the
  ``quickjs-ng`` package installed (the ``js`` extra), a zygote of its own loads QuickJS while idle
  (and no Python modules: see ``zygote_flavor``), and a
  JavaScript or TypeScript call (TypeScript as stripped at registration) whose artifact names
  ``engine: quickjs`` forks from it like a Python call: a new QuickJS runtime and context in the
  fresh child, nothing of Python exposed to it but a write to the call's own stdout and stderr, the
  QuickJS memory limit and interrupt as a second layer under the cgroup and the deadline. Such a
  call never gets the egress forwarder (QuickJS has no network API). ``js_engine`` chooses
  (``quickjs_engine.JS_ENGINE_CHOICES``).
* **Tenancy.** ``tenancy="shared"`` (the default) lets any agent's call use any worker: the
  guarantees above are what separate them. Zygotes for a tool's requirements are the exception:
  they import the environment's packages while idle, so third-party code lives in the process that
  relays the calls, and each serves one agent only (a package cannot carry one agent's call into
  another's). Such a zygote also imports, after a call, the submodules of its packages the call's
  tool imports (read from the code on the host: ``code_cache.imported_modules``), so that agent's
  next calls find them loaded; shared zygotes never learn from calls, which would tell one agent
  what another's tools import. ``tenancy="agent"`` adds defence in depth: each agent
  gets its own pools of workers, so no process ever serves two agents (the cost: ``workers`` warm
  processes per active agent and zygote flavour, the least recently used pools closed past
  ``max_pools``).
* **The host side never trusts what comes back:** frames are size-capped, streams are cut at
  ``max_output_bytes`` (the worker drains the rest so the tool never blocks), statuses other than
  succeeded/failed/killed are decided by the host, and a worker that misses its deadline is killed
  from outside: killing bubblewrap kills its namespace's pid 1, and with it every process inside.
* **Egress goes through the host's proxy, to declared hosts only** (``egress_proxy``). Every
  sandbox keeps only its own loopback. Workers for calls that may reach hosts (the request carries
  an ``EgressGrant``) form pools of their own, each worker with a unix socket bound in at
  ``/run/toolrt/egress.sock``; the host binds the socket to the call it hands the worker and closes
  the call's connections when it ends. A zygote's calls each get a fresh token that every
  connection presents first, so one left queued by an earlier call is refused. Only such a call gets ``HTTP(S)_PROXY`` and a loopback
  forwarder to the socket; workers of other calls have no socket at all.
* **As root, sandboxes start as the host's nobody** so that uid 65534 inside maps to an
  unprivileged host uid (mapped to root it would own every root file it can see).
* **Without bubblewrap** (``isolation="auto"`` only) the same workers run as plain processes as
  nobody (when root) with rlimits, the seccomp filter (loaded by a small launcher before the worker
  starts), cgroups when available, a new session and process-tree killing: the Python zygote still
  reaps double-forked orphans as their subreaper, but Node descendants that detach and lose their
  parent can escape, files outside the work dir are visible, the network is reachable, and a tool
  can see (not ptrace) other processes. ``metrics.isolation`` says ``process``.
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
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
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
from toolrt.adapters.local.seccomp_filter import SeccompUnavailable, filter_program
from toolrt.adapters.local.worker_pool import WorkerPool
from toolrt.adapters.local.workers import NodeWorker, PythonZygote, Worker
from toolrt.adapters.node import node_problem, usable_node
from toolrt.application.logs import get_logger
from toolrt.domain import ExecutionError, IsolationLevel, Language
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

__all__ = ["SubprocessSandbox", "probe_environment"]

log = get_logger(__name__)

# Node pools kept at once (each holds `workers` pre-started processes): the most recently used sizes.
MAX_NODE_POOLS = 6
# Python pools kept at once, least recently used closed first: one per agent (tenancy="agent"),
# environment, network and flavour, so sized for a few pools per agent.
MAX_AGENT_POOLS = 48
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
_TENANCY_CHOICES = ("shared", "agent")
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
    isolation, reports ``IsolationLevel.PROCESS`` in every result and logs one warning. ``workers``
    idle workers are kept ready per pool (one Python pool, one Node pool per language and memory
    size; with ``tenancy="agent"``, those per agent). ``cgroups=False`` skips the per-call memory
    cgroup even where it is available. Thread-safe.
    """

    def __init__(
        self,
        isolation: str = "auto",
        workers: int = 2,
        *,
        bwrap: bool | None = None,
        tmp_size_mb: int = 64,
        tenancy: str = "shared",
        cgroups: bool = True,
        egress_resolver: Resolver | None = None,
        js_engine: str = "auto",
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
        works, why = bwrap_check() if bwrap is not False else (False, "bubblewrap was switched off (bwrap=False)")
        if not works and isolation == "strict":
            raise ExecutionError(f"isolation='strict' needs bubblewrap namespaces, which are unavailable: {why}")
        try:
            self._seccomp: bytes | None = filter_program()
        except SeccompUnavailable as exc:
            if isolation == "strict":
                raise ExecutionError(
                    f"isolation='strict' needs the seccomp filter, which is unavailable: {exc}"
                ) from exc
            _warn_once("sandbox running without its seccomp filter", reason=str(exc))
            self._seccomp = None
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
        # Least recently used first: pools keyed by agent, language and memory size would otherwise
        # grow with every agent and size, each holding pre-started processes.
        # Pools are also split by network: workers for calls that may reach hosts have their egress
        # socket bound in; the others have no way out at all, whatever the proxy does.
        # And by environment (the requirements' packages, bound read-only): a zygote serves the calls of
        # one environment only, and zygotes for calls without requirements see none at all.
        # And by flavour (``zygote_flavor``): what a zygote preloads is what every call on it pays to
        # fork, so Python tools that never use asyncio and QuickJS calls fork from leaner zygotes.
        self._python_pools: collections.OrderedDict[tuple[str, bool, Environment | None, str], WorkerPool] = (
            collections.OrderedDict()
        )
        self._node_pools: collections.OrderedDict[tuple[str, Language, int, bool, Environment | None], WorkerPool] = (
            collections.OrderedDict()
        )
        self._egress_resolver = egress_resolver
        self._egress: EgressProxy | None = None
        if tenancy == "shared":
            self._python_pool("", False, None, PLAIN).fill()

    # -- the Sandbox port ---------------------------------------------------------------------------

    @property
    def isolation(self) -> IsolationLevel:
        return IsolationLevel.NAMESPACES if self._namespaces else IsolationLevel.PROCESS

    @property
    def guards(self) -> dict[str, str]:
        """What holds calls apart here, for ``toolrt doctor`` and tests: each guard and its state."""
        return {
            "namespaces": "bubblewrap" if self._namespaces else "off",
            "seccomp": "on" if self._seccomp is not None else "off",
            "memory": self._cgroups.describe() if self._cgroups is not None else "rlimits per process",
            "tenancy": self._tenancy,
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
            pools = [*self._python_pools.values(), *self._node_pools.values()]
        for pool in pools:
            pool.close()
        self._spawner.shutdown(wait=True, cancel_futures=True)
        for pool in pools:
            pool.close()
        with self._lock:
            live, self._live = list(self._live), set()
        for worker in live:
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

    def _tenant(self, request: SandboxRequest) -> str:
        return request.tenant if self._tenancy == "agent" else ""

    def _pool(
        self, pools: collections.OrderedDict[Any, WorkerPool], key: Any, limit: int, factory: Callable[[], Worker]
    ) -> WorkerPool:
        evicted: list[WorkerPool] = []
        with self._lock:
            pool = pools.get(key)
            if pool is None:
                pool = WorkerPool(self._workers, factory, self._spawner)
                pools[key] = pool
                while len(pools) > limit:
                    evicted.append(pools.popitem(last=False)[1])
            else:
                pools.move_to_end(key)
        for old in evicted:
            old.close()  # its idle workers are killed; a call holding one of its workers finishes
        return pool

    def _python_pool(self, tenant: str, network: bool, environment: Environment | None, flavor: str) -> WorkerPool:
        return self._pool(
            self._python_pools,
            (tenant, network, environment, flavor),
            MAX_AGENT_POOLS,
            lambda: self._start_zygote(tenant, network, environment, flavor),
        )

    def _node_pool(
        self, tenant: str, language: Language, memory_mb: int, network: bool, environment: Environment | None = None
    ) -> WorkerPool:
        return self._pool(
            self._node_pools,
            (tenant, language, memory_mb, network, environment),
            MAX_NODE_POOLS,
            lambda: self._start_node(tenant, language, memory_mb, network, environment),
        )

    # -- egress -------------------------------------------------------------------------------------

    def _network(self, request: SandboxRequest) -> bool:
        """Whether this call runs in a worker with an egress socket (it may reach some host).

        Without namespaces there is no network namespace to confine a tool to the proxy: such a
        worker reaches the network directly, with or without ``network`` (see the README), so the
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
        # A zygote for an environment has imported its packages: third-party code lives in the process
        # that relays every call it serves. Such a zygote serves one agent only, whatever the tenancy.
        tenant = self._tenant(request) if environment is None else request.tenant
        pool = self._python_pool(tenant, network, environment, zygote_flavor(request.code, engine))
        # Zygotes are reused: a call waits for one to come back rather than starting a cold one.
        worker = pool.take_reusable(ZYGOTE_WAIT_S)
        for _ in range(3):
            if worker.proc.poll() is None:
                break
            # It ended while idle (out of memory, or a learned import past its CPU allowance): it
            # never gets the call, which goes to another zygote.
            self._retire(worker)
            pool.release()
            worker = pool.take_reusable(ZYGOTE_WAIT_S)
        # The first call of a pool starts its zygote itself; the others start in the background.
        # With one zygote, each call would wait for the spare child its previous call left it to fork.
        pool.fill()
        assert isinstance(worker, PythonZygote) and worker.tenant == tenant and (worker.gate is not None) == network
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
            if environment is not None and engine is None and request.owner in ("", request.tenant):
                # The environment's modules this tool imports (``from dateutil import parser``): its
                # zygote, which serves this agent only, imports them while idle for the next call.
                # Only the caller's own tools teach it: another agent's (public) tool must not choose
                # what runs in the zygote that relays the caller's own tools' calls.
                learn = tuple(
                    name
                    for name in self._compiled.imports(request.tenant, request.code)
                    if "." in name
                    and name.split(".", 1)[0] in environment.preload
                    and not any(part.startswith("__") for part in name.split("."))
                )[:MAX_LEARN_PER_CALL]
            doc, decided, out, err = worker.call(request, cancel, token, engine, bytecode, learn)
        except OSError as exc:
            doc, decided, out, err = None, "crashed", b"", b""
            log.warning("python sandbox worker failed", error=str(exc))
        finally:
            if worker.gate is not None:
                # Before the zygote serves anyone else: this call's connections close, its grant goes.
                worker.gate.end()
        if doc is None or worker.dead:
            self._retire(worker)
            pool.release()
            pool.fill()
            if doc is None:
                doc = {"status": decided if decided in ("timed_out", "cancelled") else "failed"}
                if decided == "crashed":
                    doc["error"] = {"type": "SandboxCrashed", "message": "the sandbox worker died during the call"}
        elif not pool.give_back(worker):
            self._retire_later(worker)
        return build_result(doc, decided, started, out, err, request, self.isolation)

    def _start_zygote(self, tenant: str, network: bool, environment: Environment | None, flavor: str) -> Worker:
        scratch = None if self._namespaces else self._scratch_dir(workdir=False)
        base = "/tmp" if scratch is None else str(scratch)
        mode = "ns" if self._namespaces else "proc"
        cmd = [str(self._python), "-I", "-S", "-c", *self._python_boot, mode, base]
        quickjs_binds: tuple[tuple[Path, str], ...] = ()
        # Positional: QuickJS's file and prelude ("" "" but in QuickJS zygotes), the environment's
        # folder and modules ("" "" without one), then the flavour.
        if self._quickjs is not None and flavor == QUICKJS:
            # The engine file alone is bound in (read-only), not the environment it was installed in.
            cmd += [QUICKJS_INSIDE if self._namespaces else str(self._quickjs), prelude_source()]
            quickjs_binds = ((self._quickjs, QUICKJS_INSIDE),) if self._namespaces else ()
        else:
            cmd += ["", ""]
        gate = self._egress_gate() if network else None
        env_fd = -1
        extra_env: tuple[tuple[str, str], ...] = ()
        if environment is not None:
            # Bound read-only through an fd this (possibly root) process opened: the sandbox user
            # need not reach the host path. Without namespaces the host path itself is used.
            try:
                env_fd = os.open(environment.path, os.O_PATH | os.O_DIRECTORY)
            except OSError as exc:
                if gate is not None:
                    gate.close()
                raise ExecutionError(f"the tool's environment is missing: {exc}") from exc
            inside = ENV_MOUNT if self._namespaces else environment.path
            cmd += [inside, ",".join(environment.preload)]
            # Numeric libraries start a thread per core at import: one per call is what a sandbox has.
            extra_env = tuple((name, "1") for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"))
        else:
            cmd += ["", ""]
        cmd.append(flavor)
        try:
            proc = self._spawn(
                cmd,
                [self._python_prefix],
                scratch,
                pass_fds=(env_fd,) if env_fd >= 0 else (),
                gate=gate,
                extra_env=extra_env,
                extra_binds=quickjs_binds,
                fd_binds=((env_fd, ENV_MOUNT),) if env_fd >= 0 and self._namespaces else (),
            )
        except BaseException:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if gate is not None:
                gate.close()
            raise
        finally:
            if env_fd >= 0:
                os.close(env_fd)
        worker = PythonZygote(proc, scratch, namespaced=self._namespaces, tenant=tenant)
        worker.gate = gate
        worker.environment = environment
        self._track(worker)
        worker.wait_ready(timeout=30)
        self._confine(worker)
        if environment is not None and environment.preload:
            worker.confined()  # the zygote imports the environment's packages only now
        return worker

    # -- JavaScript / TypeScript -------------------------------------------------------------------

    def _run_node(self, request: SandboxRequest, cancel: CancelSignal | None, started: float) -> SandboxResult:
        tenant = self._tenant(request)
        network = self._network(request)
        environment = Environment.at(request.environment) if request.environment is not None else None
        pool = self._node_pool(tenant, request.language, request.memory_mb, network, environment)
        # Refill after the call, not during it: a Node start competes with the call for the CPU.
        worker = pool.take(refill=False)
        assert isinstance(worker, NodeWorker) and worker.tenant == tenant and (worker.gate is not None) == network
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
        self, tenant: str, language: Language, memory_mb: int, network: bool, environment: Environment | None = None
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
        # which point at the worker's forwarder (node_worker.js) to the egress socket.
        env = (*self._egress_env(), ("NODE_USE_ENV_PROXY", "1"), ("TOOLRT_EGRESS", SANDBOX_SOCKET)) if gate else ()
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
                [self._node.parent.parent],
                scratch,
                pass_fds=(write_fd,) if env_fd < 0 else (write_fd, env_fd),
                workdir=True,
                gate=gate,
                extra_env=env,
                fd_binds=((env_fd, NODE_ENV_MOUNT),) if env_fd >= 0 else (),
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
        worker = NodeWorker(proc, scratch, read_fd, namespaced=self._namespaces, tenant=tenant)
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
                group.set_limits(group.usage() + fixed_mb * 1024 * 1024, len(worker.tree()) + 64)
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
    ) -> subprocess.Popen[bytes]:
        identity: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if drop_to_nobody() else {}
        filter_fd = -1
        if self._seccomp is not None and self._namespaces:
            filter_fd = os.memfd_create("toolrt-seccomp", 0)
            os.write(filter_fd, self._seccomp)
            os.lseek(filter_fd, 0, os.SEEK_SET)
            pass_fds = (*pass_fds, filter_fd)
        try:
            if self._namespaces:
                assert self._bwrap is not None
                binds = (((gate.path, SANDBOX_SOCKET),) if gate is not None else ()) + extra_binds
                chdir = "/tmp/work" if workdir else "/tmp"
                args = [
                    str(self._bwrap),
                    *namespace_args(ro, self._tmp_size, chdir, binds=binds, env=extra_env, fd_binds=fd_binds),
                ]
                args += ["--as-pid-1"]
                if filter_fd >= 0:
                    args += ["--seccomp", str(filter_fd)]
                full = [*args, "--", *cmd]
                cwd = "/"
            else:
                assert scratch is not None
                full = cmd
                if self._seccomp is not None:
                    full = [str(self._python), "-I", "-S", "-c", self._launcher_src, self._seccomp.hex(), *cmd]
                cwd = str(scratch / "work") if workdir else str(scratch)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **dict(extra_env)}
            if not self._namespaces and scratch is not None:
                env.update(HOME=cwd, TMPDIR=str(scratch))
            with self._lock:
                if self._closed:
                    raise ExecutionError("the sandbox is closed")
            return subprocess.Popen(
                full,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
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
