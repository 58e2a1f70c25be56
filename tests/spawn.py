"""Child processes started with multiprocessing's spawn method, for the tests that kill or race them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])


@contextmanager
def children_find_tests() -> Iterator[None]:
    """Processes started inside this block can import the ``tests`` package by name.

    A spawned child unpickles its target by module name (``tests.integration...``) with the parent's
    ``sys.path``; pytest keeps the repository root off that path (``--import-mode=importlib``), so it
    is added for the children's start only.
    """
    added = ROOT not in sys.path
    if added:
        sys.path.append(ROOT)
    try:
        yield
    finally:
        if added:
            sys.path.remove(ROOT)
