"""A Sandbox on AgentCore Code Interpreter: remote sessions, a fixed harness, parameters as data.

The tool's code and parameters travel base64-encoded inside a fixed harness program (the base64
alphabet cannot end a string literal, so nothing a caller sends is ever read as code). The harness
prints one result line after a per-call random marker; everything else on stdout is the tool's own.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from toolrt.adapters.aws.environments import PINNED
from toolrt.adapters.aws.errors import (
    THROTTLING_CODES,
    error_code,
    http_status,
    is_html_answer,
    is_transient,
    translate,
)
from toolrt.domain import (
    ExecutionError,
    ExecutionFailure,
    ExecutionMetrics,
    ExecutionStatus,
    IsolationLevel,
    Language,
    TransientError,
)
from toolrt.logs import get_logger
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

log = get_logger(__name__)

BACKEND = "agentcore-code-interpreter"
# Where, in a session's working folder, a lock's wheels are uploaded and its packages installed.
WHEELS_DIR = ".toolrt/wheels"
ENV_DIR = ".toolrt/env"
DEFAULT_CODE_INTERPRETER = "aws.codeinterpreter.v1"


class SandboxUnavailable(ExecutionError, TransientError):
    """The code interpreter could not run anything now (throttled, 5xx): nothing ran; retry later."""


_PYTHON_HARNESS = """\
import base64 as _tb, json as _tj, inspect as _ti, traceback as _tt
def _toolrt_site(_site):
    # This call sees its own lock's packages (installed under .toolrt/env/<digest>) and no other's:
    # earlier calls in the session may have put another lock's folder on sys.path, or its modules in
    # sys.modules. The locked packages come after the standard library, before preinstalled ones.
    import sys as _ts, os as _to, importlib as _tl
    _mark = _to.sep + ".toolrt" + _to.sep + "env" + _to.sep
    _own = _to.path.abspath(_site) if _site else None
    _ts.path[:] = [_p for _p in _ts.path if _mark not in _to.path.abspath(_p) + _to.sep or _to.path.abspath(_p) == _own]
    for _name, _mod in list(_ts.modules.items()):
        _file = getattr(_mod, "__file__", None) or ""
        if _mark in _file and not (_own and _file.startswith(_own + _to.sep)):
            del _ts.modules[_name]
    if _own and _own not in _ts.path:
        _at = next((_i for _i, _p in enumerate(_ts.path) if _p.endswith(("site-packages", "dist-packages"))), len(_ts.path))
        _ts.path.insert(_at, _own)
    _tl.invalidate_caches()
def _toolrt_main():
    _in = _tj.loads(_tb.b64decode("{payload}").decode("utf-8"))
    _toolrt_site(_in.get("site"))
    _ns = {{"__name__": "__toolrt_tool__"}}
    try:
        exec(compile(_in["code"], "<tool>", "exec"), _ns)
        _out = _ns[_in["entrypoint"]](**_in["params"])
        if _ti.isawaitable(_out):
            import asyncio as _ta, concurrent.futures as _tf
            async def _await(_aw):
                return await _aw
            # A notebook kernel may already run an event loop in this thread: await in a fresh one.
            with _tf.ThreadPoolExecutor(1) as _pool:
                _out = _pool.submit(_ta.run, _await(_out)).result()
        _res = {{"ok": True, "output": _out}}
    except BaseException as _e:
        _res = {{"ok": False, "type": type(_e).__name__, "message": str(_e), "traceback": _tt.format_exc()}}
    try:
        _line = _tj.dumps(_res, ensure_ascii=False)
    except (TypeError, ValueError) as _e:
        _line = _tj.dumps({{"ok": False, "type": "TypeError", "message": "result is not JSON-serializable: " + str(_e)}})
    print("\\n{marker}" + _line, flush=True)
_toolrt_main()
"""

_JS_HARNESS = """\
{code}
;(async () => {{
  const __toolrtDecode = (s) => new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
  const __toolrtIn = JSON.parse(__toolrtDecode("{payload}"));
  let __toolrtRes;
  try {{
    const __mod = (typeof module !== "undefined" && module && module.exports) || {{}};
    const __fn = typeof {entrypoint} === "function" ? {entrypoint} : (__mod.{entrypoint} ?? __mod.default);
    if (typeof __fn !== "function") throw new TypeError("entrypoint {entrypoint} is not a function");
    __toolrtRes = {{ ok: true, output: await __fn(__toolrtIn.params) }};
  }} catch (e) {{
    __toolrtRes = {{ ok: false, type: (e && e.name) || "Error", message: String((e && e.message) ?? e), traceback: String((e && e.stack) || "") }};
  }}
  console.log("\\n{marker}" + JSON.stringify(__toolrtRes === undefined ? null : __toolrtRes));
}})();
"""

# TypeScript on Code Interpreter's nodejs runtime runs as an ES module (JavaScript as CommonJS): no
# `module`, `exports` or `require` there, so the harness provides them for the tools written with
# `module.exports = { handler }` or `require(...)`; `import` statements work as they are.
_ESM_PRELUDE = """\
import {{ createRequire as __toolrtCreateRequire }} from "node:module";
const require = __toolrtCreateRequire(import.meta.url);
const module = {{ exports: {{}} }};
let exports = module.exports;
"""

_EXPORT = re.compile(r"^(\s*)export\s+(default\s+)?", re.MULTILINE)
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):\s?(.*)$", re.MULTILINE)


def build_program(request: SandboxRequest, marker: str, site: str | None = None) -> str:
    """The program sent to ``executeCode`` for ``request``; ``marker`` prefixes the result line;
    ``site``: the session folder where the packages of the call's lock are installed (Python)."""
    if request.language is Language.PYTHON:
        payload: dict[str, Any] = {"code": request.code, "entrypoint": request.entrypoint, "params": request.params}
        if site is not None:
            payload["site"] = site
        encoded = base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")
        return _PYTHON_HARNESS.format(payload=encoded, marker=marker)
    encoded = base64.b64encode(json.dumps({"params": request.params}).encode("utf-8")).decode("ascii")
    # The entrypoint is a validated identifier (ENTRYPOINT_PATTERN); `export` is dropped so that the
    # three forms agents write (plain, module.exports, export function) all define a callable.
    program = _JS_HARNESS.format(
        code=_EXPORT.sub(r"\1", request.code), payload=encoded, marker=marker, entrypoint=request.entrypoint
    )
    if request.language is Language.TYPESCRIPT:
        return _ESM_PRELUDE.format() + program
    return program


@attrs.define
class _Session:
    session_id: str
    started: float
    key: tuple[str, ...]
    calls: int = 0
    # The lock digests whose packages are installed in this session (under ENV_DIR/<digest>).
    installed: set[str] = attrs.field(factory=set)


SESSION_SCOPES = ("tool", "agent")
# What to do with a call granted network hosts: Code Interpreter has no egress proxy, so it cannot
# confine a call to named hosts. "refuse" fails such a call before it starts; "interpreter" runs it
# under the interpreter's own network mode (the operator's choice, for every call in it alike).
EGRESS_MODES = ("refuse", "interpreter")
# Failures of InvokeCodeInterpreter that prove the code did not start: the connection was never made,
# or the service turned the request away before running it. Anything else (a read timeout, a 5xx, a
# dropped stream) may have run the code, so it is never sent again.
_NOT_STARTED_CODES = frozenset({"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"})


def _merge(response: dict[str, Any]) -> dict[str, Any]:
    """The result events of an ``invoke_code_interpreter`` stream as one result."""
    merged: dict[str, Any] = {"content": [], "structuredContent": {}, "isError": False}
    for event in response["stream"]:
        result = event.get("result")
        if result is None:
            continue
        merged["content"].extend(result.get("content", []))
        structured = result.get("structuredContent") or {}
        for key in ("stdout", "stderr"):
            if key in structured:
                merged["structuredContent"][key] = merged["structuredContent"].get(key, "") + structured[key]
        for key in ("exitCode", "executionTime", "taskStatus"):
            if key in structured:
                merged["structuredContent"][key] = structured[key]
        merged["isError"] = merged["isError"] or bool(result.get("isError"))
    return merged


def _did_not_start(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
        return True
    if isinstance(exc, ClientError) and exc.operation_name == "InvokeCodeInterpreter":
        return error_code(exc) in _NOT_STARTED_CODES or http_status(exc) == 429
    return False


class AgentCoreCodeInterpreterSandbox:
    """Runs tool calls in AgentCore Code Interpreter sessions, never sharing one between agents.

    ``client`` is a ``bedrock-agentcore`` client built with one attempt per request
    (:func:`~toolrt.adapters.aws.clients.code_interpreter_config`): a call's code runs at most once.
    A session's files and processes live as long as the session, so sessions are kept apart: a
    session serves one agent (``SandboxRequest.tenant``) and, with ``session_scope="tool"`` (the
    default), one tool of that agent; ``"agent"`` lets the calls an agent makes of one owner's tools
    share warm sessions (its own tools, say), never with tools of another owner: code that ran in a
    session can leave files there (a rewritten package, a module named like another) for every later
    call in it. A session
    is reused for up to ``max_calls_per_session`` calls and ``session_ttl_s`` seconds, at most
    ``max_idle_sessions`` wait idle (the oldest is stopped first); a session that timed out or was
    cancelled is stopped, which kills what runs in it. ``close()`` stops them all.

    Starting a session, and an invocation the service turned away (throttled, over a quota, no
    connection), are retried up to ``start_attempts`` times; nothing else is.

    A call whose tool has packages (``SandboxRequest.environment``) installs them in its session first,
    once per session, within ``install_timeout_s``; the tool's ``timeout_s`` counts from when its code
    is sent. A call timed out or cancelled while installing stops the session and its code never runs.

    A call granted network hosts (the tool's ``network`` as the owner's policy permits it) is
    refused before it starts with ``egress="refuse"`` (the default): the interpreter cannot hold a
    call to named hosts. ``egress="interpreter"`` runs it anyway, under whatever the interpreter's
    network mode lets any code in it reach (SANDBOX: next to nothing; PUBLIC: the internet): use it
    with an interpreter whose network mode is the owner's decision for every tool.
    """

    def __init__(
        self,
        client: Any,
        code_interpreter_id: str = DEFAULT_CODE_INTERPRETER,
        *,
        session_timeout_s: int = 900,
        session_ttl_s: float = 600.0,
        max_calls_per_session: int = 100,
        session_scope: str = "tool",
        max_idle_sessions: int = 32,
        start_attempts: int = 3,
        install_timeout_s: float = 300.0,
        egress: str = "refuse",
        endpoint_url: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if session_scope not in SESSION_SCOPES:
            raise ValueError(f"session_scope must be one of {SESSION_SCOPES}, got {session_scope!r}")
        if egress not in EGRESS_MODES:
            raise ValueError(f"egress must be one of {EGRESS_MODES}, got {egress!r}")
        self._egress = egress
        self._install_timeout_s = install_timeout_s
        self._client = client
        self._interpreter = code_interpreter_id
        self._session_timeout_s = session_timeout_s
        self._session_ttl_s = session_ttl_s
        self._max_calls = max_calls_per_session
        self._scope = session_scope
        self._max_idle = max_idle_sessions
        self._attempts = max(1, start_attempts)
        self._endpoint_url = endpoint_url
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, ...], list[_Session]] = {}
        self._closed = False

    @property
    def isolation(self) -> IsolationLevel:
        return IsolationLevel.REMOTE

    def supports(self, language: Language) -> bool:
        return language in (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def session_key(self, request: SandboxRequest) -> tuple[str, ...]:
        """Which calls may share a session with ``request``: the same agent and the same tool, or with
        ``session_scope="agent"`` the same agent and tools of the same owner (``request.owner``; a
        request that names none keeps a session of its tool's)."""
        if self._scope == "agent" and request.owner:
            return ("owner", request.tenant, request.owner)
        return ("tool", request.tenant, request.tool)

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        bound = log.bind(execution_id=request.execution_id, language=request.language.value)
        if self._closed:
            raise ExecutionError(f"{BACKEND}: sandbox is closed; execution {request.execution_id} not started")
        if cancel is not None and cancel.is_set():
            return SandboxResult(ExecutionStatus.CANCELLED, metrics=self._metrics(0.0, None))
        if request.egress and self._egress == "refuse":
            hosts = ", ".join(sorted(str(h) for h in request.egress.allow))
            raise ExecutionError(
                f"{BACKEND}: the tool may reach {hosts}, and Code Interpreter cannot confine a call to named "
                f"hosts; run it on this machine (sandbox='local', TOOLRT_SANDBOX=local), drop `network` from "
                f"the tool, or let the interpreter's network mode decide (TOOLRT_CODE_INTERPRETER_EGRESS="
                f"interpreter); execution {request.execution_id} did not run"
            )
        if request.environment is not None and request.language is not Language.PYTHON:
            raise ExecutionError(
                f"{BACKEND}: packages for {request.language.value} are not installed in Code Interpreter sessions; "
                f"run the tool on this machine (sandbox='local'); execution {request.execution_id} did not run"
            )
        digest = _lock_digest(request) if request.environment is not None else None
        session = self._checkout(self.session_key(request))
        marker = f"__toolrt_result_{secrets.token_hex(8)}__"
        outcome: dict[str, Any] = {}
        done = threading.Event()
        abandoned = threading.Event()

        def invoke() -> None:
            # The packages first (bounded by install_timeout_s), then the tool (bounded by its timeout_s
            # from when its code is sent): a large install does not eat the tool's own time.
            try:
                site = self._provision(session, request, digest) if digest is not None else None
                program = build_program(request, marker, site)
                if abandoned.is_set():  # timed out or cancelled while installing: the code never goes
                    return
                outcome["code_started"] = self._monotonic()
                outcome["result"] = self._invoke(session, request.language, program)
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc
            finally:
                done.set()

        started = self._monotonic()
        worker = threading.Thread(target=invoke, name=f"toolrt-ci-{request.execution_id}", daemon=True)
        worker.start()
        stopped_by: ExecutionStatus | None = None
        limit: str | None = None
        while not done.is_set():
            if cancel is not None and cancel.is_set():
                stopped_by = ExecutionStatus.CANCELLED
                break
            code_started = outcome.get("code_started")
            if code_started is None:
                deadline, limit = started + self._install_timeout_s, "install_timeout_s"
            else:
                deadline, limit = code_started + request.timeout_s, "timeout_s"
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                stopped_by = ExecutionStatus.TIMED_OUT
                break
            done.wait(min(0.05, remaining))
        wall_ms = max((self._monotonic() - outcome.get("code_started", started)) * 1000.0, 0.001)
        if stopped_by is not None:
            abandoned.set()
            # Stopping the session is what kills the running code (or install) remotely.
            self._stop(session)
            bound.info("code_interpreter.stopped", status=stopped_by.value, session_id=session.session_id, limit=limit)
            limit = limit if stopped_by is ExecutionStatus.TIMED_OUT else None
            return SandboxResult(stopped_by, metrics=self._metrics(wall_ms, None, limit))
        if "error" in outcome:
            self._stop(session)
            raise self._error(outcome["error"], request)
        self._checkin(session)
        return self._result(outcome["result"], request, marker, wall_ms)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions = [s for group in self._idle.values() for s in group]
            self._idle = {}
        for session in sessions:
            self._stop(session)

    # -- sessions --------------------------------------------------------------------------------

    def _checkout(self, key: tuple[str, ...]) -> _Session:
        now = self._monotonic()
        expired: list[_Session] = []
        chosen: _Session | None = None
        with self._lock:
            group = self._idle.get(key, [])
            while group:
                candidate = group.pop()
                if candidate.calls < self._max_calls and now - candidate.started < self._session_ttl_s:
                    chosen = candidate
                    break
                expired.append(candidate)
            if not group:
                self._idle.pop(key, None)
        for session in expired:
            self._stop(session)
        if chosen is not None:
            return chosen
        response = self._with_retries(
            "start_code_interpreter_session",
            lambda: self._client.start_code_interpreter_session(
                codeInterpreterIdentifier=self._interpreter,
                name=f"toolrt-{secrets.token_hex(6)}",
                sessionTimeoutSeconds=self._session_timeout_s,
            ),
            is_transient,
        )
        log.debug("code_interpreter.session_started", session_id=response["sessionId"])
        return _Session(str(response["sessionId"]), now, key)

    def _checkin(self, session: _Session) -> None:
        evicted: list[_Session] = []
        with self._lock:
            if not self._closed:
                self._idle.setdefault(session.key, []).append(session)
                while sum(len(g) for g in self._idle.values()) > self._max_idle:
                    oldest_key = min(self._idle, key=lambda k: self._idle[k][0].started)
                    evicted.append(self._idle[oldest_key].pop(0))
                    if not self._idle[oldest_key]:
                        del self._idle[oldest_key]
            else:
                evicted.append(session)
        for old in evicted:
            self._stop(old)

    def _stop(self, session: _Session) -> None:
        try:
            self._client.stop_code_interpreter_session(
                codeInterpreterIdentifier=self._interpreter, sessionId=session.session_id
            )
        except (ClientError, BotoCoreError) as exc:
            # Sessions also end on their own timeout; a failed stop only delays that.
            log.warning("code_interpreter.stop_failed", session_id=session.session_id, error=str(exc))

    def _with_retries(self, operation: str, call: Callable[[], Any], retryable: Callable[[BaseException], bool]) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return call()
            except (ClientError, BotoCoreError) as exc:
                # An emulator without Code Interpreter answers the same every time: no retry.
                emulated = not (self._endpoint_url and _not_emulated(exc))
                if attempt == self._attempts or not retryable(exc) or not emulated:
                    raise self._error(exc, None, operation) from exc
                log.debug("code_interpreter.retry", operation=operation, attempt=attempt, error=str(exc))
                self._sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
        raise AssertionError("unreachable")

    # -- packages --------------------------------------------------------------------------------

    def _provision(self, session: _Session, request: SandboxRequest, digest: str) -> str:
        """Install the wheels of the call's lock in ``session`` (once per session and lock) and
        return where: ``.toolrt/env/<digest>`` in the session's working folder.

        The wheels (a folder the aws environments keep, named by the lock's digest, with the pinned
        requirements beside them) are uploaded with ``writeFiles``, then installed with pip from that
        folder alone, hashes required: no index, no network, exactly the locked files. A failure stops
        the session (it may hold half an install) and fails the call before the tool's code runs.
        """
        wheels = Path(str(request.environment))
        site = f"{ENV_DIR}/{digest}"
        if digest in session.installed:
            return site
        started = self._monotonic()
        upload = f"{WHEELS_DIR}/{digest}"
        # Whatever fails here fails the call, and run() stops the session (it may hold half an install).
        try:
            files = sorted(f for f in wheels.iterdir() if f.is_file())
            blobs = ((path.name, path.read_bytes()) for path in files)
            for name, blob in blobs:
                self._tool(session, "writeFiles", {"content": [{"path": f"{upload}/{name}", "blob": blob}]})
        except OSError as exc:
            # Evicted from this machine's cache (another registration needed the room) after the call
            # found it; the lock's next call fetches the wheels again. The host's folders go unnamed.
            raise ExecutionError(
                f"{BACKEND}: the wheels of execution {request.execution_id}'s lock (digest {digest[:12]}) left "
                f"this machine's cache as the call started ({exc.strerror}); it did not run: call it again"
            ) from exc
        # Whatever an earlier call of the session left at that path (sessions may serve several of
        # one agent's tools) is removed first: pip --target keeps folders that already exist.
        command = (
            f"rm -rf {site} && python3 -m pip install --no-index --no-deps --require-hashes --only-binary=:all: --quiet "
            f"--disable-pip-version-check --no-warn-script-location --target {site} "
            f"--find-links {upload} -r {upload}/{PINNED}"
        )
        done = self._tool(session, "executeCommand", {"command": command})
        structured = done["structuredContent"]
        exit_code = structured.get("exitCode")
        if done["isError"] or (exit_code not in (None, 0)):
            stderr = str(structured.get("stderr", "")) or " ".join(str(c.get("text", "")) for c in done["content"])
            lines = [line for line in stderr.splitlines() if line.strip()]
            raise ExecutionError(
                f"{BACKEND}: the tool's packages cannot be installed in Code Interpreter "
                f"({', '.join(f.name for f in files if f.suffix == '.whl')}): {' '.join(lines[-3:]) or 'pip failed'}; "
                f"if they are compiled for another Python, set TOOLRT_CODE_INTERPRETER_PYTHON to the interpreter's "
                f"version and register the tool again, or run it on this machine (sandbox='local'); execution "
                f"{request.execution_id} did not run"
            )
        session.installed.add(digest)
        log.info(
            "code_interpreter.packages_installed",
            session_id=session.session_id,
            digest=digest[:12],
            ms=round((self._monotonic() - started) * 1000.0, 1),
        )
        return site

    def _tool(self, session: _Session, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """One call of the interpreter's ``name`` tool in ``session``, its result events merged."""
        response = self._with_retries(
            "invoke_code_interpreter",
            lambda: self._client.invoke_code_interpreter(
                codeInterpreterIdentifier=self._interpreter,
                sessionId=session.session_id,
                name=name,
                arguments=arguments,
            ),
            _did_not_start,
        )
        return _merge(response)

    # -- invocation ------------------------------------------------------------------------------

    def _invoke(self, session: _Session, language: Language, program: str) -> dict[str, Any]:
        session.calls += 1
        arguments: dict[str, Any] = {"code": program, "language": language.value, "clearContext": True}
        if language is not Language.PYTHON:
            # The service runs JavaScript and TypeScript on Deno unless told otherwise; the harness and
            # tools written for toolrt (module.exports, require) are Node programs: JavaScript runs as
            # CommonJS there, TypeScript as an ES module (see _ESM_PRELUDE).
            arguments["runtime"] = "nodejs"
        return self._tool(session, "executeCode", arguments)

    def _result(self, merged: dict[str, Any], request: SandboxRequest, marker: str, wall_ms: float) -> SandboxResult:
        structured = merged["structuredContent"]
        if "stdout" in structured or "stderr" in structured:
            stdout, stderr = str(structured.get("stdout", "")), str(structured.get("stderr", ""))
        else:
            stdout = "".join(str(c.get("text", "")) for c in merged["content"] if c.get("type") == "text")
            stderr = ""
        exit_code = structured.get("exitCode")
        if structured.get("executionTime") is not None:
            wall_ms = float(structured["executionTime"]) or wall_ms  # milliseconds (the service model)
        payload: Any = None
        kept: list[str] = []
        for line in stdout.split("\n"):
            if line.startswith(marker):
                payload = line[len(marker) :]
            else:
                kept.append(line)
        stdout = "\n".join(kept).rstrip("\n") + ("\n" if kept and any(kept) else "")
        out, out_cut = _bounded(stdout, request.max_output_bytes)
        err, err_cut = _bounded(stderr, request.max_output_bytes)
        metrics = self._metrics(wall_ms, exit_code)
        common: dict[str, Any] = {
            "stdout": out,
            "stderr": err,
            "stdout_truncated": out_cut,
            "stderr_truncated": err_cut,
        }
        if payload is None:
            return SandboxResult(
                ExecutionStatus.FAILED, error=_failure_from_stderr(stderr, exit_code), metrics=metrics, **common
            )
        if len(payload.encode("utf-8")) > request.max_output_bytes:
            return SandboxResult(
                ExecutionStatus.FAILED,
                error=ExecutionFailure("OutputTooLarge", f"the result exceeds {request.max_output_bytes} bytes"),
                metrics=attrs.evolve(metrics, limit="max_output_bytes"),
                **common,
            )
        try:
            result = json.loads(payload)
        except ValueError:
            return SandboxResult(
                ExecutionStatus.FAILED,
                error=ExecutionFailure("HarnessError", "unreadable result line"),
                metrics=metrics,
                **common,
            )
        if result.get("ok"):
            return SandboxResult(ExecutionStatus.SUCCEEDED, output=result.get("output"), metrics=metrics, **common)
        failure = ExecutionFailure(
            str(result.get("type", "Error")), str(result.get("message", "")), str(result.get("traceback", ""))
        )
        return SandboxResult(ExecutionStatus.FAILED, error=failure, metrics=metrics, **common)

    def _metrics(self, wall_ms: float, exit_code: Any, limit: str | None = None) -> ExecutionMetrics:
        return ExecutionMetrics(
            wall_ms=wall_ms,
            exit_code=int(exit_code) if isinstance(exit_code, (int, float)) else None,
            isolation=IsolationLevel.REMOTE,
            limit=limit,
        )

    def _error(
        self, exc: BaseException, request: SandboxRequest | None, operation: str = "invoke_code_interpreter"
    ) -> Exception:
        if isinstance(exc, ExecutionError):
            return exc
        what = f"execution {request.execution_id}" if request is not None else "the call"
        if self._endpoint_url and _not_emulated(exc):
            return ExecutionError(
                f"{BACKEND}: {operation} is not answered by {self._endpoint_url} (moto and LocalStack do not "
                f"emulate AgentCore Code Interpreter); run tools on this machine with sandbox='local' "
                f"(TOOLRT_SANDBOX=local); {what} did not run"
            )
        error = translate(exc, backend=BACKEND, operation=operation, resource=f"code interpreter {self._interpreter}")
        quota = isinstance(exc, ClientError) and error_code(exc) == "ServiceQuotaExceededException"
        if operation == "invoke_code_interpreter" and not (_did_not_start(exc) or quota or _throttled(exc)):
            if is_transient(exc):
                # A read timeout, a dropped connection or a 5xx after the request was sent: the code
                # may be running. It is not sent again, and the caller is not told to retry.
                return ExecutionError(f"{error}; {what} may have run and was not sent again")
            return ExecutionError(f"{error}; {what} did not run")
        if is_transient(exc) or _did_not_start(exc) or quota:
            # A session quota frees up as sessions end: like throttling, this is "retry later".
            return SandboxUnavailable(f"{error}; {what} did not run")
        return ExecutionError(f"{error}; {what} did not run")


_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


def _lock_digest(request: SandboxRequest) -> str:
    """The digest of the lock whose wheels ``request.environment`` holds (``<root>/<digest>/wheels``, as
    the aws environments keep them): it names paths in the session and goes into the command that
    installs them, so nothing but 64 hex digits is ever taken from there."""
    wheels = Path(str(request.environment))
    if wheels.name != "wheels" or not _DIGEST.match(wheels.parent.name):
        raise ExecutionError(
            f"{BACKEND}: {request.environment!r} is not a lock's wheels folder (<lock digest>/wheels, as the aws "
            f"environments keep them); execution {request.execution_id} did not run"
        )
    return wheels.parent.name


def _throttled(exc: BaseException) -> bool:
    # The service's own "throttled" answer, also when it arrives inside the event stream.
    return (
        isinstance(exc, ClientError)
        and (error_code(exc) in THROTTLING_CODES and http_status(exc) < 500)
        and not (error_code(exc).startswith("Internal") or error_code(exc).startswith("ServiceUnavailable"))
    )


def _not_emulated(exc: BaseException) -> bool:
    # A mock endpoint without the service answers 404, or a 5xx "not implemented" (moto's server: an
    # HTML error page, which no AWS service sends), for its paths.
    if isinstance(exc, ClientError):
        status = http_status(exc)
        text = str(exc).lower()
        return (
            status == 404
            or (status >= 500 and ("not yet implemented" in text or "not implemented" in text or is_html_answer(exc)))
            or (error_code(exc) in ("404", "NotFound", "UnknownOperationException"))
        )
    return False


def _bounded(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


def _failure_from_stderr(stderr: str, exit_code: Any) -> ExecutionFailure:
    found = _ERROR_LINE.findall(stderr)
    if found:
        kind, message = found[-1]
        return ExecutionFailure(kind.rsplit(".", 1)[-1], message, stderr)
    return ExecutionFailure("HarnessError", f"the code interpreter returned no result (exit code {exit_code})", stderr)
