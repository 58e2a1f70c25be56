"""The text form stores keep a counter's dimensions in (``k=v,k2=v2``)."""

from __future__ import annotations

from collections.abc import Sequence


def dimensions_text(dimensions: Sequence[tuple[str, str]]) -> str:
    """``dimensions`` as one string (``k=v,k2=v2``): keys and values pass ``check_dimension``."""
    return ",".join(f"{k}={v}" for k, v in dimensions)


def parse_dimensions(text: str) -> tuple[tuple[str, str], ...]:
    """The inverse of :func:`dimensions_text`."""
    if not text:
        return ()
    pairs = []
    for item in text.split(","):
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return tuple(pairs)
