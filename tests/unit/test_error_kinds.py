"""Whether an error is the caller's to fix, or worth retrying, is decided once by the error itself."""

from __future__ import annotations

import pytest

import toolrt
from toolrt.adapters.cli.context import EXIT_FAILURE, EXIT_USER_ERROR, exit_code_for
from toolrt.domain import (
    ConflictError,
    ExecutionError,
    LimitExceededError,
    MissingDependencyError,
    NotFoundError,
    OwnershipError,
    RegistrationError,
    StorageError,
    ToolRuntimeError,
    TransientError,
    ValidationError,
)

USER = [
    ValidationError("bad"),
    NotFoundError("tool", "x"),
    OwnershipError("a", "t", "update"),
    ConflictError("c"),
    LimitExceededError("big"),
    MissingDependencyError("serve", "mcp", "mcp"),
    toolrt.SettingsError("s"),
]
MACHINE = [StorageError("disk"), ExecutionError("down"), TransientError("later"), RegistrationError("gw")]


@pytest.mark.parametrize("error", USER, ids=lambda e: type(e).__name__)
def test_user_errors_exit_2(error: ToolRuntimeError) -> None:
    assert error.user_error and exit_code_for(error) == EXIT_USER_ERROR


@pytest.mark.parametrize("error", MACHINE, ids=lambda e: type(e).__name__)
def test_failures_exit_1(error: ToolRuntimeError) -> None:
    assert not error.user_error and exit_code_for(error) == EXIT_FAILURE


def test_a_registration_error_carries_retryable_from_its_cause() -> None:
    assert RegistrationError("gw", retryable=True).retryable
    assert not RegistrationError("gw").retryable


def test_mcp_error_text_says_what_the_caller_can_do() -> None:
    """The MCP server's error text follows the same flags as the CLI's exit codes."""
    from toolrt.adapters.mcp.server import _describe

    assert _describe(ValidationError("bad input")).endswith("(change the request and call again)")
    assert _describe(TransientError("busy")).endswith("(temporary: call again later)")
    assert "call again" not in _describe(StorageError("disk full"))
