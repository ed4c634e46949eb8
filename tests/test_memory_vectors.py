"""Chroma: one collection per user, our embedding function, private files, the server path."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from memory.vectors import (
    VectorServerError,
    VectorStore,
    VectorStoreError,
    chroma_settings,
    collection_name,
)
from tests.test_memory_fakes import WordEmbedder

SERVER_START_TIMEOUT = 90.0


def vectors_for(texts: list[str]) -> np.ndarray:
    return WordEmbedder().embed(texts)


def exercise(store: VectorStore) -> None:
    """Add, query and drop two users' vectors and check that neither sees the other's."""
    store.add("ana", ["a1", "a2"], vectors_for(["sister in Berlin", "cello lessons"]))
    store.add("bo", ["b1"], vectors_for(["sister in Berlin"]))
    hits = store.query("ana", vectors_for(["my sister lives in Berlin"])[0], 5)
    assert [h.id for h in hits][0] == "a1" and {h.id for h in hits} == {"a1", "a2"}
    assert 0.0 < hits[0].similarity <= 1.0 + 1e-6
    assert [h.id for h in store.query("bo", vectors_for(["cello"])[0], 5)] == ["b1"]
    store.delete("ana", ["a2"])
    assert store.ids("ana") == ["a1"]
    store.drop("ana")
    assert store.count("ana") == 0 and store.query("ana", vectors_for(["x"])[0], 3) == []
    assert store.count("bo") == 1


def test_local_store_isolates_users_and_uses_our_embedding_function(tmp_path):
    store = VectorStore(tmp_path / "chroma", embedder=WordEmbedder())
    store.add("carl", ["c0"], vectors_for(["hello"]))
    collection = store._collection("carl", create=False)
    assert collection is not None
    assert collection.name == collection_name("carl") and "carl" not in collection.name
    assert collection.configuration_json["embedding_function"]["name"] == (
        "empathos-all-minilm-l6-v2"
    )
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    exercise(store)


def test_telemetry_is_off():
    assert chroma_settings().anonymized_telemetry is False


def test_chroma_files_are_private(tmp_path):
    store = VectorStore(tmp_path / "chroma", embedder=WordEmbedder())
    store.add(
        "ana",
        [f"m{i}" for i in range(1200)],
        np.random.default_rng(0).standard_normal((1200, 384)).astype(np.float32),
    )
    for folder, _, files in os.walk(tmp_path / "chroma"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder) / name).st_mode) == 0o600, name


def test_drop_removes_segment_files(tmp_path):
    store = VectorStore(tmp_path / "chroma", embedder=WordEmbedder())
    rng = np.random.default_rng(1)
    store.add(
        "ana", [f"m{i}" for i in range(1500)], rng.standard_normal((1500, 384)).astype(np.float32)
    )
    segment_dirs = [p for p in (tmp_path / "chroma").iterdir() if p.is_dir()]
    assert segment_dirs
    store.drop("ana")
    assert not any(p.exists() for p in segment_dirs)


def test_one_location_only():
    with pytest.raises(VectorStoreError, match="either"):
        VectorStore()


def test_unreachable_server_says_what_to_do():
    with pytest.raises(VectorServerError, match="chroma run"):
        VectorStore(url=f"http://127.0.0.1:{free_port()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_command() -> list[str]:
    found = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the chroma CLI is not installed")
    return [found]


@pytest.fixture
def chroma_server(tmp_path):
    """Start `chroma run` on 127.0.0.1 and a free port; stop it afterwards."""
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    process = subprocess.Popen(
        [
            *chroma_command(),
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        wait_for_port(port, process, SERVER_START_TIMEOUT)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


def wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"chroma run did not listen on {port} within {timeout} s")


@pytest.mark.server
def test_server_path_isolates_users(chroma_server):
    store = VectorStore(url=chroma_server, embedder=WordEmbedder())
    assert store.path is None
    exercise(store)
