"""Shared fixtures for the hostile tests: one namespaced sandbox per module and outside-view helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from toolrt.adapters.local.sandbox import SubprocessSandbox

# The outside-view helpers are the shipped isolation suite's (toolrt.contracts.isolation).
from toolrt.contracts.isolation import host_processes_with
from toolrt.contracts.isolation import run_hostile as run

__all__ = ["ISOLATION_MODES", "host_processes_with", "one_worker_sandbox", "run"]

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
