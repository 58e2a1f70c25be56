"""An HTTP-level stand-in for AgentCore Code Interpreter that runs programs in local subprocesses.

It answers botocore's real requests (validated against the service model before they are sent)
with real wire responses: JSON bodies, error headers and ``application/vnd.amazon.eventstream``
frames, which botocore's own parsers decode. Queued faults let tests inject throttling and 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from toolrt.adapters.node import find_node


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_frame(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One event-stream message: prelude, CRC, headers, JSON payload, message CRC."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    body = json.dumps(payload).encode()
    total = 12 + len(head) + len(body) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + head + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def result_event(result: dict[str, Any]) -> bytes:
    return event_frame({":message-type": "event", ":event-type": "result", ":content-type": "application/json"}, result)


def exception_event(kind: str, message: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"}
    return event_frame(headers, {"message": message})


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self._data


class FakeCodeInterpreter:
    """Register on a ``bedrock-agentcore`` client; ``faults`` is a list of (operation, status, code)."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[tuple[str, int, str]] = []
        self.stream_faults: list[str] = []
        # Invocations that run the code and then never answer (botocore sees a read timeout).
        self.read_timeouts = 0
        self.executions = 0
        self.last_execution_ms: float | None = None
        self.sessions: dict[str, subprocess.Popen[bytes] | None] = {}
        # Each session's working folder, where writeFiles writes and commands and code run (like the
        # service's per-session file system); removed when the session stops.
        self.folders: dict[str, Path] = {}
        # (session id, tool name) of every invocation, in order.
        self.tools: list[tuple[str, str]] = []
        self.stopped: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.bedrock-agentcore", self._send)

    def _send(self, request: Any, **kwargs: Any) -> AWSResponse:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}") if request.body else {}
        session_header = request.headers.get("x-amzn-code-interpreter-session-id")
        if session_header:
            body["sessionId"] = session_header.decode() if isinstance(session_header, bytes) else str(session_header)
        with self._lock:
            self.requests.append((operation, body))
            fault = next((f for f in self.faults if f[0] == operation), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            _, status, code = fault
            return self._response(request, status, {"message": f"injected {code}"}, {"x-amzn-ErrorType": code})
        query = parse_qs(urlsplit(request.url).query)
        if operation == "StartCodeInterpreterSession":
            sid = uuid.uuid4().hex
            self.sessions[sid] = None
            self.folders[sid] = Path(tempfile.mkdtemp(prefix=f"fake-ci-{sid[:8]}-"))
            return self._response(
                request,
                200,
                {"codeInterpreterIdentifier": "aws.codeinterpreter.v1", "sessionId": sid, "createdAt": time.time()},
            )
        if operation == "StopCodeInterpreterSession":
            sid = query["sessionId"][0]
            self.stopped.append(sid)
            proc = self.sessions.pop(sid, None)
            if proc is not None:
                proc.kill()
            folder = self.folders.pop(sid, None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            return self._response(
                request,
                200,
                {"codeInterpreterIdentifier": "aws.codeinterpreter.v1", "sessionId": sid, "lastUpdatedAt": time.time()},
            )
        if operation == "InvokeCodeInterpreter":
            sid = request.headers.get("x-amzn-code-interpreter-session-id", b"")
            sid = sid.decode() if isinstance(sid, bytes) else str(sid)
            if self.stream_faults:
                kind = self.stream_faults.pop(0)
                return self._stream(request, exception_event(kind, f"injected {kind}"))
            if sid in self.stopped:  # as the service: a stopped session runs nothing more
                return self._response(
                    request,
                    404,
                    {"message": f"session {sid} was stopped"},
                    {"x-amzn-ErrorType": "ResourceNotFoundException"},
                )
            self.tools.append((sid, body["name"]))
            if body["name"] == "writeFiles":
                result = self._write(sid, body["arguments"])
            elif body["name"] == "executeCommand":
                result = self._command(sid, body["arguments"])
            else:
                result = self._execute(sid, body["arguments"])
            if self.read_timeouts:
                self.read_timeouts -= 1
                raise ReadTimeoutError(endpoint_url=request.url)
            return self._stream(request, result_event(result))
        return self._response(
            request, 400, {"message": f"unsupported {operation}"}, {"x-amzn-ErrorType": "ValidationException"}
        )

    def _write(self, sid: str, arguments: dict[str, Any]) -> dict[str, Any]:
        folder = self.folders[sid]
        written = []
        for item in arguments["content"]:
            path = (folder / item["path"]).resolve()
            assert path.is_relative_to(folder), "the fake writes inside the session's folder only"
            path.parent.mkdir(parents=True, exist_ok=True)
            if "blob" in item:
                path.write_bytes(base64.b64decode(item["blob"]))
            else:
                path.write_text(item["text"], encoding="utf-8")
            written.append(item["path"])
        return {"content": [{"type": "text", "text": f"wrote {len(written)} file(s)"}], "isError": False}

    def _command(self, sid: str, arguments: dict[str, Any]) -> dict[str, Any]:
        # `python3` is this interpreter (with pip), as the service's shell has its own.
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        done = subprocess.run(
            ["/bin/sh", "-c", arguments["command"]], cwd=self.folders[sid], capture_output=True, text=True, env=env
        )
        return {
            "content": [{"type": "text", "text": done.stdout}],
            "structuredContent": {"stdout": done.stdout, "stderr": done.stderr, "exitCode": done.returncode},
            "isError": done.returncode != 0,
        }

    def _execute(self, sid: str, arguments: dict[str, Any]) -> dict[str, Any]:
        language, code = arguments["language"], arguments["code"]
        if language == "python":
            argv = [sys.executable, "-c", code]
        else:
            node = find_node()
            assert node is not None, "node is needed to run javascript in the fake interpreter"
            # The service runs JavaScript/TypeScript on Deno unless `runtime` says "nodejs" (the
            # model: "defaults to deno"). Deno runs ES modules: no `module`, `require` or `exports`.
            # On nodejs, JavaScript runs as CommonJS and TypeScript as an ES module (its compiled
            # output). The program is run from a file of that kind, not `node -e`, whose ES-module
            # mode still has a global `module`. Node 24 strips TypeScript's types itself.
            if arguments.get("runtime") == "nodejs":
                suffix = ".mts" if language == "typescript" else ".cjs"
            else:
                suffix = ".mts" if language == "typescript" else ".mjs"
            folder = self.folders.get(sid) or Path(tempfile.mkdtemp(prefix="fake-ci-"))
            program = folder / f"program-{uuid.uuid4().hex[:8]}{suffix}"
            program.write_text(code, encoding="utf-8")
            argv = [str(node), str(program)]
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.folders.get(sid))
        self.sessions[sid] = proc
        out, err = proc.communicate()
        if language != "python":
            program.unlink(missing_ok=True)
        elapsed_ms = (time.monotonic() - started) * 1000.0  # the service reports milliseconds
        self.executions += 1
        self.last_execution_ms = elapsed_ms
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return {
            "content": [{"type": "text", "text": stdout}],
            "structuredContent": {
                "stdout": stdout,
                "stderr": stderr,
                "exitCode": proc.returncode,
                "executionTime": elapsed_ms,
            },
            "isError": proc.returncode != 0,
        }

    @staticmethod
    def _response(
        request: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> AWSResponse:
        all_headers = {"Content-Type": "application/json", "x-amzn-RequestId": uuid.uuid4().hex, **(headers or {})}
        return AWSResponse(request.url, status, all_headers, _Raw(json.dumps(body).encode()))  # type: ignore[arg-type]  # a dict, as botocore takes it

    @staticmethod
    def _stream(request: Any, data: bytes) -> AWSResponse:
        headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": uuid.uuid4().hex}
        return AWSResponse(request.url, 200, headers, _Raw(data))  # type: ignore[arg-type]
