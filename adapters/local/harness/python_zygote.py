"""toolrt Python zygote: a pristine template forks one zygote per agent, and each zygote one fresh child per call.

Three kinds of process run this file, all started from one ``python -I -S`` inside a sandbox:

* **The template** (the process the host starts: pid 1 of its bubblewrap sandbox, or a bare process
  without namespaces). It imports what tools commonly use while idle and forks zygotes when the host
  asks; no tool code ever runs in it and it relays nothing of any call. Its only channel is a unix
  socket to the host (fd 0): a command ``{"seq": n, "cgroups": k, "gate": bool, "scratch": path}``
  with, as SCM_RIGHTS, the new zygote's control socket, its stderr pipe, ``k`` cgroup.procs files of
  its cgroup(s) and (when ``gate``) an O_PATH descriptor of its egress socket; it answers
  ``{"spawned": n}`` or ``{"failed": n, "error": text}`` and keeps none of the descriptors.
* **A zygote** (a clone of the template, one per (caller, owner, ...) pool on the host). Before
  anything else it writes ``0`` to each cgroup.procs file (it moves itself into its own cgroup),
  then, with namespaces, it is pid 1 of new user, pid, mount, ipc and network namespaces (made by
  the clone) and gives itself a /proc of its own, a private /tmp and /dev/shm, a new /dev/pts and a
  read-only /dev, and drops every capability. Its first frame, ``{"ready": true}``, tells the host
  (SCM_CREDENTIALS, translated by the kernel into the host's pid namespace) the pid of that first
  process, which serves calls on its control socket (below) or, in a zygote for an environment,
  stays pid 1 of the namespaces and forks the zygote proper (pid 2: see ``stay_pid_one``).
* **A call's child** (a clone of the zygote, forked ahead of the call): with namespaces it is pid 1
  of namespaces of its own (user, pid, mount, ipc, network), so everything it can write or set is
  its own and dies with it: its /proc shows only its own processes, and prlimit, setpriority,
  sched_*, ioprio and kill reach nothing else; its /tmp, /dev/shm and /dev/pts are new, /dev is
  read-only, System V IPC and POSIX queues are its own, abstract unix sockets and loopback are its
  own. Then it drops its capabilities and loads the call's seccomp filter (no namespaces, no mounts,
  AF_INET/AF_INET6 sockets only); if any step fails it never runs tool code and reports why.

Protocol on the zygote's control socket, each frame a 4-byte big-endian length and a document:
* host to zygote (trusted, ``marshal``): a call header (``id``, ``nonce``, limits, ``payload`` size)
  followed by that many payload bytes (the child's own request: code, entrypoint, params), or a
  cancel frame ``{"cancel": id}`` while a call runs;
* zygote to host (JSON): one result header per call, echoing the call's ``id`` and ``nonce`` and
  giving the sizes of three raw sections that follow it (the tool's result document, stdout, stderr);
  when the call header asks for ``stream``, stream frames come first (``id``, ``nonce``, ``stream``:
  1 for stdout or 2 for stderr, ``size``, then that many bytes) as the tool prints, within the cap.
The nonce is the host's proof that a frame came from the zygote: it is never given to the child, and
the zygote is non-dumpable, so no tool can read it. The zygote never decodes the payload or the
tool's output: it moves them between pipes through buffers it zeroes after each call, so a child
forked later inherits nothing of this call, not even freed memory.
The tool code reaches this file as data and its params as data; nothing is spliced into source.
A zygote given an egress socket (for calls that may reach hosts) has each spare child fork a
loopback forwarder to it before the call's filter is loaded (see ``start_forwarder``).

A fourth use, ``role: node``: the launcher of a Node worker that may reach hosts: it forks the same
forwarder, loads the call's filter and runs Node (which then cannot open a unix socket itself).

Only C-level standard modules are imported up front (no ``json``, ``signal``, ``typing``: they pull
in ``re`` and ``enum``), so a cold template starts nearly as fast as a bare interpreter.
"""

import _json
import _signal as signal
import _struct as struct
import binascii
import errno
import gc
import marshal
import os
import resource
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
else:
    Any = object  # annotations are evaluated at runtime here, and typing would cost a cold start

# Host-made (so ``marshal`` is safe): what this process is and serves. See ``SubprocessSandbox``.
CONFIG = marshal.loads(binascii.a2b_base64(sys.argv[1]))
ROLE = CONFIG["role"]  # "template" or "node"
NAMESPACES = bool(CONFIG.get("namespaces"))  # each zygote and each call in namespaces of its own
# JavaScript on QuickJS (see ``run_js_tool``): where the ``_quickjs`` extension is, as this process
# sees it ("" when the host offers no QuickJS), and the prelude every JS context starts with.
QUICKJS = CONFIG.get("quickjs", "")
JS_PRELUDE = CONFIG.get("prelude", "")
# The environment of the tools' requirements (bound read-only), and the modules of the packages they
# named, which each zygote (never the template) imports while idle: after the standard library on
# sys.path, so no package can stand in for a standard module.
ENVIRONMENT = CONFIG.get("environment", "")
PRELOAD = list(CONFIG.get("preload", ()))
# "python", "async" or "quickjs": which modules the template imports while idle (see ``WARM``).
FLAVOR = CONFIG.get("flavor", "async")
TMP_SIZE = int(CONFIG.get("tmp_size", 64 << 20))  # each call's /tmp and /dev/shm
CALL_FILTER = CONFIG.get("call_filter", b"")  # the seccomp layer each call loads (BPF); b"": none here
OFFLINE_FILTER = CONFIG.get("offline_filter", b"")  # the same for a call that may reach no host: no sockets
FORWARDER_FILTER = CONFIG.get("forwarder_filter", b"")
PROXY_PORT = int(CONFIG.get("proxy_port", 3128))  # where a call's egress forwarder listens, on its loopback
if ENVIRONMENT:
    sys.path.append(ENVIRONMENT)
NPROC_SLACK = 64
TOOL_FILE = "tool.py"
CHUNK = 1 << 16
FIRST_CHUNK = 1 << 12
ZEROS = memoryview(bytes(CHUNK))
_LIMIT_ERRNO = {errno.EFBIG: "file_size", errno.EMFILE: "open_files", errno.ENFILE: "open_files", errno.EAGAIN: "processes"}
SETUP_FAILED = 72  # the exit status of a zygote that could not set itself up (its stderr says why)

# A zygote's own: its control socket to the host, its egress socket (an O_PATH descriptor; -1: none)
# and, without namespaces, the scratch folder its calls work in. Set by ``become_zygote``.
CTL = -1
GATE = -1
BASE = "/tmp"
SELF = 0
# The uid and gid every namespace maps (the sandbox's user in the template's namespace).
UID = os.getuid()
GID = os.getgid()


def _prctl(option: int, value: int) -> None:
    NATIVE.libc.prctl(option, value, 0, 0, 0)


def _no_json(obj: Any) -> Any:
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def dumps(obj: Any) -> str:
    """``json.dumps(obj, allow_nan=False)`` through the C encoder, without importing ``json``."""
    encode = _json.make_encoder(
        {}, _no_json, _json.encode_basestring_ascii, None, ": ", ", ", False, False, False
    )
    return "".join(encode(obj, 0))


def read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    head = read_exact(fd, 4)
    if head is None:
        return None
    body = read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else marshal.loads(body)


def write_all(fd: int, views: list[Any]) -> None:
    """``writev`` every buffer, resuming after a partial write (a signal can cut one short)."""
    pending = [memoryview(v).cast("B") for v in views if len(v)]
    while pending:
        done = os.writev(fd, pending[:512])
        while done and pending:
            if done >= len(pending[0]):
                done -= len(pending[0])
                pending.pop(0)
            else:
                pending[0] = pending[0][done:]
                done = 0


def write_frame(fd: int, doc: dict[str, Any], tail: list[Any] = []) -> None:  # noqa: B006 (never mutated)
    body = dumps(doc).encode()
    write_all(fd, [struct.pack(">I", len(body)) + body, *tail])


class Sink:
    """One stream of the call, kept in zeroed-after-use chunks up to ``cap`` bytes.

    Reads go straight into the chunks (``readv``): no intermediate ``bytes`` object ever holds the
    call's data, so nothing of it survives in the zygote's freed memory once :meth:`wipe` has run.
    Chunks start at 4 KiB and double up to 64 KiB: most calls print little and return a small
    document, and every page the zygote allocates, fills or zeroes while a spare child shares its
    memory is a copy-on-write fault.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytearray] = []
        self.used = 0  # bytes read into the last chunk
        self.size = 0
        self.over = False
        self.fresh: Any = None  # the bytes the last read kept (a view into a chunk), for streaming

    def read_from(self, fd: int, scratch: bytearray) -> bool:
        """Read what is there; False at end of file."""
        self.fresh = None
        if self.size < self.cap:
            if not self.chunks or self.used == len(self.chunks[-1]):
                self.chunks.append(bytearray(min(CHUNK, FIRST_CHUNK << len(self.chunks))))
                self.used = 0
            last = self.chunks[-1]
            room = min(len(last) - self.used, self.cap - self.size)
            n = os.readv(fd, [memoryview(last)[self.used:self.used + room]])
            if n:
                self.fresh = memoryview(last)[self.used:self.used + n]
                self.used += n
                self.size += n
            return n > 0
        n = os.readv(fd, [scratch])
        if n:
            self.over = True
        return n > 0

    def views(self) -> list[memoryview]:
        """What is kept, as views (none once ``size`` is set to 0: a section the host is not sent)."""
        out = []
        left = self.size
        for chunk in self.chunks:
            if left <= 0:
                break
            out.append(memoryview(chunk)[:min(left, len(chunk))])
            left -= len(chunk)
        return out

    def wipe(self) -> None:
        """Zero what was read (the rest of each chunk was never written) and drop the chunks."""
        for i, chunk in enumerate(self.chunks):
            n = self.used if i == len(self.chunks) - 1 else len(chunk)
            chunk[:n] = ZEROS[:n]
        self.chunks = []
        self.used = self.size = 0


def vm_size_bytes() -> int:
    # os.open/os.read, not open(): a text file object costs the call's child hundreds of page faults.
    fd = os.open("/proc/self/status", os.O_RDONLY)
    try:
        status = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    at = status.find(b"\nVmSize:")
    return int(status[at + 8:status.index(b"\n", at + 1)].split()[0]) * 1024 if at >= 0 else 0


def own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat("/proc/" + name).st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def descendants() -> list[int]:
    """Pids below the zygote (orphans included: the zygote is their subreaper)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    todo = [SELF]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_everything(pid: int) -> None:
    """Kill every process of the call whose child is ``pid``, however they detached.

    With namespaces the child is pid 1 of the call's own pid namespace: killing it makes the kernel
    kill every other process there before its own exit is reported, so ``pid`` alone is signalled
    (the caller reaps it, with its resource usage). Without namespaces the zygote is the subreaper
    of whatever the call started: it kills its descendants, and reaps them, until none is left."""
    if NAMESPACES:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    for _ in range(50):
        left = descendants()
        for other in left:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap()
        if not left:
            return
        time.sleep(0.001)


def abandon() -> None:
    """The host went away: end this zygote and everything it started (with namespaces, the kernel
    does that when pid 1 of the zygote's namespace exits; without, it kills its descendants)."""
    if not NAMESPACES:
        kill_everything(0)
    os._exit(0)


def wipe(path: str, keep_root: bool) -> None:
    """Delete everything under ``path`` (chmod first: a call may have made its files read-only)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    except PermissionError:
        os.chmod(path, 0o700)
        names = os.listdir(path)
    for name in names:
        full = os.path.join(path, name)
        if os.path.ismount(full):
            continue  # a read-only bind of the interpreter (under /tmp on some hosts): not the call's
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                os.chmod(full, 0o700)
                wipe(full, False)
            else:
                os.unlink(full)
        except FileNotFoundError:
            pass
    if not keep_root:
        try:
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EBUSY):  # a folder on the way to a bind mount
                raise


def trimmed_traceback(exc: BaseException, code: str) -> str:
    import linecache
    import traceback

    linecache.cache[TOOL_FILE] = (len(code), None, code.splitlines(True), TOOL_FILE)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == TOOL_FILE]
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def failure(exc: BaseException, code: str) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc), "traceback": trimmed_traceback(exc, code)}


def run_tool(req: dict[str, Any], result_fd: int) -> None:
    """In the forked child: run the handler and write one result document to ``result_fd``."""
    code = req["code"]
    doc: dict[str, Any] = {"status": "succeeded"}
    try:
        namespace = {"__name__": "__tool__", "__file__": TOOL_FILE, "__builtins__": __builtins__}
        # The host's bytecode of this code when it sent one (compiled once there), else the source.
        compiled = marshal.loads(req["bytecode"]) if req.get("bytecode") else compile(code, TOOL_FILE, "exec")
        exec(compiled, namespace)
        handler = namespace.get(req["entrypoint"])
        if not callable(handler):
            raise NameError("the code defines no function named %r" % req["entrypoint"])
        value = handler(**req["params"])
        if hasattr(value, "__await__"):
            import asyncio

            value = asyncio.run(_await(value))
        try:
            doc["output"] = dumps(value)
        except (TypeError, ValueError) as exc:
            doc = {"status": "failed", "error": {"type": "TypeError", "traceback": "",
                   "message": "the return value of %s is not JSON-serializable: %s" % (req["entrypoint"], exc)}}
    except MemoryError as exc:
        doc = {"status": "killed", "limit": "memory", "error": failure(exc, code)}
        doc["error"]["message"] = "memory limit of %d MB exceeded" % req["memory_mb"]
    except BaseException as exc:
        doc = {"status": "failed", "error": failure(exc, code)}
        limit = _LIMIT_ERRNO.get(exc.errno or 0) if isinstance(exc, OSError) else None
        if limit:
            doc.update(status="killed", limit=limit)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    body = dumps(doc).encode()
    try:
        while body:
            body = body[os.write(result_fd, body):]
    except OSError:
        pass


async def _await(awaitable: Any) -> Any:
    return await awaitable


# -- JavaScript and TypeScript on QuickJS ----------------------------------------------------------
# A call whose request says ``engine: "quickjs"`` runs here, in the same forked child (and so the same
# namespaces, seccomp filter, cgroup and rlimits) as a Python call, in a QuickJS runtime and context
# created for it alone. The context gets nothing of Python but one function that writes a string to
# the call's stdout or stderr, which the prelude (``quickjs_prelude.js``) takes off globalThis before
# the tool's code runs. Every value the harness takes back from the context is a number or a string.

_JS_ENTRY = "typeof %s === 'function' ? %s : undefined"
_JS_MODULE_ENTRY = "\n;globalThis.__toolrt_entry = typeof %s === 'function' ? %s : undefined;\n"
_JS_TAKE_ENTRY = "(function () { const f = globalThis.__toolrt_entry; delete globalThis.__toolrt_entry; return f; })()"


def load_quickjs() -> Any:
    """The ``_quickjs`` extension, loaded from the file the host named (not from any import path)."""
    found = sys.modules.get("_quickjs")
    if found is not None:
        return found
    import _imp

    class Spec:
        name = "_quickjs"
        origin = QUICKJS

    module = _imp.create_dynamic(Spec)  # type: ignore[arg-type]
    _imp.exec_dynamic(module)
    sys.modules["_quickjs"] = module
    return module


def _js_write(stream: Any, text: Any) -> None:
    data = str(text).encode("utf-8", "replace")
    fd = 2 if stream == 2 else 1
    try:
        write_all(fd, [data])
    except OSError:
        pass


def _js_identifier(name: str) -> bool:
    if not name or not (name[0].isalpha() or name[0] in "_$"):
        return False
    return all(c.isalnum() or c in "_$" for c in name) and name.isascii()


def js_failure(text: str, memory_mb: int) -> dict[str, Any]:
    """A result document for an error QuickJS raised to the harness (its text: the error and its stack)."""
    lines = text.split("\n")
    first = 1
    while first < len(lines) and not lines[first].lstrip().startswith("at "):
        first += 1
    head = "\n".join(lines[:first])
    kind, sep, message = head.partition(": ")
    if not sep or not _js_identifier(kind):
        kind, message = "Error", head
    frames = [
        line.replace("<input>", "tool.js")
        for line in lines[first:]
        if line.strip() and not line.lstrip().startswith("at __toolrt")
    ]
    error = {"type": kind, "message": message, "traceback": "\n".join([head, *frames])}
    if kind == "InternalError" and message.startswith("out of memory"):
        error["message"] = "memory limit of %d MB exceeded" % memory_mb
        return {"status": "killed", "limit": "memory", "error": error}
    return {"status": "failed", "error": error}


def _js_module_syntax(code: str) -> bool:
    """Whether a line of ``code`` starts with an ``import`` or ``export`` declaration."""
    for line in code.split("\n"):
        text = line.lstrip()
        for word in ("export", "import"):
            if text.startswith(word) and text[6:7] in (" ", "\t", "{", "*"):
                return True
    return False


def _js_evaluate(ctx: Any, drive: Any, code: str, entry: str, form: str) -> Any:
    """Run the tool's code as a script or an ES module; returns its entrypoint function, if any.

    As a module, the entrypoint (a checked identifier) is read from the module scope after the code.
    """
    if form == "script":
        ctx.eval(code)
        return ctx.eval(_JS_ENTRY % (entry, entry))
    drive("module", ctx.module(code + _JS_MODULE_ENTRY % (entry, entry)))
    _js_pump(ctx)
    return ctx.eval(_JS_TAKE_ENTRY)


def _js_pump(ctx: Any) -> None:
    while ctx.execute_pending_job():
        pass


def js_context() -> tuple[Any, Any]:
    """A new QuickJS runtime and context with the prelude run in it: (context, driver).

    Made in the call's own child, for that call alone: by the spare child while it waits for its
    request when the zygote's last call was JavaScript (so the next one likely is), else on demand.
    """
    qjs = load_quickjs()
    ctx = qjs.Context()
    # No ctx.set_time_limit: the binding then refuses every call into the host, console.log included.
    # The zygote's deadline (SIGKILL) and RLIMIT_CPU bound the call, as they bound a Python one.
    ctx.add_callable("__toolrt_write", _js_write)
    return ctx, ctx.eval(JS_PRELUDE)


def run_js_tool(req: dict[str, Any], result_fd: int, prepared: Any = None) -> None:
    """In the forked child: run a JavaScript handler on QuickJS and write one result document."""
    entry = str(req["entrypoint"])
    memory_mb = int(req["memory_mb"])
    body = ""
    try:
        if not _js_identifier(entry):
            raise ValueError("entrypoint %r is not a valid identifier" % entry)
        qjs = load_quickjs()
        ctx, drive = prepared if prepared is not None else js_context()
        ctx.set_memory_limit(memory_mb * 1024 * 1024)
        code = req["code"]
        # A script first (as Node's CommonJS wrapper runs it), or an ES module first when a line
        # starts with import or export; the other form only when the first is a syntax error.
        order = ("module", "script") if _js_module_syntax(code) else ("script", "module")
        try:
            local = _js_evaluate(ctx, drive, code, entry, order[0])
        except qjs.JSException as exc:
            if not str(exc).startswith("SyntaxError"):
                raise
            try:
                local = _js_evaluate(ctx, drive, code, entry, order[1])
            except qjs.JSException as other:
                raise (exc if str(other).startswith("SyntaxError") else other) from None
        drive("start", local, entry, ctx.parse_json(dumps(req["params"])))
        while True:
            _js_pump(ctx)
            wait = drive("next")
            if wait < 0:
                break
            if wait > 0:
                time.sleep(wait / 1000.0)
            drive("fire")
        body = str(drive("outcome", entry, memory_mb))
    except MemoryError:
        body = dumps({"status": "killed", "limit": "memory", "error": {"type": "MemoryError", "traceback": "",
                      "message": "memory limit of %d MB exceeded" % memory_mb}})
    except BaseException as exc:
        if type(exc).__module__ == "_quickjs" or type(exc).__name__ in ("JSException", "StackOverflow"):
            body = dumps(js_failure(str(exc), memory_mb))
        else:
            body = dumps({"status": "failed", "error": {"type": type(exc).__name__, "message": str(exc), "traceback": ""}})
    data = body.encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(result_fd, data):]
    except OSError:
        pass


def limits_for(req: dict[str, Any], nproc_base: int) -> list[tuple[int, int]]:
    cap = int(req["max_output_bytes"])
    return [
        (resource.RLIMIT_CPU, int(req["timeout_s"]) + 2),
        (resource.RLIMIT_AS, vm_size_bytes() + int(req["memory_mb"]) * 1024 * 1024),
        (resource.RLIMIT_NPROC, nproc_base + int(req.get("nproc", NPROC_SLACK))),
        (resource.RLIMIT_FSIZE, max(cap, 16 * 1024 * 1024)),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
    ]


def relay(src: Any, dst: Any) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then pass the half-close on."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(1)  # SHUT_WR
    except OSError:
        pass




def forward(listener_fd: int, path: str, token: str) -> None:
    """The forwarder's loop: each loopback connection is relayed to the egress socket, after the line
    that says which call it belongs to (the host refuses another call's); no line without a token
    (a single-use Node worker's socket serves its one call)."""
    import socket
    import threading

    listener = socket.socket(fileno=listener_fd)
    first = b"TOOLRT-CALL " + token.encode("ascii") + b"\r\n" if token else b""

    def serve(client: Any) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
            if first:
                upstream.sendall(first)
        except OSError:
            client.close()
            upstream.close()
            return
        back = threading.Thread(target=relay, args=(upstream, client), daemon=True)
        back.start()
        relay(client, upstream)
        back.join()
        client.close()
        upstream.close()

    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            continue
        threading.Thread(target=serve, args=(client,), daemon=True).start()


def fork_forwarder(port: int, path: str, with_token: bool) -> int:
    """Fork the egress forwarder of this call (or Node worker) before its filter is loaded.

    Why a process of its own, forked here: the forwarder needs a unix socket (to ``path``, the
    worker's egress socket) that the call's own filter refuses, and this process is still
    single-threaded (no tool code has run), so the fork is safe. The forwarder belongs to this call
    alone (it dies with the call's pid namespace), is non-dumpable (the tool cannot read or write its
    memory) and loads a filter of its own (no program to run, unix and internet sockets only). It
    only moves bytes: the host's proxy decides everything, so a tool that kills or bypasses it gains
    nothing. ``with_token``: it waits for the call's token on a pipe (returned here) and starts only
    once it has one; otherwise it serves at once, sending no call line."""
    import _socket

    listener = _socket.socket(2, 1)  # AF_INET, SOCK_STREAM
    listener.setsockopt(1, 2, 1)  # SOL_SOCKET, SO_REUSEADDR
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    token_r, token_w = os.pipe() if with_token else (-1, -1)
    if os.fork() == 0:
        try:
            keep = {listener.fileno(), token_r, GATE}
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for name in os.listdir("/proc/self/fd"):
                if int(name) > 2 and int(name) not in keep:
                    try:
                        os.close(int(name))
                    except OSError:
                        pass
            _prctl(4, 0)  # PR_SET_DUMPABLE
            if FORWARDER_FILTER:
                NATIVE.load_filter(FORWARDER_FILTER)
            token = b""
            if with_token:
                while True:
                    chunk = os.read(token_r, 256)
                    if not chunk:
                        break
                    token += chunk
                if not token:
                    os._exit(0)  # the call needs no network
            forward(listener.detach(), path, token.decode("ascii"))
        finally:
            os._exit(0)
    listener.close()
    if with_token:
        os.close(token_r)
    return token_w


def child(req_r: int, workdir: str, out_w: int, err_w: int, res_w: int, nproc_base: int, js: bool) -> None:
    """A pre-forked child: its own namespaces and filter, its streams, then its one request, run.

    ``js``: make the QuickJS context while waiting (the zygote's last call was JavaScript)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    token_w = -1
    try:
        # Everything that does not depend on the request is done before it comes, off the call's path.
        if NAMESPACES:
            enter_namespaces(call=True, network=GATE >= 0)
        if GATE >= 0:
            token_w = fork_forwarder(PROXY_PORT, "/proc/self/fd/%d" % GATE, True)
        layer = CALL_FILTER if GATE >= 0 else OFFLINE_FILTER
        if layer:
            NATIVE.load_filter(layer)
    except BaseException as exc:
        # Fail closed: no tool code runs without its namespaces and filter; the call says why.
        body = dumps({"status": "failed", "error": {"type": "SandboxSetupError", "traceback": "",
                      "message": "the call's sandbox could not be set up: %s" % exc}}).encode()
        try:
            write_all(res_w, [body])
        finally:
            os._exit(0)
    try:
        # Under memory pressure the kernel kills the call's processes, not the zygote.
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass
    os.setsid()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(res_w, 3)
    os.dup2(req_r, 4)
    if token_w >= 0:
        os.dup2(token_w, 5)
    os.closerange(6 if token_w >= 0 else 5, 1 << 16)
    os.chdir(workdir)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if "random" in sys.modules:
        sys.modules["random"].seed()  # this child's own seed: it serves one call
    prepared = None
    if js and QUICKJS:
        try:
            prepared = js_context()
        except BaseException:
            prepared = None  # made again on demand, where its failure is reported
    chunks = []
    while True:
        chunk = os.read(4, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(4)
    if not chunks:
        os._exit(0)  # the zygote went away before a request came
    req = marshal.loads(b"".join(chunks))
    for res, value in limits_for(req, nproc_base):
        resource.setrlimit(res, (value, value))
    if token_w >= 0:
        proxy = req.get("proxy")
        if proxy:
            write_all(5, [str(proxy["token"]).encode("ascii")])
            url = "http://127.0.0.1:%d" % PROXY_PORT
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                os.environ[name] = url
        os.close(5)  # the forwarder starts with the token, or ends without one
    gc.enable()
    try:
        if req.get("engine") == "quickjs":
            run_js_tool(req, 3, prepared)
        else:
            run_tool(req, 3)
    finally:
        os._exit(0)


class Spare:
    """A child forked ahead of the next call, waiting for its request: the fork, its namespaces and
    its filter are all off the call's path."""

    def __init__(self, nproc_base: int, js: bool = False) -> None:
        self.workdir = "/tmp/work" if NAMESPACES else os.path.join(BASE, "work")
        if not NAMESPACES:
            os.mkdir(self.workdir, 0o700)
        req_r, self.req_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        self.res_r, res_w = os.pipe()
        gc.freeze()  # everything the zygote holds moves out of the collector's sight: no copy-on-write storms
        try:
            self.pid = NATIVE.clone(NAMESPACE_FLAGS) if NAMESPACES else os.fork()
        except OSError:
            for fd in (req_r, self.req_w, self.out_r, out_w, self.err_r, err_w, self.res_r, res_w):
                os.close(fd)
            raise
        if self.pid == 0:
            try:
                child(req_r, self.workdir, out_w, err_w, res_w, nproc_base, js)
            finally:
                os._exit(70)
        for fd in (req_r, out_w, err_w, res_w):
            os.close(fd)


def forward_payload(size: int, req_w: int) -> None:
    """Move the child's request from the host's pipe to the child's, through a buffer zeroed after."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(CTL, [view[got:]])
        if not n:
            abandon()
        got += n
    try:
        write_all(req_w, [view])
    except OSError:
        pass  # the child is gone; its exit status says why
    view.release()
    buf[:] = bytes(size)
    os.close(req_w)


def drain_wake() -> None:
    try:
        while os.read(WAKE_R, 512):
            pass
    except BlockingIOError:
        pass


def handle(head: dict[str, Any], spare: Spare, scratch: bytearray) -> tuple[dict[str, Any], list[Sink]]:
    """Run one call in the spare child; returns the result header and the three stream sinks."""
    workdir = spare.workdir
    cap = int(head["max_output_bytes"])
    cpu = int(head["timeout_s"]) + 2
    started = time.monotonic()
    forward_payload(int(head["payload"]), spare.req_w)
    pid = spare.pid
    out_r, err_r, res_r = spare.out_r, spare.err_r, spare.res_r
    sinks = {out_r: Sink(cap), err_r: Sink(cap), res_r: Sink(max(cap, 1 << 20))}
    open_fds = set(sinks)
    deadline = started + float(head["timeout_s"])
    outcome = None
    status = 0
    usage = None
    stream = bool(head.get("stream"))
    poller = select.poll()
    for fd in (*sinks, WAKE_R, CTL):
        poller.register(fd, select.POLLIN)
    child_done = False
    woken = False
    while True:
        if woken and not child_done:
            done_pid, status, usage = os.wait4(pid, os.WNOHANG)
            if done_pid:
                child_done = True
        woken = False
        left = deadline - time.monotonic()
        if left <= 0:
            outcome = "timed_out"
            break
        if child_done and not open_fds:
            break
        events = poller.poll(left * 1000 if not child_done else min(left * 1000, 20))
        if child_done and not events:
            break  # stray processes hold the pipes open; they are killed below
        for fd, _ in events:
            if fd == WAKE_R:
                drain_wake()
                woken = True
            elif fd == CTL:
                msg = read_frame(CTL)
                if msg is None:
                    abandon()
                if msg.get("cancel") == head.get("id"):
                    outcome = "cancelled"
            elif not sinks[fd].read_from(fd, scratch):
                poller.unregister(fd)
                open_fds.discard(fd)
            elif stream and fd != res_r and sinks[fd].fresh is not None:
                # Streaming: what the tool printed goes to the host as it comes, within the cap.
                write_frame(CTL, {"id": head["id"], "nonce": head["nonce"], "stream": 1 if fd == out_r else 2,
                                      "size": len(sinks[fd].fresh)}, [sinks[fd].fresh])
        if outcome:
            break
    kill_everything(pid)
    if not child_done:
        try:
            _, status, usage = os.wait4(pid, 0)
        except ChildProcessError:
            status, usage = 0, None
    if usage is None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    for fd in (out_r, err_r, res_r):
        while fd in open_fds:
            try:
                more = sinks[fd].read_from(fd, scratch)
            except OSError:
                more = False
            if not more:
                open_fds.discard(fd)
        os.close(fd)
    if any(sink.over for sink in sinks.values()):
        scratch[:] = ZEROS  # only a stream past its cap reads into it
    drain_wake()
    if not NAMESPACES:
        # With namespaces the call's /tmp, /dev/shm and IPC objects died with it; here they are the
        # zygote's scratch folder, wiped.
        wipe(workdir, False)
        wipe(BASE, True)
    out, err, res = sinks[out_r], sinks[err_r], sinks[res_r]
    doc: dict[str, Any] = {}
    if outcome is not None:
        doc = {"status": outcome}
        res.size = 0
    elif res.over:
        doc = {"status": "killed", "limit": "output",
               "error": {"type": "OutputLimitExceeded", "traceback": "",
                         "message": "the return value is larger than %d bytes" % res.cap}}
        res.size = 0
    elif not res.size:
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (int(signal.SIGXCPU), int(signal.SIGKILL)) \
                and usage.ru_utime + usage.ru_stime >= cpu - 1.5:
            doc = {"status": "killed", "limit": "cpu", "error": {"type": "CpuLimitExceeded", "traceback": "",
                   "message": "CPU time limit of %d s exceeded" % cpu}}
        elif os.WIFSIGNALED(status):
            doc = {"status": "failed", "error": {"type": "Crashed", "traceback": "",
                   "message": "the tool process died from signal %d" % os.WTERMSIG(status)}}
        else:
            doc = {"status": "failed", "error": {"type": "NoResult", "traceback": "",
                   "message": "the tool process exited with code %d before returning a value" % os.WEXITSTATUS(status)}}
    doc["id"] = head["id"]
    doc["nonce"] = head["nonce"]
    doc["sizes"] = [res.size, out.size, err.size]
    doc["stdout_truncated"] = out.over
    doc["stderr_truncated"] = err.over
    doc["cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1000.0
    doc["max_rss_kb"] = usage.ru_maxrss
    doc["exit_code"] = os.waitstatus_to_exitcode(status)
    return doc, [res, out, err]



# What the template imports while idle (its zygotes and their calls inherit it), by its flavour (the host's ``zygote_flavor``): every call
# forks this memory and tears its copy down, so asyncio (and what it pulls in, nearly half of it) is
# only in zygotes for async tools, and QuickJS zygotes import no Python modules at all.
WARM = ["json", "re", "math", "datetime", "collections", "itertools", "functools", "random", "base64",
        "hashlib", "decimal", "traceback", "linecache", "typing", "asyncio", "uuid", "socket", "threading"]
# None of them may start a generator that tells a fork by a change of pid (``ssl``, ``tempfile``): the
# template, a plain zygote and every call are each pid 1 of their pid namespace (see ``stay_pid_one``).
if FLAVOR == "python":
    WARM.remove("asyncio")
elif FLAVOR == "quickjs":
    WARM = []


LEARNED: set[str] = set()  # the environment's modules calls have named, each imported (or tried) once
MAX_LEARNED = 256
LEARNING: list[str] = []  # learned names still to import, while idle
LEARN_CPU_S = [0]  # CPU seconds the pending imports may take: the allowance of the calls that named them
LEARN_MAX_MB = 256  # how much the zygote may grow from learned imports over its size once preloaded
PRELOADED_RSS = [0]


def learn(names: Any, cpu_s: int) -> None:
    """Queue for idle import the modules of this zygote's environment that a call's tool imports
    (the host reads them from the tool's code: ``from dateutil import parser`` names
    ``dateutil.parser``), so the next call finds them loaded, as it finds the packages themselves.

    Environment zygotes only: each serves one agent, and the host offers only the names of that
    agent's own tools, so what it learns is only ever seen by that agent's later calls. Only
    submodules of the packages it preloads, no ``__main__``-like parts, at most ``MAX_LEARNED``
    names, each tried once. The imports may take ``cpu_s`` of CPU, what the call itself was allowed
    (``import_learned``)."""
    if not PRELOAD or not isinstance(names, list):
        return
    for name in names:
        if len(LEARNED) >= MAX_LEARNED:
            break
        if not isinstance(name, str) or name in LEARNED:
            continue
        parts = name.split(".")
        if len(parts) < 2 or parts[0] not in PRELOAD or not all(
            part.isidentifier() and part.isascii() and not part.startswith("__") for part in parts
        ):  # no ``pkg.__main__`` (a package's command line) nor ``pkg.__init__`` (its code again)
            continue
        LEARNED.add(name)
        if name not in sys.modules:
            LEARNING.append(name)
            LEARN_CPU_S[0] = max(LEARN_CPU_S[0], cpu_s)


def rss_bytes() -> int:
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        return int(os.read(fd, 256).split()[1]) * os.sysconf("SC_PAGE_SIZE")
    finally:
        os.close(fd)


def import_learned() -> None:
    """Import the learned names while idle, within bounds: the CPU the calls that named them were
    allowed (past it the kernel's SIGXCPU ends the zygote, see ``past_allowance``, and the host
    starts another), and ``LEARN_MAX_MB`` of growth in all. A call that arrives stops it; it goes
    on after the call."""
    if not LEARNING:
        return
    if rss_bytes() - PRELOADED_RSS[0] > LEARN_MAX_MB << 20:
        LEARNING.clear()
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    used = resource.getrusage(resource.RUSAGE_SELF)
    # A handler of its own: past the allowance the zygote ends with the status that says why.
    previous = signal.signal(signal.SIGXCPU, past_allowance)
    resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 1 + LEARN_CPU_S[0], hard))
    try:
        while LEARNING and not select.select([CTL], [], [], 0)[0]:
            name = LEARNING.pop(0)
            try:
                __import__(name)
            except BaseException:  # what cannot import idle fails in the tool's call, with its traceback
                pass
            if rss_bytes() - PRELOADED_RSS[0] > LEARN_MAX_MB << 20:
                LEARNING.clear()
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        signal.signal(signal.SIGXCPU, previous)  # before the next spare is forked: its calls need the default
    if not LEARNING:
        LEARN_CPU_S[0] = 0


def past_allowance(signum: int, frame: Any) -> None:
    """SIGXCPU while importing learned modules: they have used the CPU their calls were allowed.
    The zygote ends (no call is under way, no spare forked); the host starts another for the next
    call. An import spinning inside C code, which never returns to the interpreter, would not run
    this: that case is not bounded here."""
    os._exit(75)






# -- namespaces, capabilities and seccomp ----------------------------------------------------------
# Raw syscalls through ctypes (the template imports it before its first zygote: every later process
# finds it loaded). Each failure raises OSError: the process that set itself up runs no further.

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_CHILD_SETTID = 0x01000000
# A zygote and a call each get all of these; UTS stays the sandbox's (no one here can change it).
# The parent's clone makes the user and pid namespaces (the child must be born pid 1); the child
# makes the others itself (``enter_namespaces``), so that their cost is not the parent's. A call
# that may not reach any host keeps its zygote's network namespace (empty, its loopback down) and
# may open no socket at all (its filter); one that may gets a network namespace of its own, whose
# loopback only its forwarder and it share.
NAMESPACE_FLAGS = CLONE_NEWUSER | CLONE_NEWPID
OWN_NAMESPACES = CLONE_NEWNS | CLONE_NEWIPC
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_STRICTATIME = 32, 1024, 4096, 16384, 1 << 18, 1 << 24
ST_NOEXEC, ST_NOATIME, ST_RELATIME = 8, 1024, 4096
_CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220}


class Native:
    """libc through ctypes, loaded once (in the template) and inherited by every clone."""

    def __init__(self) -> None:
        import ctypes

        self.libc = ctypes.CDLL(None, use_errno=True)
        # PyDLL: the GIL stays held across the clone, exactly as os.fork() holds it.
        self.raw = ctypes.PyDLL(None, use_errno=True)
        self.libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        self.machine = os.uname().machine
        self.tid = self._tid_field() if NAMESPACES else None
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

        class Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        self.cap_header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        self.no_capabilities = (Data * 2)()
        self.fprog = Fprog

    def check(self, rc: int, what: str) -> int:
        import ctypes

        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, "%s: %s" % (what, os.strerror(err)))
        return rc

    def _tid_field(self) -> int:
        """The address of glibc's cached thread id of this (the main) thread.

        A raw clone does not update it as glibc's fork does, and glibc uses it for raise(),
        pthread_kill() and abort(): the clone asks the kernel to write the child's id there
        (CLONE_CHILD_SETTID), as glibc's own fork does. Found, not assumed: the offsets in the thread
        descriptor holding this thread's id, narrowed to the one a real fork() rewrites in its child."""
        import ctypes

        self.libc.pthread_self.restype = ctypes.c_void_p
        base = self.libc.pthread_self()
        me = self.check(self.libc.syscall(186 if self.machine == "x86_64" else 178), "gettid")
        span = 0x800
        with open("/proc/self/maps") as maps:
            for line in maps:
                low, high = (int(x, 16) for x in line.split()[0].split("-"))
                if low <= base < high:
                    span = min(span, high - base)
        offsets = [off for off in range(0, span - 3, 4) if ctypes.c_int.from_address(base + off).value == me]
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            mine = self.libc.syscall(186 if self.machine == "x86_64" else 178)
            found = [off for off in offsets if ctypes.c_int.from_address(base + off).value == mine]
            os.write(write_fd, (",".join(str(off) for off in found)).encode())
            os._exit(0)
        os.close(write_fd)
        answer = os.read(read_fd, 256).decode()
        os.close(read_fd)
        os.waitpid(pid, 0)
        found = [int(off) for off in answer.split(",") if off]
        if len(found) != 1:
            raise OSError(errno.ENOTSUP, "cannot find glibc's thread id field (found %r)" % found)
        return int(base) + found[0]

    def clone(self, flags: int) -> int:
        """fork() into new namespaces: the child is pid 1 of its new pid namespace. 0 in the child."""
        number = _CLONE_SYSCALL.get(self.machine)
        if number is None or self.tid is None:
            raise OSError(errno.ENOTSUP, "namespaced calls need x86_64 or aarch64 and glibc")
        import ctypes

        full = flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | int(signal.SIGCHLD)
        # The kernel's argument order: (flags, stack, parent_tid, child_tid, tls) on x86_64, tls and
        # child_tid swapped on aarch64. No new stack: the child returns here, as from fork().
        args = (full, 0, 0, self.tid, 0) if self.machine == "x86_64" else (full, 0, 0, 0, self.tid)
        api = ctypes.pythonapi
        api.PyOS_BeforeFork()
        pid = int(self.raw.syscall(ctypes.c_long(number), *[ctypes.c_ulong(a) for a in args]))
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        err = ctypes.get_errno()
        api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(err, "clone: %s" % os.strerror(err))
        return pid

    def mount(self, source: Any, target: str, fstype: Any, flags: int, data: Any = None) -> None:
        self.check(self.libc.mount(source, target.encode(), fstype, flags, data), "mount " + target)

    def drop_capabilities(self) -> None:
        """No capability left for this process and whatever it starts, and no new ones ever.

        The new user namespace gave it every capability (over its own namespaces): all are cleared.
        The bounding set is left as it is: with ``no_new_privs`` no program it runs gains a file
        capability or a set-uid, and its uid is not 0 in its namespace, so execve grants nothing."""
        import ctypes

        self.check(self.libc.capset(ctypes.byref(self.cap_header), self.no_capabilities), "capset")
        self.check(self.libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")

    def load_filter(self, program: bytes) -> None:
        """Load a seccomp layer (libseccomp's exported BPF) on this process and all it starts."""
        import ctypes

        buf = ctypes.create_string_buffer(program, len(program))
        prog = self.fprog(len(program) // 8, ctypes.addressof(buf))
        self.check(self.libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
        self.check(self.libc.prctl(22, 2, ctypes.byref(prog), 0, 0), "seccomp filter")  # SECCOMP_MODE_FILTER


NATIVE: Any = None


def write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def enter_namespaces(call: bool, network: bool = False) -> None:
    """In the first process of new user and pid namespaces (a zygote, or a call's child): map the
    sandbox's user, make mount, ipc and network namespaces of its own, take a /proc of the new pid
    namespace, a private /tmp and /dev/shm, a new /dev/pts (a zygote; a zygote's /dev is read-only,
    and a call's is a copy of it), and (a call that may reach hosts) bring its loopback up. Then drop
    every capability: what was needed to build the namespaces is gone before anything else runs."""
    native = NATIVE
    # A non-dumpable process's /proc files belong to root, which this user namespace does not map:
    # dumpable just long enough to write its own maps.
    _prctl(4, 1)  # PR_SET_DUMPABLE
    write_file("/proc/self/setgroups", b"deny")
    write_file("/proc/self/uid_map", b"%d %d 1\n" % (UID, UID))
    write_file("/proc/self/gid_map", b"%d %d 1\n" % (GID, GID))
    _prctl(4, 0)
    # A zygote takes a network namespace of its own (nothing in it), and a cgroup namespace rooted at
    # the cgroup it has just moved into (its calls see "/", not its name among the others); a call
    # takes a network namespace only when it may reach hosts.
    own = OWN_NAMESPACES | (CLONE_NEWNET if network else 0) if call else OWN_NAMESPACES | CLONE_NEWNET | CLONE_NEWCGROUP
    native.check(native.libc.unshare(own), "unshare")
    native.mount(b"none", "/", None, MS_REC | MS_PRIVATE)
    native.mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    size = b"size=%d" % TMP_SIZE
    native.mount(b"tmpfs", "/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, size + b",mode=0755")
    # Into it: the working folder it had (the template's /tmp, under the new mount) is every
    # zygote's, and a relative path written by a package there would reach other agents' zygotes.
    os.chdir("/tmp")
    native.mount(b"tmpfs", "/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, size + b",mode=01777")
    if not call:
        # Its own /dev/pts (the sandbox's is every zygote's). A call needs none of its own: it is
        # the zygote's only call while it runs, and its ptys close with its processes.
        native.mount(b"devpts", "/dev/pts", b"devpts", MS_NOSUID | MS_NOEXEC, b"newinstance,ptmxmode=0666,mode=0620")
        # The flags the sandbox's /dev was mounted with are locked: a remount must keep them.
        now = os.statvfs("/dev").f_flag
        atime = MS_NOATIME if now & ST_NOATIME else (0 if now & ST_RELATIME else MS_STRICTATIME)
        keep = MS_NOSUID | MS_NODEV | atime | (MS_NOEXEC if now & ST_NOEXEC else 0)
        native.mount(None, "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
    else:
        os.mkdir("/tmp/work", 0o700)
        if network:
            loopback_up()
    native.drop_capabilities()


def loopback_up() -> None:
    """SIOCSIFFLAGS lo up|running: a new network namespace's loopback starts down."""
    import _socket
    import fcntl

    sock = _socket.socket(2, 2)  # AF_INET, SOCK_DGRAM
    try:
        fcntl.ioctl(sock.fileno(), 0x8914, struct.pack("16sH14s", b"lo", 0x1 | 0x40, b""))
    finally:
        sock.close()


def preload() -> None:
    """Import the packages of this zygote's environment before the first call is read: the first
    call would import them anyway, and every later one then finds them loaded. The zygote moved
    itself into its own cgroup (memory and pids limits) before anything else, so a package's
    import-time code (third-party code) never runs with the runtime's own budget."""
    for name in PRELOAD:
        try:
            __import__(name)
        except BaseException:  # a package that cannot import here fails in the tool's call, with its traceback
            pass
    if PRELOAD:
        PRELOADED_RSS[0] = rss_bytes()


def warm_up(wait: float, ctl: int) -> None:
    """Import what tools commonly use while idle, so that each forked child finds it loaded. A
    command that arrives on ``ctl`` stops it; it goes on afterwards."""
    if not WARM and (not QUICKJS or "_quickjs" in sys.modules):
        return
    if select.select([ctl], [], [], wait)[0]:
        return  # a cold start: the first call is already waiting and should not wait for imports
    if QUICKJS:
        load_quickjs()  # the engine is loaded once here; each call still creates its own runtime
    while WARM:
        if select.select([ctl], [], [], 0)[0]:
            return
        name = WARM.pop(0)
        try:
            __import__(name)
        except BaseException:  # a package that cannot import idle fails in the tool's call, with its traceback
            pass


WAKE_R = WAKE_W = -1


def wake_on_children() -> None:
    """A child's exit wakes this process's poll through a pipe (SIGCHLD's wakeup fd): no pidfd, which
    the seccomp filter refuses."""
    global WAKE_R, WAKE_W
    WAKE_R, WAKE_W = os.pipe()
    os.set_blocking(WAKE_W, False)
    os.set_blocking(WAKE_R, False)
    signal.set_wakeup_fd(WAKE_W)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)


def failed_call(head: dict[str, Any], problem: str) -> None:
    """Answer a call whose child could not be started: its payload is read (and zeroed) unused."""
    buf = bytearray(int(head["payload"]))
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = os.readv(CTL, [view[got:]])
        if not n:
            os._exit(0)
        got += n
    view.release()
    buf[:] = bytes(len(buf))
    body = dumps({"status": "failed", "error": {"type": "SandboxSetupError", "traceback": "",
                  "message": "the call's process could not be started: %s" % problem}}).encode()
    write_frame(CTL, {"id": head["id"], "nonce": head["nonce"], "sizes": [len(body), 0, 0],
                      "stdout_truncated": False, "stderr_truncated": False}, [body])


def zygote_main() -> None:
    """Serve calls, one at a time, each in a fresh child forked (with its namespaces) ahead of it."""
    global SELF
    SELF = os.getpid()
    gc.disable()  # fewer copy-on-write faults in forked children; each child re-enables it
    # SIGINT is ignored here (no call can reach the zygote anyway: each is in a pid namespace and a
    # session of its own); each child restores Python's handler for its tool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_on_children()
    # Non-dumpable: no process of its user can ptrace it, read its memory or open its /proc fds.
    # Subreaper: without namespaces, orphans of a tool are re-parented here to be found and reaped.
    _prctl(4, 0)  # PR_SET_DUMPABLE
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    if not NAMESPACES:
        os.makedirs(BASE, exist_ok=True)
        os.chdir(BASE)
        os.environ["HOME"] = os.environ["TMPDIR"] = BASE
    nproc_base = own_process_count() if not NAMESPACES else 4
    scratch = bytearray(CHUNK)
    preload()
    warm_up(0.02, CTL)
    last_js = False  # whether the last call ran on QuickJS: the next spare then prepares a context
    ahead = True  # whether to fork the next call's child before it comes (the host's choice)

    def fork_spare(js: bool) -> Any:
        try:
            return Spare(nproc_base, js or FLAVOR == "quickjs"), ""
        except OSError as exc:
            return None, str(exc)

    while True:
        spare = None
        problem = "unknown"
        if ahead:
            spare, problem = fork_spare(last_js)
        while True:
            head = read_frame(CTL)
            if head is None:
                abandon()
            if "cancel" not in head:
                break  # (a cancel frame here crossed the result of the call it was meant for)
        if not ahead:
            spare, problem = fork_spare(last_js)
        if spare is None:
            failed_call(head, problem)
            continue
        doc, sinks = handle(head, spare, scratch)
        write_frame(CTL, doc, [v for sink in sinks for v in sink.views()])
        for sink in sinks:
            sink.wipe()
        last_js = head.get("engine") == "quickjs"
        ahead = bool(head.get("spare", True))
        learn(head.get("learn"), int(head["timeout_s"]) + 2)
        del doc, sinks, head, spare
        warm_up(0, CTL)
        import_learned()


def become_zygote(msg: dict[str, Any], fds: list[int]) -> None:
    """In the template's fresh clone: confine, isolate and become a zygote with the host's descriptors."""
    global CTL, GATE, BASE
    groups = fds[2 : 2 + int(msg.get("cgroups", 0))]
    gate = fds[2 + len(groups)] if msg.get("gate") else -1
    try:
        for fd in groups:
            os.write(fd, b"0")  # pid 0: the writer itself, before it does anything else
            os.close(fd)
        # A session (and process group) of its own: a process group reaches across pid namespaces
        # (kill(0), setpriority and ioprio_set of the group), and the template's holds every zygote.
        os.setsid()
        if NAMESPACES:
            enter_namespaces(call=False)
    except OSError as exc:
        write_all(fds[1], [b"toolrt: the zygote could not set itself up: %s\n" % str(exc).encode()])
        os._exit(SETUP_FAILED)
    # Its own descriptors only, at fixed numbers: /dev/null, /dev/null, its stderr, its control
    # socket and (a zygote for calls that may reach hosts) its egress socket. Nothing of the
    # template's (its control socket, the descriptors of other zygotes it was handed) is kept.
    moved = [os.dup2(fd, 200 + i) if fd >= 0 else -1 for i, fd in enumerate((fds[1], fds[0], gate))]
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(moved[0], 2)
    os.dup2(moved[1], 3)
    if gate >= 0:
        os.dup2(moved[2], 4)
    os.closerange(5 if gate >= 0 else 4, 1 << 16)
    CTL, GATE = 3, (4 if gate >= 0 else -1)
    BASE = str(msg.get("scratch") or "/tmp")
    # The host learns its pid from this frame (SCM_CREDENTIALS): with namespaces, pid 1 of them,
    # which it ends them all by.
    write_frame(CTL, {"ready": True})
    if NAMESPACES and PRELOAD:
        stay_pid_one()
    zygote_main()


def stay_pid_one() -> None:
    """Fork the zygote off the first process of its namespaces, which stays their pid 1 and ends
    when the zygote ends (the kernel then ends everything else in them).

    Why not be pid 1 itself: each call's child is pid 1 of its own pid namespace, so a zygote that
    were pid 1 too would fork children with its own pid, and libraries that tell a fork by a change
    of pid (OpenSSL's random generator, Python's tempfile names) would carry what the zygote's
    packages started into every call unchanged: every call of a pool would draw the same "random"
    bytes. Only a zygote for an environment imports such packages (``preload``, ``learn``); a plain
    one imports what its template did (``WARM``, which starts no such generator), and saves the
    process. The zygote is pid 2; pid 1 holds no descriptor and runs nothing but this wait, in which
    it also reaps what a package the zygote imports leaves behind (orphans come to pid 1), and
    resumes the zygote when such a package stops it (``kill(0, SIGSTOP)``: as pid 1 the zygote
    ignored that; stopped, it would hold its pool's next call until its deadline)."""
    pid = os.fork()
    if pid == 0:
        return
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.closerange(0, 1 << 16)
    while True:
        try:
            child, status = os.waitpid(-1, os.WUNTRACED)
        except ChildProcessError:
            os._exit(0)
        if child == pid:
            if not os.WIFSTOPPED(status):
                os._exit(0)
            os.kill(pid, signal.SIGCONT)


def receive(sock: Any) -> tuple[Any, list[int]]:
    """One command from the host and the descriptors it carries; (None, []) when the host is gone."""
    import array

    fds = array.array("i")
    head, ancillary, _, _ = sock.recvmsg(4, _CMSG_SPACE)
    for level, kind, data in ancillary:
        if level == 1 and kind == 1:  # SOL_SOCKET, SCM_RIGHTS
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if head and len(head) < 4:
        head += read_exact(sock.fileno(), 4 - len(head)) or b""
    body = read_exact(sock.fileno(), struct.unpack(">I", head)[0]) if len(head) == 4 else None
    if body is None:
        for fd in fds:
            os.close(fd)
        return None, []
    return marshal.loads(body), list(fds)


_CMSG_SPACE = 0


def spawn(msg: dict[str, Any], fds: list[int]) -> None:
    """Fork a zygote for the host (see ``become_zygote``) and keep none of its descriptors."""
    seq = msg.get("seq")
    try:
        if len(fds) < 2 + int(msg.get("cgroups", 0)) + (1 if msg.get("gate") else 0):
            raise OSError(errno.EINVAL, "the command carries %d descriptors" % len(fds))
        gc.freeze()
        pid = NATIVE.clone(NAMESPACE_FLAGS) if NAMESPACES else os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        write_frame(0, {"failed": seq, "error": str(exc)})
        return
    if pid == 0:
        try:
            become_zygote(msg, fds)
        finally:
            os._exit(SETUP_FAILED)
    for fd in fds:
        os.close(fd)
    write_frame(0, {"spawned": seq})


def template_main() -> None:
    """Fork zygotes when the host asks, import what tools commonly use while idle, run nothing else."""
    global NATIVE, _CMSG_SPACE
    import _socket

    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    NATIVE = Native()  # (with namespaces, one fork to find glibc's thread id field: before any import)
    _prctl(4, 0)  # PR_SET_DUMPABLE: no process of its user can read its memory
    wake_on_children()
    sock = _socket.socket(fileno=0)
    _CMSG_SPACE = _socket.CMSG_SPACE(16 * 4)
    write_frame(0, {"ready": True})
    while True:
        pending = bool(WARM) or bool(QUICKJS and "_quickjs" not in sys.modules)
        ready = select.select([0, WAKE_R], [], [], 0 if pending else None)[0]
        if WAKE_R in ready:
            drain_wake()
            reap()
        if 0 in ready:
            msg, fds = receive(sock)
            if msg is None:
                return  # the host is gone (with namespaces, the zygotes go with this process)
            spawn(msg, fds)
        elif not ready:
            warm_up(0, 0)


def node_main() -> None:
    """A Node worker that may reach hosts: fork its forwarder, load the call's filter, become Node."""
    global NATIVE
    NATIVE = Native()
    command = sys.argv[2:]
    fork_forwarder(PROXY_PORT, str(CONFIG["socket"]), False)
    try:
        if CALL_FILTER:
            NATIVE.load_filter(CALL_FILTER)
    except OSError as exc:
        os.write(2, b"toolrt: the Node worker's seccomp filter did not load: %s\n" % str(exc).encode())
        os._exit(70)
    os.execv(command[0], command)


if ROLE == "template":
    template_main()
elif ROLE == "node":
    node_main()
