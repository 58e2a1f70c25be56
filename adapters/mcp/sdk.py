"""Which mcp SDK is installed, and whether toolrt's MCP server runs on it (no part of the SDK is imported here)."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

__all__ = ["SUPPORTED", "SUPPORTED_PIN", "SdkSupport", "installed_version", "release", "sdk_support"]

# The releases toolrt's server is written for: the first 1.x with the session manager's per-owner
# admission (``_admit_session``) the front door builds on, and the first 2.x with its hooks.
SUPPORTED = "mcp>=1.30,<3 (and not 2.0 to 2.2)"
SUPPORTED_PIN = "mcp>=1.30,!=2.0.*,!=2.1.*,!=2.2.*,<3"
_MINIMUM = {1: (1, 30), 2: (2, 3)}


def release(text: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``"1.30.0"`` is (1, 30, 0), ``"2.3.0rc1"`` (2, 3, 0)."""
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:  # "0rc1": a pre-release of 0; nothing after it counts
            break
    return tuple(parts)


def installed_version() -> str | None:
    """The installed mcp SDK's version, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp")
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class SdkSupport:
    """Which mcp SDK is installed and whether ``toolrt serve`` runs on it.

    ``problem`` is empty when it does; otherwise it names what failed (the import error itself)
    and what to do.
    """

    version: str | None
    major: int | None
    serves: bool
    problem: str = ""


def sdk_support() -> SdkSupport:
    """Check the installed SDK: its version against :data:`SUPPORTED`, then an import of toolrt's server."""
    found = installed_version()
    if found is None:
        return SdkSupport(None, None, False, "the mcp package is not installed: pip install 'toolrt[mcp]'")
    numbers = release(found)
    major = numbers[0] if numbers else None
    minimum = _MINIMUM.get(major or 0)
    if minimum is None or numbers < minimum:
        return SdkSupport(
            found,
            major,
            False,
            f"mcp {found} is not a release toolrt's server runs on ({SUPPORTED}): pip install '{SUPPORTED_PIN}'",
        )
    try:
        importlib.import_module("toolrt.adapters.mcp.server")
    except ImportError as exc:
        return SdkSupport(
            found,
            major,
            False,
            f"toolrt's MCP server does not import with mcp {found}: {exc}. "
            f"Reinstall a supported release ({SUPPORTED}): pip install --force-reinstall '{SUPPORTED_PIN}'",
        )
    return SdkSupport(found, major, True)
