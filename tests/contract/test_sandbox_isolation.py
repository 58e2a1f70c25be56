"""The shipped isolation suite runs against every sandbox backend that claims isolation: toolrt's
own, and any an installed package registers (``toolrt.backends``), each in its strictest mode."""

from __future__ import annotations

from typing import NoReturn

import pytest

from toolrt.backends import Backend, BackendParts, backends
from toolrt.contracts import SandboxIsolationContract
from toolrt.ports import Sandbox
from toolrt.settings import Settings, SettingsError

pytestmark = [pytest.mark.bwrap, pytest.mark.node]


def _no_aws() -> NoReturn:
    raise SettingsError("the isolation suite runs sandboxes on this host: no AWS clients")


def isolating_sandboxes() -> list[Backend]:
    """Each sandbox backend that claims isolation, once (two names may build the same sandbox)."""
    seen: set[object] = set()
    found = []
    for backend in backends("sandbox").values():
        if backend.isolating and backend.build not in seen:
            seen.add(backend.build)
            found.append(backend)
    return found


def _suite(backend: Backend) -> type[SandboxIsolationContract]:
    def make_sandbox(self: SandboxIsolationContract) -> Sandbox:
        settings = Settings(profile="memory", isolation="strict", sandbox_workers=1)
        sandbox: Sandbox = backend.build(BackendParts(settings, aws_clients=_no_aws))
        return sandbox

    name = f"TestIsolationOf_{backend.name}"
    doc = f"The isolation suite against the {backend.name!r} sandbox backend."
    return type(name, (SandboxIsolationContract,), {"make_sandbox": make_sandbox, "__doc__": doc})


for _backend in isolating_sandboxes():
    globals()[f"TestIsolationOf_{_backend.name}"] = _suite(_backend)


def test_toolrt_claims_isolation_for_its_local_sandbox_only() -> None:
    """The local sandbox (which the memory profile runs too) claims isolation; running Python in
    this process does not, and AgentCore's remote isolation needs a suite run from AWS."""
    claims = {name for name, backend in backends("sandbox").items() if backend.isolating}
    assert {"local", "memory"} <= claims and not claims & {"inprocess", "aws"}
    assert [b.name for b in isolating_sandboxes()][:1] == ["local"]
