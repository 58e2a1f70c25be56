"""Fixtures for end-to-end tests of the CLI and the MCP server."""

from __future__ import annotations

import pytest

from tests.e2e.harness import SharedRuntimes


@pytest.fixture
def runtimes() -> SharedRuntimes:
    """Runtimes over one set of memory adapters with the fake sandbox and validator."""
    return SharedRuntimes()
