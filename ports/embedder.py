"""The embedder port: text to vectors, for the semantic half of tool search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors whose cosine similarity says how close their meanings are.

    toolrt ships none by default (nothing is downloaded at run time; search is then lexical only).
    Plug one in with ``RuntimePorts(..., embedder=...)`` or ``connect(..., embedder=...)``: any
    object with these two members, e.g. a sentence-transformers model wrapped in a few lines (see
    docs/discovery.md). ``embed`` must be deterministic for a given ``model`` and return one vector per
    text, all of one length; toolrt caches vectors per tool version and model.
    """

    @property
    def model(self) -> str:
        """A name for the model and its version: vectors of different models are never compared."""

    def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        """One vector per text, in order."""
