"""Shared fixtures for the hostile tests: one namespaced sandbox per module and outside-view helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
