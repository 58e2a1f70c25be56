"""The local sandbox from a user's side: tool forms, errors, concurrency, fallback and clean shutdown."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import host_processes_with
from toolrt.adapters.local.sandbox import SubprocessSandbox, probe_environment
from toolrt.domain import ExecutionError, ExecutionStatus, IsolationLevel, Language
from toolrt.ports import SandboxRequest, SandboxResult


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(workers=1)
    try:
        yield sb
    finally:
        sb.close()


def run(
    sb: SubprocessSandbox,
    code: str,
    params: dict[str, Any] | None = None,
    *,
    language: Language = Language.PYTHON,
    entrypoint: str = "handler",
    **limits: Any,
) -> SandboxResult:
    fields: dict[str, Any] = {"timeout_s": 10.0, "memory_mb": 128, "max_output_bytes": 64 * 1024}
    fields.update(limits)
    return sb.run(SandboxRequest("it", language, code, entrypoint, params or {}, **fields))


def test_python_named_entrypoint_and_keyword_params(sandbox: SubprocessSandbox) -> None:
    """A Python tool's named entrypoint receives params as keyword arguments."""
    result = run(sandbox, "def add(a, b=1):\n    return a + b\n", {"a": 2, "b": 5}, entrypoint="add")
    assert result.output == 7


def test_python_traceback_is_trimmed_to_the_tool(sandbox: SubprocessSandbox) -> None:
    """A failure's traceback shows the tool's own frames and none of the harness."""
    code = "def inner():\n    return 1 / 0\n\ndef handler():\n    return inner()\n"
    result = run(sandbox, code)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.type == "ZeroDivisionError"
    assert 'File "tool.py", line 2, in inner' in result.error.traceback
    assert "zygote" not in result.error.traceback


@pytest.mark.parametrize("language", [Language.PYTHON, Language.JAVASCRIPT])
def test_non_json_return_value_fails_clearly(sandbox: SubprocessSandbox, language: Language) -> None:
    """A return value that is not JSON gives status failed with a message saying so."""
    if language is Language.PYTHON:
        code = "def handler():\n    return {1, 2}\n"
    else:
        code = "function handler() { return { n: 10n }; }\n"
    result = run(sandbox, code, language=language)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and "not JSON-serializable" in result.error.message


@pytest.mark.node
@pytest.mark.parametrize(
    "code",
    [
        "function handler(p) { return p.x + 1; }\n",
        "module.exports = { handler: async (p) => p.x + 1 };\n",
        "export function handler(p) { return p.x + 1; }\n",
        "import { sep } from 'node:path';\nexport async function handler(p) { return sep === '/' ? p.x + 1 : 0; }\n",
    ],
    ids=["plain", "commonjs", "esm", "esm-import"],
)
def test_the_javascript_forms_agents_write(sandbox: SubprocessSandbox, code: str) -> None:
    """Plain functions, module.exports and ES module exports all work."""
    result = run(sandbox, code, {"x": 41}, language=Language.JAVASCRIPT)
    assert result.status is ExecutionStatus.SUCCEEDED, result
    assert result.output == 42


@pytest.mark.node
def test_typescript_error_points_at_the_tool(sandbox: SubprocessSandbox) -> None:
    """TypeScript runs by type stripping and its errors name the tool's line."""
    code = (
        "interface P { x: number }\n\nexport function handler(p: P): number {\n  throw new RangeError(`x=${p.x}`);\n}\n"
    )
    result = run(sandbox, code, {"x": 1}, language=Language.TYPESCRIPT)
    assert result.error is not None and result.error.type == "RangeError" and result.error.message == "x=1"
    assert "tool.mjs:4" in result.error.traceback


def test_concurrent_calls_from_a_thread_pool(sandbox: SubprocessSandbox) -> None:
    """Several threads can run calls at once and each gets its own answer."""
    code = "def handler(n):\n    return n * n\n"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: run(sandbox, code, {"n": n}).output, range(12)))
    assert results == [n * n for n in range(12)]


def test_cancel_before_start_runs_nothing(sandbox: SubprocessSandbox) -> None:
    """A call whose cancel signal is already set comes back cancelled."""
    cancel = threading.Event()
    cancel.set()
    req = SandboxRequest("it", Language.PYTHON, "def handler():\n    return 1\n", "handler", {}, 5.0, 64, 1024)
    assert sandbox.run(req, cancel).status is ExecutionStatus.CANCELLED


def test_strict_refuses_without_namespaces() -> None:
    """isolation='strict' raises a clear error when namespaces are unavailable."""
    with pytest.raises(ExecutionError, match="strict"):
        SubprocessSandbox(isolation="strict", bwrap=False)


def test_fallback_says_so_in_metrics_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """Without namespaces, auto mode still runs, reports process isolation and warns once."""
    caplog.set_level(logging.WARNING, logger="toolrt")
    first = SubprocessSandbox(bwrap=False, workers=0)
    second = SubprocessSandbox(bwrap=False, workers=0)
    try:
        result = run(first, "def handler():\n    return 'ok'\n")
        assert result.output == "ok"
        assert result.metrics.isolation is IsolationLevel.PROCESS
        assert first.isolation is IsolationLevel.PROCESS
    finally:
        first.close()
        second.close()
    warnings = [r for r in caplog.records if "without namespaces" in r.getMessage()]
    assert len(warnings) <= 1  # one per process (it may already have been given by an earlier test)


def test_fallback_never_follows_a_planted_link(tmp_path: Path) -> None:
    """A symlink a tool plants in its work dir is not followed when the host cleans up."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    os.chmod(tmp_path, 0o755)
    sb = SubprocessSandbox(bwrap=False, workers=0)
    try:
        code = "import os\ndef handler(target):\n    os.symlink(target, 'link')\n    os.symlink(target, '../link2')\n    return 1\n"
        run(sb, code, {"target": str(victim)})
    finally:
        sb.close()
    assert (victim / "keep.txt").read_text() == "precious"


@pytest.mark.bwrap
def test_close_leaves_no_process_behind() -> None:
    """close() stops every worker, idle or busy."""
    sb = SubprocessSandbox(workers=2)
    assert run(sb, "def handler():\n    return 1\n").output == 1
    pids = [pid for w in list(sb._live) for pid in (w.pid, *w.tree())]  # noqa: SLF001 - the outside view
    # Each process by its pid and start time: on a busy host a pid can be reused by another.
    started = {pid: _stat(pid)[19] for pid in pids if _stat(pid)}
    sb.close()
    for pid, when in started.items():
        now = _stat(pid)
        assert not now or now[19] != when or now[0] == "Z", (pid, now)


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command (state first), or [] when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def test_probe_environment_reports_the_choice() -> None:
    """probe_environment() tells doctor what was found and which isolation toolrt will use."""
    info = probe_environment()
    assert info["isolation"] in ("namespaces", "process")
    assert {"bwrap_path", "bwrap_version", "user_namespaces", "node_path", "node_version", "reason"} <= set(info)


@pytest.mark.node
def test_node_pools_stay_bounded_whatever_memory_sizes_tools_ask_for() -> None:
    """Tools asking for many different memory sizes do not pile up pools of idle Node processes."""
    from toolrt.adapters.local.sandbox import MAX_NODE_POOLS

    sb = SubprocessSandbox(isolation="auto", workers=1)
    try:
        for memory_mb in range(900, 900 + MAX_NODE_POOLS + 4):  # sizes no other test uses
            request = SandboxRequest(
                f"m{memory_mb}",
                Language.JAVASCRIPT,
                "function handler() { return 1; }\n",
                "handler",
                {},
                10.0,
                memory_mb,
                4096,
            )
            assert sb.run(request).output == 1
        time.sleep(1.0)  # let the pools top themselves up
        # Seen from outside: each idle worker is a bwrap process and a node process (at most three
        # with bwrap's own init), one idle worker per pool kept.
        assert len(host_processes_with("--max-old-space-size=90")) <= 3 * MAX_NODE_POOLS
    finally:
        sb.close()
