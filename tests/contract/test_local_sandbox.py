"""The local subprocess sandbox passes the shipped Sandbox contract for all three languages, on both
JavaScript engines (Node workers, and QuickJS forked from the Python zygote)."""

from __future__ import annotations

import pytest

from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.contracts import SandboxContract
from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import Sandbox, SandboxRequest

pytestmark = [pytest.mark.bwrap, pytest.mark.node]

needs_quickjs = pytest.mark.skipif(
    find_quickjs() is None, reason="quickjs-ng is not installed (pip install 'toolrt[js]')"
)


class TestSubprocessSandbox(SandboxContract):
    languages = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="strict", workers=1, js_engine="node")


class TestSubprocessSandboxWithoutNamespaces(SandboxContract):
    languages = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="auto", workers=1, bwrap=False, js_engine="node")


class _OnQuickJS(SandboxContract):
    """The same contract with every JavaScript and TypeScript call on QuickJS (Python as ever)."""

    languages = (Language.PYTHON, Language.JAVASCRIPT, Language.TYPESCRIPT)

    def test_runs_on_quickjs(self, sandbox: Sandbox) -> None:
        """The calls of this suite really run on QuickJS: Node's globals are absent."""
        code = "function handler() { return [typeof process, typeof require, typeof Buffer]; }\n"
        result = sandbox.run(SandboxRequest("q", Language.JAVASCRIPT, code, "handler", {}, 10.0, 256, 65536))
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert result.output == ["undefined", "undefined", "undefined"]


@pytest.mark.quickjs
@needs_quickjs
class TestSubprocessSandboxOnQuickJS(_OnQuickJS):
    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="strict", workers=1, js_engine="quickjs")


@pytest.mark.quickjs
@needs_quickjs
class TestSubprocessSandboxOnQuickJSWithoutNamespaces(_OnQuickJS):
    def make_sandbox(self) -> Sandbox:
        return SubprocessSandbox(isolation="auto", workers=1, bwrap=False, js_engine="quickjs")
