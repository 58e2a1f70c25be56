"""The real clock and id generator, which every profile uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


class SystemClock:
    """Timezone-aware UTC wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidIdGenerator:
    """``prefix-`` followed by a random UUID's 32 hex digits."""

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex}"
