"""A sandbox that is none: Python tools run in the calling process, for fast tests of trusted code."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import traceback
from typing import Any

from toolrt.domain import ExecutionError, ExecutionFailure, ExecutionMetrics, ExecutionStatus, IsolationLevel, Language
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

__all__ = ["InProcessSandbox"]


class InProcessSandbox:
    """Runs Python tools with ``exec`` in this process: fast and deterministic, and no isolation at all.

    Made for the in-memory test harness (``toolrt.connect("memory", sandbox="inprocess")``) where the
    code under test is the test author's own. Every result says ``isolation: none``; a runtime
    configured with ``isolation="strict"`` refuses it. Timeouts and memory limits are not enforced,
    a tool can change this process, and calls run one at a time (stdout is captured process-wide).
    JavaScript and TypeScript are not supported here.
    """

    isolation = IsolationLevel.NONE

    def __init__(self, isolation: str = "auto") -> None:
        if isolation == "strict":
            raise ExecutionError("isolation='strict' refuses the in-process sandbox: it isolates nothing")
        self._lock = threading.Lock()

    def supports(self, language: Language) -> bool:
        return language is Language.PYTHON

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        if request.language is not Language.PYTHON:
            raise ExecutionError(f"the in-process sandbox runs Python only, not {request.language.value}")
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        status, output, error = ExecutionStatus.SUCCEEDED, None, None
        with self._lock, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                namespace: dict[str, Any] = {"__name__": "__tool__"}
                exec(compile(request.code, "tool.py", "exec"), namespace)  # noqa: S102 - trusted test code, by design
                value = namespace[request.entrypoint](**request.params)
                output = json.loads(json.dumps(value, allow_nan=False))
            except Exception as exc:  # the tool's own failure, reported as a failed call
                status = ExecutionStatus.FAILED
                error = ExecutionFailure(type(exc).__name__, str(exc), traceback.format_exc(limit=-3))
        wall = (time.perf_counter() - started) * 1000.0
        return SandboxResult(
            status=status,
            output=output,
            stdout=out.getvalue()[: request.max_output_bytes],
            stderr=err.getvalue()[: request.max_output_bytes],
            error=error,
            metrics=ExecutionMetrics(
                wall_ms=wall,
                cpu_ms=0.0,
                max_rss_kb=0,
                exit_code=0 if error is None else 1,
                isolation=IsolationLevel.NONE,
            ),
        )

    def close(self) -> None:
        """Nothing to stop."""
