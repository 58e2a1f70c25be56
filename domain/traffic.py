"""Traffic splits: un-pinned calls of a tool routed between its versions by weight, with a guard
that returns all traffic to the version in force when a candidate fails more often."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from toolrt.domain.errors import ValidationError


def _to_weights(value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, Mapping):
        value = value.items()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError(f"traffic weights must map versions to percentages, e.g. {{1: 90, 2: 10}}, got {value!r}")
    pairs: list[tuple[int, int]] = []
    for version, weight in value:
        pairs.append((_whole(version, "a version"), _whole(weight, f"the weight of version {version}")))
    return tuple(sorted(pairs))


def _whole(value: Any, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be a whole number, got {value!r}")
    return value


@attrs.frozen
class TrafficGuard:
    """Send every call back to the version in force when a candidate version's error rate exceeds
    that version's by more than ``margin`` (0..1), once the candidate has ``min_calls`` finished calls
    since the split began. Failures are failed, timed out and killed calls."""

    margin: float = 0.1
    min_calls: int = 20

    def __attrs_post_init__(self) -> None:
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) or not 0 <= self.margin <= 1:
            raise ValidationError(f"a guard's margin is an error-rate difference from 0 to 1, got {self.margin!r}")
        if isinstance(self.min_calls, bool) or not isinstance(self.min_calls, int) or self.min_calls < 1:
            raise ValidationError(f"a guard's min_calls must be a positive whole number, got {self.min_calls!r}")

    def breached(self, candidate: tuple[int, int], current: tuple[int, int]) -> bool:
        """``(calls, failures)`` of a candidate and of the version in force: True when the guard trips."""
        calls, failures = candidate
        if calls < self.min_calls:
            return False
        base_calls, base_failures = current
        base_rate = base_failures / base_calls if base_calls else 0.0
        return failures / calls > base_rate + self.margin


@attrs.frozen
class TrafficSplit:
    """``weights``: (version, percent) pairs summing to 100, one of them the version in force when the
    split was set; ``since``: when it began (the guard counts calls from then); ``guard``: optional."""

    weights: tuple[tuple[int, int], ...] = attrs.field(converter=_to_weights)
    since: datetime
    guard: TrafficGuard | None = None

    def __attrs_post_init__(self) -> None:
        versions = [v for v, _ in self.weights]
        if not self.weights:
            raise ValidationError("a traffic split needs at least one version; clear it with an empty split instead")
        if len(set(versions)) != len(versions):
            raise ValidationError(f"a traffic split names a version twice: {versions}")
        if any(not 0 <= w <= 100 for _, w in self.weights):
            raise ValidationError(f"traffic weights are percentages from 0 to 100, got {dict(self.weights)}")
        if sum(w for _, w in self.weights) != 100:
            raise ValidationError(
                f"traffic weights must sum to 100, got {sum(w for _, w in self.weights)} ({dict(self.weights)})"
            )

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions the split names (weight 0 included)."""
        return tuple(v for v, _ in self.weights)

    def route(self, tool_id: str, sticky_key: str | None = None) -> int:
        """The version a call goes to: a weighted draw, the same for every call with one sticky key."""
        if sticky_key is None:
            point = random.randrange(100)  # noqa: S311 (routing, not security)
        else:
            digest = hashlib.sha256(f"{tool_id}\0{sticky_key}".encode()).digest()
            point = int.from_bytes(digest[:8], "big") % 100
        for version, weight in self.weights:
            if point < weight:
                return version
            point -= weight
        raise AssertionError("weights sum to 100")  # pragma: no cover
