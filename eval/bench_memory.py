"""Benchmark long-term memory: recall latency at scale, write cost per turn, disk per 1k memories.

    python -m eval.bench_memory [--sizes 1000 10000 100000] [--queries 200] [--turns 20]
                                [--gguf PATH]

- Recall: one user with N memories. The scale part uses random unit 384-d vectors (not real
  sentence embeddings: the index cost depends on N and the dimension, not on the meaning) and
  short synthetic texts in SQLite. A query is `Recaller.rank` with the message vector already
  computed (the turn embeds the message once for the plug-ins), i.e. Chroma's HNSW query over
  the user's own collection + the SQLite lookup of the candidates + scoring. The raw Chroma query
  is shown too, and the cost of embedding one message, for reference.
- Write cost: a scripted conversation through the memory worker (extraction, dedupe, traits,
  outcome) with the real embedder; the LLM is a fake that answers instantly (calls counted) or,
  with --gguf, a real embedded model (then the ms include the model).
- Critical path: the only memory work on the reply's path is `Recaller.recall` (no model) and
  `enqueue_turn` (three inserts); both are timed, and the LLM calls they make are counted (0).
Runs in a throwaway dir. Wall-clock on a shared machine: read p95s as upper bounds. torch's
OpenMP threads spin after each embedding and slow whatever runs next on a busy 2-core box;
`--passive-omp` shows the difference OMP_WAIT_POLICY=PASSIVE makes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from memory.database import open_database
from memory.embeddings import DIMENSIONS, Embedder
from memory.memories import MemoryStore
from memory.outcomes import Outcomes
from memory.recall import Recaller
from memory.store import ConversationStore, now
from memory.trace import TurnTrace
from memory.traits import TraitModel
from memory.vectors import VectorStore
from memory.worker import MemoryServices, MemoryWorker

USER = "bench"
CONVERSATION = [
    "My sister Maya moved to Berlin in March and I miss her a lot.",
    "I started cello lessons last month, it's hard but I love it.",
    "Work has been crushing me, my manager keeps piling on deadlines.",
    "My dog Pixel is getting old and I worry about him.",
    "I want to run a half marathon before I turn thirty.",
    "I don't love the cello anymore, it just feels like a chore now.",
    "Maya called yesterday, she's happy in Berlin.",
    "I value honesty more than anything in a friend.",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Return the wall time of each call in milliseconds."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def grow(db: Any, vectors: VectorStore, start: int, stop: int, rng: np.random.Generator) -> None:
    """Add memories start..stop-1 to SQLite and Chroma in batches."""
    batch = 5000
    for lo in range(start, stop, batch):
        hi = min(stop, lo + batch)
        ids = [f"m{i:07d}" for i in range(lo, hi)]
        stamp = now()
        db.table("memories").insert_all(
            [{"id": i, "user_id": USER, "kind": "experience",
              "text": f"synthetic memory {i} about a day at the lake with a friend",
              "importance": 0.5, "emotion": "joy", "valence": 0.5, "happened": "",
              "source_turn_id": "t0", "status": "current", "superseded_by": None,
              "origin": "bench", "created_at": stamp, "updated_at": stamp,
              "last_seen_at": stamp} for i in ids],
        )  # fmt: skip
        vectors.add(USER, ids, unit_vectors(rng, hi - lo))


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_recall(root: Path, sizes: list[int], queries: int) -> list[dict[str, float]]:
    """Grow one user's memories through `sizes` and time recall at each size."""
    db = open_database(root / "empathos.db")
    store = ConversationStore(db)
    store.ensure_user(USER)
    vectors = VectorStore(root / "chroma", embedder=Embedder())
    memories = MemoryStore(db, vectors, Embedder())
    recaller = Recaller(store, memories=memories, traits=TraitModel(db, Embedder()))
    rng, have, rows = np.random.default_rng(7), 0, []
    for size in sizes:
        start = time.perf_counter()
        grow(db, vectors, have, size, rng)
        insert_s, have = time.perf_counter() - start, size
        probes = unit_vectors(rng, queries)
        recall_ms, chroma_ms = [], []
        for probe in probes:
            start = time.perf_counter()
            recaller.rank(USER, "", "joy", 0.5, vector=probe)
            middle = time.perf_counter()
            vectors.query(USER, probe, 20)
            recall_ms.append((middle - start) * 1000)
            chroma_ms.append((time.perf_counter() - middle) * 1000)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows.append({
            "n": size, "recall_p50": percentile(recall_ms, 50),
            "recall_p95": percentile(recall_ms, 95), "chroma_p50": percentile(chroma_ms, 50),
            "chroma_p95": percentile(chroma_ms, 95), "insert_s": insert_s,
            "chroma_kb_per_1k": disk_bytes(root / "chroma") / size,
            "sqlite_kb_per_1k": (root / "empathos.db").stat().st_size / size,
        })  # fmt: skip
    return rows


def scripted(*replies: dict[str, Any]) -> Any:
    """A fake chat model answering instantly with each JSON reply in turn."""
    import json

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    return GenericFakeChatModel(messages=iter([AIMessage(content=json.dumps(r)) for r in replies]))


def fake_services(root: Path, embedder: Embedder) -> tuple[MemoryServices, Callable[[], int]]:
    """Memory services whose LLM extractor and judge are scripted (calls counted)."""
    from agent.memory_llm import LLMFactExtractor, LLMRelationJudge

    db = open_database(root / "empathos.db")
    store, vectors = ConversationStore(db), VectorStore(root / "chroma", embedder=embedder)
    facts = [{"facts": [{"kind": "experience", "text": t.rstrip("."), "importance": 3,
                         "feeling": "mixed", "emotion": "", "when": ""}]}
             for t in CONVERSATION * 10]  # fmt: skip
    extractor = LLMFactExtractor(scripted(*facts), "json_schema_text")
    judge = LLMRelationJudge(scripted(*[{"relation": "unrelated"}] * 500), "json_schema_text")
    services = MemoryServices(store, MemoryStore(db, vectors, embedder, judge),
                              TraitModel(db, embedder), Outcomes(db), extractor)  # fmt: skip
    return services, lambda: len(extractor.calls) + len(judge.calls)


def gguf_services(
    root: Path, embedder: Embedder, gguf: str
) -> tuple[MemoryServices, Callable[[], int]]:
    """Memory services whose extractor and judge run a real embedded GGUF model."""
    from agent.llm import ChatLlamaCpp
    from agent.memory_llm import LLMFactExtractor, LLMRelationJudge

    model = ChatLlamaCpp(model_path=gguf, temperature=0.0, n_ctx=2048)
    db = open_database(root / "empathos.db")
    store, vectors = ConversationStore(db), VectorStore(root / "chroma", embedder=embedder)
    extractor = LLMFactExtractor(model, "json_schema_text")
    judge = LLMRelationJudge(model, "json_schema_text")
    services = MemoryServices(store, MemoryStore(db, vectors, embedder, judge),
                              TraitModel(db, embedder), Outcomes(db), extractor)  # fmt: skip
    return services, lambda: len(extractor.calls) + len(judge.calls)


def bench_writes(root: Path, turns: int, gguf: str | None) -> dict[str, float]:
    """Run a scripted conversation through the worker; time each turn's jobs and the enqueue."""
    embedder = Embedder()
    embedder.embed(["warm up"])
    if gguf:
        services, llm_calls = gguf_services(root, embedder, gguf)
    else:
        services, llm_calls = fake_services(root, embedder)
    worker, session = MemoryWorker(services), services.store.new_session(USER)
    recaller = Recaller(services.store, memories=services.memories, traits=services.traits)
    write_ms, enqueue_ms, recall_ms, failed = [], [], [], 0
    for i in range(turns):
        text = CONVERSATION[i % len(CONVERSATION)]
        vector = embedder.embed([text])[0]
        start = time.perf_counter()
        recaller.recall(USER, session, text, i, "sadness", -0.4, vector)
        recall_ms.append((time.perf_counter() - start) * 1000)
        turn_id = f"turn{i}"
        services.store.begin_turn(turn_id, USER, session, text)
        trace = TurnTrace.model_validate(
            {
                "emotion": {"label": "sadness", "valence": -0.4 + 0.05 * i, "intensity": 0.5},
                "analysis": {"need": "vent"},
                "plan": {"lens": "DBT", "strategy": "Question"},
            }
        )
        services.store.complete_turn(turn_id, "a reply", trace, crisis=False)
        start = time.perf_counter()
        worker.enqueue_turn(USER, session, turn_id)
        enqueue_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        failed += worker.drain().failed
        write_ms.append((time.perf_counter() - start) * 1000)
    return {
        "write_p50": percentile(write_ms, 50), "write_p95": percentile(write_ms, 95),
        "llm_per_turn": llm_calls() / turns, "enqueue_p50": percentile(enqueue_ms, 50),
        "enqueue_p95": percentile(enqueue_ms, 95), "recall_p50": percentile(recall_ms, 50),
        "recall_p95": percentile(recall_ms, 95), "failed": failed,
        "memories": len(services.memories.all(USER)),
        "embed_ms": statistics.median(timed(lambda: embedder.embed(["I miss my sister"]), 20)),
    }  # fmt: skip


def report(recall: list[dict[str, float]], writes: dict[str, float], gguf: str | None) -> None:
    console = Console()
    table = Table(title="Recall, one user (random 384-d unit vectors; message vector given)")
    for column in ["memories", "recall p50 ms", "recall p95 ms", "chroma p50 ms",
                   "chroma p95 ms", "insert s", "Chroma KB/1k", "SQLite KB/1k"]:  # fmt: skip
        table.add_column(column, justify="right")
    for r in recall:
        table.add_row(f"{r['n']:,}", f"{r['recall_p50']:.2f}", f"{r['recall_p95']:.2f}",
                      f"{r['chroma_p50']:.2f}", f"{r['chroma_p95']:.2f}", f"{r['insert_s']:.1f}",
                      f"{r['chroma_kb_per_1k']:.0f}", f"{r['sqlite_kb_per_1k']:.0f}")  # fmt: skip
    console.print(table)
    model = f"real model {Path(gguf).name}" if gguf else "scripted instant LLM"
    writes_table = Table(title=f"Per turn, real embedder, {model}")
    for column in ["", "p50 ms", "p95 ms", "LLM calls"]:
        writes_table.add_column(column, justify="right")
    writes_table.add_row(
        "memory write (worker, off path)",
        f"{writes['write_p50']:.1f}",
        f"{writes['write_p95']:.1f}",
        f"{writes['llm_per_turn']:.2f}",
    )
    writes_table.add_row(
        "enqueue_turn (on path)",
        f"{writes['enqueue_p50']:.2f}",
        f"{writes['enqueue_p95']:.2f}",
        "0",
    )
    writes_table.add_row(
        "recall (on path, vector given)",
        f"{writes['recall_p50']:.2f}",
        f"{writes['recall_p95']:.2f}",
        "0",
    )
    writes_table.add_row("(embed one message, for reference)", f"{writes['embed_ms']:.1f}", "",
                         "")  # fmt: skip
    console.print(writes_table)
    console.print(f"memories kept after dedupe/supersede: {writes['memories']:.0f}; "
                  f"failed jobs: {writes['failed']:.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--turns", type=int, default=24)
    parser.add_argument("--gguf", help="Run extraction with this GGUF model instead of a fake.")
    parser.add_argument(
        "--passive-omp",
        action="store_true",
        help="Set OMP_WAIT_POLICY=PASSIVE (idle torch threads stop spinning).",
    )
    args = parser.parse_args()
    if args.passive_omp:  # read when torch loads, i.e. at the first embedding
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory(prefix="empathos-bench-memory-") as tmp:
        writes = bench_writes(Path(tmp) / "writes", args.turns, args.gguf)
        recall = bench_recall(Path(tmp) / "recall", sorted(args.sizes), args.queries)
    report(recall, writes, args.gguf)


if __name__ == "__main__":
    main()
