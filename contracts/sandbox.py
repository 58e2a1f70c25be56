"""The contract every Sandbox adapter must pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from toolrt.domain import ExecutionStatus, Language
from toolrt.ports import Sandbox, SandboxRequest

_CODE = {
    Language.PYTHON: {
        "echo": "def handler(**params):\n    print('to stdout')\n    return {'got': params}\n",
        "boom": "def handler(**params):\n    raise ValueError('bad value')\n",
        "sleep": "import time\ndef handler(**params):\n    time.sleep(60)\n",
        "flood": "def handler(**params):\n    print('x' * 1000000)\n    return 1\n",
        "async": "import asyncio\nasync def handler(n):\n    await asyncio.sleep(0)\n    return n * 2\n",
    },
    Language.JAVASCRIPT: {
        "echo": "function handler(params) { console.log('to stdout'); return { got: params }; }\n",
        "boom": "function handler(params) { throw new TypeError('bad value'); }\n",
        "sleep": "function handler(params) { return new Promise(r => setTimeout(r, 60000)); }\n",
        "flood": "function handler(params) { console.log('x'.repeat(1000000)); return 1; }\n",
        "async": "async function handler(params) { await null; return params.n * 2; }\n",
    },
    Language.TYPESCRIPT: {
        "echo": (
            "export function handler(params: Record<string, unknown>): object {\n"
            "  console.log('to stdout');\n  return { got: params };\n}\n"
        ),
        "boom": "export function handler(params: object): never { throw new TypeError('bad value'); }\n",
        "sleep": "export function handler(p: object): Promise<void> { return new Promise(r => setTimeout(r, 60000)); }\n",
        "flood": "export function handler(p: object): number { console.log('x'.repeat(1000000)); return 1; }\n",
        "async": "export async function handler(p: { n: number }): Promise<number> { return p.n * 2; }\n",
    },
}

_ERROR_TYPE = {Language.PYTHON: "ValueError", Language.JAVASCRIPT: "TypeError", Language.TYPESCRIPT: "TypeError"}


class SandboxContract:
    """Subclass and implement :meth:`make_sandbox`; set ``languages`` to what the adapter runs."""

    languages: tuple[Language, ...] = (Language.PYTHON,)

    def make_sandbox(self) -> Sandbox:
        raise NotImplementedError

    @pytest.fixture
    def sandbox(self) -> Iterator[Sandbox]:
        sb = self.make_sandbox()
        try:
            yield sb
        finally:
            sb.close()

    @pytest.fixture(params=["python", "javascript", "typescript"])
    def language(self, request: pytest.FixtureRequest) -> Language:
        lang = Language(request.param)
        if lang not in self.languages:
            pytest.skip(f"{type(self).__name__} does not run {lang.value}")
        return lang

    def request(
        self, language: Language, kind: str, params: dict[str, Any] | None = None, **limits: Any
    ) -> SandboxRequest:
        fields: dict[str, Any] = {"timeout_s": 10.0, "memory_mb": 512, "max_output_bytes": 64 * 1024}
        fields.update(limits)
        return SandboxRequest(
            execution_id=f"exec-{kind}",
            language=language,
            code=_CODE[language][kind],
            entrypoint="handler",
            params=params if params is not None else {},
            **fields,
        )

    def test_is_a_sandbox(self, sandbox: Sandbox) -> None:
        """The adapter satisfies the port's Protocol and supports its languages."""
        assert isinstance(sandbox, Sandbox)
        for lang in self.languages:
            assert sandbox.supports(lang)

    def test_returns_output_and_stdout(self, sandbox: Sandbox, language: Language) -> None:
        """The return value comes back as JSON; stdout is kept apart from it."""
        params = {"text": "héllo \"quoted\" '); import os; ('", "n": 3, "nested": {"xs": [1, 2.5, None, True]}}
        result = sandbox.run(self.request(language, "echo", params))
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert result.output == {"got": params}
        assert "to stdout" in result.stdout
        assert result.metrics.wall_ms > 0
        assert result.metrics.isolation is sandbox.isolation

    def test_exception_is_a_failed_result(self, sandbox: Sandbox, language: Language) -> None:
        """An exception in the tool gives status failed with its type and message."""
        result = sandbox.run(self.request(language, "boom"))
        assert result.status is ExecutionStatus.FAILED
        assert result.error is not None
        assert result.error.type == _ERROR_TYPE[language]
        assert "bad value" in result.error.message

    def test_async_handlers(self, sandbox: Sandbox, language: Language) -> None:
        """Async handlers are awaited."""
        result = sandbox.run(self.request(language, "async", {"n": 21}))
        assert result.status is ExecutionStatus.SUCCEEDED, result
        assert result.output == 42

    def test_timeout(self, sandbox: Sandbox, language: Language) -> None:
        """A call that outlives its timeout comes back timed_out, promptly."""
        started = time.monotonic()
        result = sandbox.run(self.request(language, "sleep", timeout_s=1.0))
        assert result.status is ExecutionStatus.TIMED_OUT
        assert time.monotonic() - started < 20

    def test_output_is_bounded(self, sandbox: Sandbox, language: Language) -> None:
        """Output past max_output_bytes is cut and flagged."""
        result = sandbox.run(self.request(language, "flood", max_output_bytes=4096))
        assert result.stdout_truncated
        assert len(result.stdout.encode()) <= 4096

    def test_cancel(self, sandbox: Sandbox, language: Language) -> None:
        """Setting the cancel signal stops the call with status cancelled."""
        cancel = threading.Event()
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        try:
            result = sandbox.run(self.request(language, "sleep", timeout_s=30.0), cancel)
        finally:
            timer.cancel()
        assert result.status is ExecutionStatus.CANCELLED
