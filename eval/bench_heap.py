"""What `memory.heap` (glibc's M_PERTURB: fresh heap memory zeroed, freed memory overwritten) costs.

    python -m eval.bench_heap [--rounds 7] [--model qwen2.5-coder-1.5b-instruct]

One process; each round times every piece of work with the setting off, then on (mallopt can
switch it both ways), so both sides see the same machine load. Reported: medians and the ratio
on / off for the pieces of a turn that allocate: embedding one message and a batch (torch),
Chroma upserts and queries on a 1,000-vector collection, and decoding 32 tokens of the embedded
model (llama.cpp). Wall-clock on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from agent.models import resolve_model_path
from agent.settings import DEFAULT_MODEL, load_settings
from memory.embeddings import default_embedder
from memory.heap import FREED_BYTE, perturb
from memory.vectors import VectorStore

MESSAGE = "My brother Tom says we should move mum into a home, but she would hate that."


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def pieces(root: Path, model: str) -> dict[str, Callable[[], object]]:
    from llama_cpp import Llama

    embedder = default_embedder()
    store = VectorStore(root)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1000, 384)).astype(np.float32)
    store.add("bench", [f"m{i}" for i in range(1000)], base)
    path = resolve_model_path(model, load_settings().models_dir)
    llama = Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    queries = rng.standard_normal((50, 384)).astype(np.float32)
    fresh = iter(range(10**9))

    def chroma() -> None:
        for vector in queries:
            store.query("bench", vector, 8)
        store.add("bench", [f"n{next(fresh)}" for _ in range(20)], queries[:20])

    return {
        "embed one message": lambda: embedder.embed([MESSAGE]),
        "embed 32 sentences": lambda: embedder.embed([f"{MESSAGE} ({i})" for i in range(32)]),
        "Chroma: 50 queries + 20 upserts": chroma,
        "llama.cpp: 32 tokens": lambda: llama(MESSAGE, max_tokens=32, temperature=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        work = pieces(Path(tmp), args.model)
        for run in work.values():  # warm
            run()
        times: dict[str, dict[bool, list[float]]] = {name: {False: [], True: []} for name in work}
        with console.status("timing") as status:
            for round_ in range(args.rounds):
                status.update(f"round {round_ + 1} of {args.rounds}")
                for name, run in work.items():
                    for on in (False, True):
                        perturb(FREED_BYTE if on else 0)
                        times[name][on].append(seconds(run))
        perturb(FREED_BYTE)
    table = Table(title=f"M_PERTURB off / on, medians of {args.rounds} rounds")
    for column in ("work", "off", "on", "on / off"):
        table.add_column(column, justify="left" if column == "work" else "right")
    for name, by in times.items():
        plain, scrubbed = statistics.median(by[False]), statistics.median(by[True])
        row = f"{plain * 1000:.1f} ms", f"{scrubbed * 1000:.1f} ms", f"{scrubbed / plain:.3f}"
        table.add_row(name, *row)
    console.print(table)


if __name__ == "__main__":
    main()
