"""Port contract suites every adapter must pass, and the JSON Schemas of toolrt's file formats.

Subclass a suite once per adapter and implement its single factory method::

    class TestMyRepository(ToolRepositoryContract):
        def make_repository(self) -> ToolRepository:
            return MyRepository(...)

The suites are plain pytest classes; they import only ``toolrt.ports`` and ``toolrt.domain``.
"""

from toolrt.contracts.artifact_store import ArtifactStoreContract
from toolrt.contracts.gateway import ToolGatewayContract
from toolrt.contracts.repository import ToolRepositoryContract
from toolrt.contracts.sandbox import SandboxContract

__all__ = ["ArtifactStoreContract", "SandboxContract", "ToolGatewayContract", "ToolRepositoryContract"]
