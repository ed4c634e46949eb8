"""Embed many texts once: vectors are cached on disk by the text itself.

Building and measuring the plug-ins embeds tens of thousands of real messages and their
sentences (~6 ms each on 2 cores); the cache keeps re-runs to seconds. Each run that embeds new
texts adds one shard (`<n>.npz`: keys and vectors); a key is the SHA-1 of the text, so the same
sentence is embedded once whichever script asks for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress

from memory.embeddings import DIMENSIONS, Embedder, default_embedder

Matrix = npt.NDArray[np.float32]
CHUNK = 256


def default_cache_dir() -> Path:
    """The cache folder of the app settings, under `embeddings/all-MiniLM-L6-v2/`."""
    from agent.settings import Settings

    return Settings().cache_dir / "embeddings" / "all-MiniLM-L6-v2"


def text_key(text: str) -> str:
    """The cache key of one text."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_cache(folder: Path) -> dict[str, Matrix]:
    """Read every shard of the cache into one table."""
    table: dict[str, Matrix] = {}
    for shard in sorted(folder.glob("*.npz")):
        with np.load(shard, allow_pickle=False) as data:
            table.update(zip((str(k) for k in data["keys"]), data["vectors"], strict=True))
    return table


def embed_many(
    texts: Sequence[str],
    label: str = "texts",
    *,
    embedder: Embedder | None = None,
    cache_dir: Path | None = None,
) -> Matrix:
    """Return one row per text, embedding (with a progress bar) only what is not cached."""
    folder = cache_dir or default_cache_dir()
    table = load_cache(folder)
    keys = [text_key(text) for text in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in table}.items())
    if missing:
        model = embedder or default_embedder()
        new_keys, new_rows = [], []
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(f"embedding {label}", total=len(missing))
            for start in range(0, len(missing), CHUNK):
                part = missing[start : start + CHUNK]
                new_rows.append(model.embed([text for _, text in part]))
                new_keys += [key for key, _ in part]
                progress.advance(task, len(part))
        vectors = np.concatenate(new_rows).astype(np.float32)
        save_shard(folder, new_keys, vectors)
        table.update(zip(new_keys, vectors, strict=True))
    if not keys:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([table[key] for key in keys]).astype(np.float32)


def save_shard(folder: Path, keys: Sequence[str], vectors: Matrix) -> None:
    """Add one shard of keys and vectors to the cache."""
    folder.mkdir(parents=True, exist_ok=True)
    number = len(list(folder.glob("*.npz")))
    np.savez(folder / f"{number:04d}.npz", keys=np.array(keys), vectors=vectors)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read one JSON object per non-empty line."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Precomputed(Embedder):
    """Serve vectors embedded beforehand, so timing the screen leaves the embedding out."""

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__()
        unique = sorted(set(texts))
        self._table = dict(zip(unique, embed_many(unique, "precomputing"), strict=True))

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return the stored rows of the texts."""
        rows = [self._table[text] for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), DIMENSIONS)
