"""Fakes and builders shared by the tests of long-term memory (this module holds no tests)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory.clock import SYSTEM_CLOCK
from memory.database import open_database
from memory.memories import ExtractedFact, MemoryKind, MemoryStore
from memory.outcomes import Outcomes
from memory.store import ConversationStore
from memory.trace import TurnTrace
from memory.traits import TraitModel
from memory.vectors import VectorStore
from memory.worker import MemoryServices

WORD = re.compile(r"[a-z0-9']+")


class WordEmbedder:
    """Bag-of-words vectors (hashing trick): texts sharing words are similar, like a real model
    for the purposes of dedupe and ranking tests, and deterministic across processes."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._one(t) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, 384), dtype=np.float32)

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(384, dtype=np.float32)
        for word in WORD.findall(text.lower()):
            digest = hashlib.sha1(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "little") % 384] += 1.0 if digest[4] % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            vector[0], norm = 1.0, 1.0
        return vector / norm

    def embed_one(self, text: str) -> np.ndarray:
        return self._one(text)


class SentenceExtractor:
    """Each sentence of three or more words becomes an 'experience' fact; records its inputs."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.seen: list[tuple[str, list[str]]] = []

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]:
        self.seen.append((user_text, list(context)))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("the model crashed mid-extraction")
        parts = [p.strip() for p in re.split(r"[.!?]\s*", user_text) if len(p.split()) >= 3]
        return [ExtractedFact(kind=MemoryKind.EXPERIENCE, text=p, importance=0.6) for p in parts]


def fact(text: str, kind: MemoryKind = MemoryKind.EXPERIENCE, **kw: Any) -> ExtractedFact:
    return ExtractedFact(kind=kind, text=text, **kw)


def build_services(
    data_dir: Path, extractor: Any | None = None, embedder: Any = None, clock: Any = SYSTEM_CLOCK
) -> MemoryServices:
    """Real SQLite and local Chroma under `data_dir`, with fake embedder and extractor."""
    embedder = embedder or WordEmbedder()
    store = ConversationStore(open_database(data_dir / "empathos.db"), clock)
    vectors = VectorStore(data_dir / "chroma", embedder=embedder)
    return MemoryServices(
        store=store,
        memories=MemoryStore(store.db, vectors, embedder, clock=clock),
        traits=TraitModel(store.db, embedder, clock),
        outcomes=Outcomes(store.db, clock=clock),
        extractor=extractor or SentenceExtractor(),
    )


def trace(
    need: str = "vent",
    valence: float = -0.5,
    label: str = "sadness",
    lens: str = "Person-centred",
    strategy: str = "Reflection of feelings",
    intensity: float = 0.6,
) -> TurnTrace:
    """A turn trace as agent.trace.build_trace writes it."""
    return TurnTrace.model_validate(
        {
            "emotion": {
                "label": label,
                "probability": 0.7,
                "valence": valence,
                "intensity": intensity,
            },
            "analysis": {"need": need, "cause_span": "", "situation": "", "thoughts": ""},
            "plan": {"lens": lens, "strategy": strategy},
        }
    )


def add_turn(
    services: MemoryServices,
    user: str,
    session: str,
    text: str,
    reply: str = "I hear you.",
    crisis: bool = False,
    **trace_kw: Any,
) -> str:
    """Store one finished turn and return its id."""
    store = services.store
    turn_id = f"{user}-{session}-{len(store.turns(user, session))}"
    store.begin_turn(turn_id, user, session, text)
    store.complete_turn(turn_id, reply, trace(**trace_kw), crisis=crisis)
    return turn_id
