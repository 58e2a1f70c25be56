"""The local subprocess sandbox passes the shipped Sandbox contract for all three languages."""

from __future__ import annotations

import pytest

from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.contracts import SandboxContract
from toolrt.domain import Language
from toolrt.ports import Sandbox

pytestmark = [pytest.mark.bwrap, pytest.mark.node]


class TestSubprocessSandbox(SandboxContract):
    languages = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="strict", workers=1)


class TestSubprocessSandboxWithoutNamespaces(SandboxContract):
    languages = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="auto", workers=1, bwrap=False)
