"""Small system ports: time and identifiers, so that tests can pin both."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """The current time, timezone-aware UTC."""

    def now(self) -> datetime:
        """Now."""


@runtime_checkable
class IdGenerator(Protocol):
    """Unique, opaque identifiers."""

    def new_id(self, prefix: str) -> str:
        """A fresh id starting with ``prefix`` (``tool``, ``exec``, ...)."""
