"""Episodic vectors in Chroma: one collection per user holding memory ids and their vectors.

Exceptions: `VectorStoreError` (base) > `VectorServerError` (the configured Chroma server cannot
be reached or refused a request).

One collection per user, because a `where={"user_id": ...}` filter costs ~69 ms at 100k vectors
and a per-user collection ~2.4 ms (DESIGN.md); a query can only ever read the requesting user's
collection. No text goes into Chroma: the words of a memory live in SQLite only, so Chroma holds
ids and vectors (and, locally, no stale heap bytes: `memory.heap`), and forgetting a user drops
the collection, its segment files and the freed pages of Chroma's own SQLite file. Every
collection gets an explicit embedding function wrapping our `Embedder` (Chroma's default
downloads a model and fails offline); telemetry is off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from memory.database import secure_dir
from memory.embeddings import default_embedder
from memory.errors import MemoryLayerError
from memory.heap import scrub_freed_memory

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.config import Settings as ChromaSettings

CHROMA_SQLITE = "chroma.sqlite3"
SEGMENTS_SQL = ["select id from segments where collection = ?"]
COMPACT_SQL = ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
# Chroma's SQLite file is touched from a child process, never from this one: Chroma reads it
# through its own copy of SQLite (in its Rust bindings), and closing a Python connection to the
# same file in the same process drops that copy's POSIX locks (SQLite's documented "multiple
# copies of SQLite linked" hazard) -- a VACUUM then corrupts the file under Chroma's feet.
CHILD_SQL = """
import json, sqlite3, sys
path, statements, params = json.loads(sys.stdin.read())
conn = sqlite3.connect(path, timeout=30)
rows = []
try:
    for i, sql in enumerate(statements):
        rows = conn.execute(sql, params if i == 0 else []).fetchall()
finally:
    conn.close()
print(json.dumps(rows))
"""


class VectorStoreError(MemoryLayerError):
    """Base class for vector-store errors."""


class VectorServerError(VectorStoreError):
    """The configured Chroma server cannot be reached or refused a request."""


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@cache
def embedding_function_class() -> type[Any]:
    """Return (defining and registering once) Chroma's embedding function over our Embedder.

    Defined lazily so that importing this module does not import chromadb (~1.5 s).
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function

    class EmbedderFunction(EmbeddingFunction[Documents]):
        """Chroma embedding function over the packaged all-MiniLM-L6-v2 (never the default)."""

        def __init__(self, embedder: TextEmbedder | None = None) -> None:
            self._embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:
            embedder = self._embedder or default_embedder()
            return list(embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "empathos-all-minilm-l6-v2"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> EmbedderFunction:
            return EmbedderFunction()

        def default_space(self) -> Space:
            return "cosine"

        def supported_spaces(self) -> list[Space]:
            return ["cosine"]

    register_embedding_function(EmbedderFunction)  # type: ignore[no-untyped-call]
    return EmbedderFunction


@dataclass(frozen=True)
class VectorHit:
    id: str
    similarity: float


def collection_name(user_id: str) -> str:
    """Return the user's collection name: a hash, so the name leaks nothing and is always valid."""
    return "u_" + hashlib.sha1(user_id.encode()).hexdigest()[:16]


def chroma_settings() -> ChromaSettings:
    """Return client settings with telemetry off (there is no network, and it is private)."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def secure_tree(root: Path) -> None:
    """Make every directory under `root` 0700 and every file 0600."""
    if not root.exists():
        return
    os.chmod(root, 0o700)
    for folder, dirs, files in os.walk(root):
        for names, mode in ((dirs, 0o700), (files, 0o600)):
            for name in names:
                with suppress(FileNotFoundError):  # Chroma (another thread) removed it meanwhile
                    os.chmod(Path(folder) / name, mode)


def chroma_sql(path: Path, statements: list[str], params: Sequence[str] = ()) -> list[Any]:
    """Run SQL on Chroma's SQLite file in a child process; return the last statement's rows."""
    request = json.dumps([str(path), statements, list(params)])
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD_SQL], input=request, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VectorStoreError(f"could not run SQL on {path}: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise VectorStoreError(last)
    rows: list[Any] = json.loads(done.stdout)
    return rows


def _http_client(url: str) -> ClientAPI:
    import chromadb
    import httpx

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise VectorStoreError(f"Invalid Chroma server URL {url!r}: use http://HOST:PORT.")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    try:
        return chromadb.HttpClient(
            host=parsed.hostname, port=port, ssl=parsed.scheme == "https",
            settings=chroma_settings(),
        )  # fmt: skip
    except (ValueError, httpx.HTTPError) as exc:  # chromadb says ValueError when unreachable
        raise VectorServerError(
            f"Cannot reach the Chroma server at {url} ({exc}). Start it (`chroma run`) "
            "or unset chroma_url to use the local store."
        ) from exc


class VectorStore:
    """Per-user Chroma collections: local (`path`) or on a Chroma server (`url`)."""

    def __init__(
        self, path: Path | None = None, *, url: str | None = None,
        embedder: TextEmbedder | None = None,
    ) -> None:  # fmt: skip
        if (path is None) == (url is None):
            raise VectorStoreError("Give either a local path or a server URL for the vectors.")
        self.path, self.url = path, url
        self._function = embedding_function_class()(embedder)
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()
        self._client = _http_client(url) if url else self._local_client()

    def _local_client(self) -> ClientAPI:
        scrub_freed_memory()  # before Chroma allocates: its index files keep unused heap bytes
        import chromadb

        assert self.path is not None
        secure_dir(self.path)
        client = chromadb.PersistentClient(path=str(self.path), settings=chroma_settings())
        secure_tree(self.path)
        return client

    def _collection(self, user_id: str, create: bool) -> Collection | None:
        name = collection_name(user_id)
        with self._lock:
            if name in self._collections:
                return self._collections[name]
            if create:
                found = self._client.get_or_create_collection(
                    name, embedding_function=self._function,
                    configuration={"hnsw": {"space": "cosine"}},
                )  # fmt: skip
            else:
                from chromadb.errors import NotFoundError

                try:
                    found = self._client.get_collection(name, embedding_function=self._function)
                except NotFoundError:
                    return None
            self._collections[name] = found
            return found

    def add(self, user_id: str, ids: Sequence[str], vectors: NDArray[np.float32]) -> None:
        """Insert or replace vectors by memory id, in batches Chroma accepts."""
        if not ids:
            return
        collection = self._collection(user_id, create=True)
        assert collection is not None
        step = self._client.get_max_batch_size()
        with self._errors():
            for start in range(0, len(ids), step):
                collection.upsert(
                    ids=list(ids[start : start + step]), embeddings=vectors[start : start + step]
                )
        if self.path is not None:
            secure_tree(self.path)

    def delete(self, user_id: str, ids: Sequence[str]) -> None:
        """Remove vectors by memory id (unknown ids are ignored)."""
        collection = self._collection(user_id, create=False)
        if collection is not None and ids:
            with self._errors():
                collection.delete(ids=list(ids))

    def query(self, user_id: str, vector: NDArray[np.float32], n: int) -> list[VectorHit]:
        """Return up to `n` nearest memory ids of this user with cosine similarity."""
        collection = self._collection(user_id, create=False)
        if collection is None:
            return []
        with self._errors():
            found = collection.query(
                query_embeddings=[vector.tolist()], n_results=n, include=["distances"]
            )
        ids, distances = found["ids"][0], (found["distances"] or [[]])[0]
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def count(self, user_id: str) -> int:
        collection = self._collection(user_id, create=False)
        return 0 if collection is None else collection.count()

    def ids(self, user_id: str) -> list[str]:
        collection = self._collection(user_id, create=False)
        return [] if collection is None else list(collection.get(include=[])["ids"])

    def orphans(self, user_ids: Sequence[str]) -> list[str]:
        """Return the names of collections that belong to none of `user_ids`."""
        keep = {collection_name(u) for u in user_ids}
        with self._errors():
            names = [c.name for c in self._client.list_collections()]
        return sorted(n for n in names if n.startswith("u_") and n not in keep)

    def drop(self, user_id: str) -> None:
        """Delete the user's collection; locally also its segment files and freed pages."""
        self.drop_collection(collection_name(user_id))

    def drop_collection(self, name: str) -> None:
        """Delete a collection by name (see `drop`)."""
        from chromadb.errors import NotFoundError

        try:
            with self._errors():
                collection = self._client.get_collection(name, embedding_function=self._function)
        except NotFoundError:
            return
        segments = self._segment_dirs(str(collection.id))
        with self._lock, self._errors():
            self._collections.pop(collection.name, None)
            self._client.delete_collection(collection.name)
        for folder in segments:
            shutil.rmtree(folder, ignore_errors=False)
        self.compact()

    def compact(self) -> None:
        """Rewrite Chroma's local SQLite file so deleted rows leave no bytes behind."""
        if self.path is None or not (self.path / CHROMA_SQLITE).exists():
            return
        try:
            chroma_sql(self.path / CHROMA_SQLITE, COMPACT_SQL)
        except VectorStoreError as exc:
            raise VectorStoreError(
                f"Could not compact {self.path / CHROMA_SQLITE} ({exc}): close other empathos "
                "processes using this data dir and run the command again."
            ) from exc

    def _segment_dirs(self, collection_id: str) -> list[Path]:
        if self.path is None:
            return []
        rows = chroma_sql(self.path / CHROMA_SQLITE, SEGMENTS_SQL, [collection_id])
        return [self.path / row[0] for row in rows if (self.path / row[0]).is_dir()]

    def _errors(self) -> AbstractContextManager[None]:
        return _server_errors(self.url)


@contextmanager
def _server_errors(url: str | None) -> Iterator[None]:
    """Turn a server's connection and HTTP failures into VectorServerError."""
    import httpx

    try:
        yield
    except (httpx.HTTPError, ConnectionError) as exc:
        if url is None:
            raise
        raise VectorServerError(
            f"The Chroma server at {url} failed: {exc}. Check that it is running."
        ) from exc
