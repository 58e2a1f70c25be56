"""Port contract suites every adapter must pass, and the JSON Schemas of toolrt's file formats.

Subclass a suite once per adapter and implement its single factory method::

    class TestMyTeams(TeamsContract):
        def make_teams(self) -> Teams:
            return MyTeams(...)

A store implements the storage ports one at a time (``ToolRecordsContract``,
``CodeReferencesContract``, ``SearchIndexContract``, ``ExecutionLogContract``, ``TeamsContract``,
``CountersContract``); ``OneStoreContract`` checks what holds across them in one store, and
``ToolRepositoryContract`` runs them all against one object (``make_repository``). A sandbox that
claims to isolate tools also passes ``SandboxIsolationContract``: hostile tools, checked from outside.

The suites are plain pytest classes; they import only ``toolrt.ports`` and ``toolrt.domain``.
The suites need pytest and hypothesis (test dependencies), so they load on first use: importing
``toolrt.contracts`` itself, as toolrt does at run time to read the file-format schemas in
``toolrt.contracts/schemas``, imports no test code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolrt.contracts.artifact_store import ArtifactStoreContract
    from toolrt.contracts.code_references import CodeReferencesContract
    from toolrt.contracts.counters import CountersContract
    from toolrt.contracts.execution_log import ExecutionLogContract
    from toolrt.contracts.gateway import ToolGatewayContract
    from toolrt.contracts.isolation import SandboxIsolationContract
    from toolrt.contracts.repository import OneStoreContract, ToolRepositoryContract
    from toolrt.contracts.sandbox import SandboxContract
    from toolrt.contracts.search_index import SearchIndexContract
    from toolrt.contracts.teams import TeamsContract
    from toolrt.contracts.tool_records import ToolRecordsContract

_SUITES = {
    "ArtifactStoreContract": "artifact_store",
    "CodeReferencesContract": "code_references",
    "CountersContract": "counters",
    "ExecutionLogContract": "execution_log",
    "OneStoreContract": "repository",
    "SandboxContract": "sandbox",
    "SandboxIsolationContract": "isolation",
    "SearchIndexContract": "search_index",
    "TeamsContract": "teams",
    "ToolGatewayContract": "gateway",
    "ToolRecordsContract": "tool_records",
    "ToolRepositoryContract": "repository",
}

__all__ = [
    "ArtifactStoreContract",
    "CodeReferencesContract",
    "CountersContract",
    "ExecutionLogContract",
    "OneStoreContract",
    "SandboxContract",
    "SandboxIsolationContract",
    "SearchIndexContract",
    "TeamsContract",
    "ToolGatewayContract",
    "ToolRecordsContract",
    "ToolRepositoryContract",
]


def __getattr__(name: str) -> Any:
    module = _SUITES.get(name)
    if module is None:
        raise AttributeError(f"module 'toolrt.contracts' has no attribute {name!r}")
    return getattr(importlib.import_module(f"toolrt.contracts.{module}"), name)
