"""Turning what a worker sent back into a :class:`SandboxResult`: capped, typed, and never trusted."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

from toolrt.domain import ExecutionFailure, ExecutionMetrics, ExecutionStatus, IsolationLevel
from toolrt.ports import SandboxRequest, SandboxResult

__all__ = ["MIN_FRAME_CAP", "build_result", "node_death", "parse_result", "worker_fields"]

MIN_FRAME_CAP = 1 << 20
STATUSES_FROM_WORKER = {"succeeded", "failed", "killed"}


def cap_text(data: bytes, cap: int) -> tuple[str, bool]:
    """Decode at most ``cap`` bytes, never returning more than ``cap`` bytes of UTF-8."""
    text = data[:cap].decode("utf-8", "replace")
    encoded = text.encode()
    if len(encoded) > cap:
        text = encoded[:cap].decode("utf-8", "ignore")
    return text, len(data) > cap


def _number(value: Any, kind: Callable[[Any], Any]) -> Any:
    """``kind(value)``, or 0 when the value is missing or not a number (never an exception)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return kind(0)
    try:
        return kind(value)
    except (OverflowError, ValueError):
        return kind(0)


def worker_fields(parsed: dict[str, Any]) -> dict[str, Any]:
    """Only status, output, error and limit: metrics and truncation flags are the host's to say."""
    keep = ("status", "output", "error", "limit")
    doc = {k: parsed[k] for k in keep if k in parsed}
    if doc.get("status") not in STATUSES_FROM_WORKER:
        doc["status"] = "failed"  # timed_out and cancelled are for the host and the zygote to say
    return doc


def parse_result(text: str) -> dict[str, Any]:
    """The tool child's own result document (untrusted: the tool could have written it)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return {
            "status": "failed",
            "error": {"type": "SandboxProtocolError", "message": "the tool wrote an unreadable result"},
        }
    return worker_fields(parsed)


def node_death(returncode: int | None, err: bytes, memory_mb: int) -> dict[str, Any]:
    """Explain a Node worker that died without a result: memory, CPU, or a crash."""
    text = err.decode(errors="replace")
    if "heap out of memory" in text or "Fatal process out of memory" in text:
        return {
            "status": "killed",
            "limit": "memory",
            "error": {"type": "MemoryError", "message": f"memory limit of {memory_mb} MB exceeded"},
        }
    if returncode is not None and returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return {
            "status": "killed",
            "limit": "cpu",
            "error": {"type": "CpuLimitExceeded", "message": "CPU time limit exceeded"},
        }
    return {
        "status": "failed",
        "error": {
            "type": "NoResult",
            "message": f"the Node process ended (code {returncode}) before returning a value: {text[-500:]}",
        },
    }


def build_result(
    doc: dict[str, Any],
    decided: str | None,
    started: float,
    out: bytes,
    err: bytes,
    request: SandboxRequest,
    isolation: IsolationLevel,
    returncode: int | None = None,
) -> SandboxResult:
    """The call's result: host-decided statuses win, every text is capped, metrics are the host's."""
    wall_ms = (time.perf_counter() - started) * 1000.0
    stdout, out_cut = cap_text(out, request.max_output_bytes)
    stderr, err_cut = cap_text(err, request.max_output_bytes)
    status_text = decided if decided in ("timed_out", "cancelled") else str(doc.get("status", "failed"))
    if status_text not in STATUSES_FROM_WORKER | {"timed_out", "cancelled"}:
        status_text = "failed"
    status = ExecutionStatus(status_text)
    output = None
    error = None
    if status is ExecutionStatus.SUCCEEDED:
        try:
            output = json.loads(doc.get("output", "null"))
        except (TypeError, ValueError):
            status = ExecutionStatus.FAILED
            error = ExecutionFailure("SandboxProtocolError", "the worker returned an unreadable value")
    elif status is ExecutionStatus.TIMED_OUT:
        error = ExecutionFailure("TimeoutError", f"the call ran longer than its {request.timeout_s:g} s timeout")
    elif status is ExecutionStatus.CANCELLED:
        error = ExecutionFailure("Cancelled", "the call was cancelled")
    if error is None and isinstance(doc.get("error"), dict):
        e = doc["error"]
        error = ExecutionFailure(
            str(e.get("type", "Error"))[:200], str(e.get("message", ""))[:4000], str(e.get("traceback", ""))[:16000]
        )
    if error is None and status is not ExecutionStatus.SUCCEEDED:
        error = ExecutionFailure("Error", "the call did not complete")
    limit = doc.get("limit") if status is ExecutionStatus.KILLED else None
    exit_code = doc.get("exit_code", returncode)
    metrics = ExecutionMetrics(
        wall_ms=wall_ms,
        cpu_ms=_number(doc.get("cpu_ms"), float),
        max_rss_kb=int(_number(doc.get("max_rss_kb"), int)),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        isolation=isolation,
        limit=str(limit) if limit else None,
    )
    return SandboxResult(
        status=status,
        output=output,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=out_cut or bool(doc.get("stdout_truncated")),
        stderr_truncated=err_cut or bool(doc.get("stderr_truncated")),
        error=error,
        metrics=metrics,
    )
