"""Shared fixtures for the hostile tests: one namespaced sandbox per module and outside-view helpers."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.domain import Language
from toolrt.ports import SandboxRequest, SandboxResult

ISOLATION_MODES = ["namespaces", "process"]


def one_worker_sandbox(mode: str) -> SubprocessSandbox:
    """A one-worker sandbox in ``mode``: bubblewrap namespaces (strict), or process isolation only."""
    if mode == "namespaces":
        return SubprocessSandbox(isolation="strict", workers=1)
    return SubprocessSandbox(isolation="auto", workers=1, bwrap=False)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(isolation="strict", workers=1)
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture
def served(caplog: pytest.LogCaptureFixture) -> Callable[[], list[int]]:
    """The host pids of the zygotes that served this test's Python calls so far, in order: read from
    the sandbox's debug log, the outside view of which process relayed a call."""
    caplog.set_level(logging.DEBUG, logger="toolrt.adapters.local.sandbox")

    def zygotes() -> list[int]:
        return [r.__dict__["toolrt"]["zygote"] for r in caplog.records if "zygote" in getattr(r, "toolrt", {})]

    return zygotes


def run(
    sb: SubprocessSandbox,
    code: str,
    params: dict[str, Any] | None = None,
    *,
    language: Language = Language.PYTHON,
    **limits: Any,
) -> SandboxResult:
    fields: dict[str, Any] = {"timeout_s": 10.0, "memory_mb": 128, "max_output_bytes": 64 * 1024}
    fields.update(limits)
    return sb.run(SandboxRequest("hostile", language, code, "handler", params or {}, **fields))


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker`` (the outside view of surviving processes)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found
