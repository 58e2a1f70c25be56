"""Port contract suites every adapter must pass, and the JSON Schemas of toolrt's file formats.

Subclass a suite once per adapter and implement its single factory method::

    class TestMyRepository(ToolRepositoryContract):
        def make_repository(self) -> ToolRepository:
            return MyRepository(...)

The suites are plain pytest classes; they import only ``toolrt.ports`` and ``toolrt.domain``.
The suites need pytest (a test dependency), so they load on first use: importing
``toolrt.contracts`` itself, as toolrt does at run time to read the file-format schemas in
``toolrt.contracts/schemas``, imports no test code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolrt.contracts.artifact_store import ArtifactStoreContract
    from toolrt.contracts.gateway import ToolGatewayContract
    from toolrt.contracts.repository import ToolRepositoryContract
    from toolrt.contracts.sandbox import SandboxContract

_SUITES = {
    "ArtifactStoreContract": "artifact_store",
    "SandboxContract": "sandbox",
    "ToolGatewayContract": "gateway",
    "ToolRepositoryContract": "repository",
}

__all__ = ["ArtifactStoreContract", "SandboxContract", "ToolGatewayContract", "ToolRepositoryContract"]


def __getattr__(name: str) -> Any:
    module = _SUITES.get(name)
    if module is None:
        raise AttributeError(f"module 'toolrt.contracts' has no attribute {name!r}")
    return getattr(importlib.import_module(f"toolrt.contracts.{module}"), name)
