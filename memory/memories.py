"""Facts about a person, taken from their own words: deduplicated, superseded, stored, cited.

Exceptions: `MemoryStoreError` (base) > `UnknownMemoryError` (no such memory for this user).

A memory is one short self-contained statement (a life event, a person, an experience and how it
felt, a preference, a value, a goal) with importance, emotion, time and the turn it came from.
Its words live in SQLite (`memories`, with superseded versions kept as history); while it is
current, its vector lives in the user's Chroma collection. A new fact is compared with the
user's nearest current memories (cosine >= 0.6): the same fact merges into the old one (one more
source turn; only at cosine >= 0.75, whatever a judge says), a contradicting fact supersedes it
(the old one stays as history and is never recalled), unless the old one was said later (an
older chat ingested now): then the new fact goes straight to history. Rows carry the time the
words were said. Writes are keyed by a hash of (user, turn, text), so re-running an interrupted
extraction writes nothing twice. Remembered text is data: it is stored and returned verbatim,
never interpreted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from sqlite_utils import Database

from memory.clock import SYSTEM_CLOCK, Clock
from memory.database import transaction
from memory.errors import MemoryLayerError
from memory.rules import Relation, RuleJudge, words
from memory.store import now, scrub_traces

if TYPE_CHECKING:
    from memory.vectors import VectorStore

Action = Literal["added", "merged"]


class MemoryStoreError(MemoryLayerError):
    """Base class for memory errors."""


class UnknownMemoryError(MemoryStoreError, LookupError):
    """No such memory for this user."""


class MemoryKind(StrEnum):
    LIFE_EVENT = "life_event"
    PERSON = "person"
    EXPERIENCE = "experience"
    PREFERENCE = "preference"
    VALUE = "value"
    GOAL = "goal"


class ExtractedFact(BaseModel):
    """One fact an extractor found in the user's own words."""

    kind: MemoryKind
    text: str = Field(min_length=3, max_length=300, description="A short self-contained statement.")
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    emotion: str = Field(default="", max_length=32, description="How it felt, one word.")
    valence: float = Field(default=0.0, ge=-1.0, le=1.0)
    happened: str = Field(default="", max_length=60, description="When, in the user's terms.")


class FactExtractor(Protocol):
    """Find facts worth keeping in one message the user wrote (context: their earlier ones)."""

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]: ...


class RelationJudge(Protocol):
    """Say whether a new statement repeats, contradicts or is unrelated to an old one."""

    def relation(self, new: str, old: str, similarity: float) -> Relation: ...


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


def memory_id(user_id: str, turn_id: str, text: str) -> str:
    """Return the stable id of a fact from one turn (re-runs produce the same id)."""
    key = "\x00".join([user_id, turn_id, " ".join(words(text))])
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def stored_time(moment: str) -> str:
    """An ISO-8601 time as the stores keep it (UTC, milliseconds), so stored times compare as
    text; raise `MemoryStoreError` for one without a zone."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise MemoryStoreError(f"{moment!r} is not an ISO-8601 time.") from exc
    if parsed.tzinfo is None:
        raise MemoryStoreError(f"{moment} has no time zone; give one (e.g. +00:00).")
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Memory:
    id: str
    user_id: str
    kind: str
    text: str
    importance: float
    emotion: str
    valence: float
    happened: str
    source_turn_id: str
    status: str
    superseded_by: str | None
    origin: str
    created_at: str
    updated_at: str
    last_seen_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Memory:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def current(self) -> bool:
        return self.status == "current"


@dataclass(frozen=True)
class WriteResult:
    action: Action
    memory_id: str
    superseded: tuple[str, ...] = ()


"""What a forgotten memory's text becomes in the traces of past turns."""


class MemoryStore:
    """The user's facts in SQLite plus their vectors in Chroma; every call is scoped by user."""

    def __init__(
        self, db: Database, vectors: VectorStore, embedder: Embedder,
        judge: RelationJudge | None = None, related_at: float = 0.6, merge_at: float = 0.75,
        neighbours: int = 3, clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        self.db, self.vectors, self.embedder, self.clock = db, vectors, embedder, clock
        self.judge: RelationJudge = judge or RuleJudge()
        self.related_at, self.merge_at, self.neighbours = related_at, merge_at, neighbours

    def remember(
        self, user_id: str, facts: Sequence[ExtractedFact], turn_id: str, at: str | None = None
    ) -> list[WriteResult]:
        """Store facts from one turn: merge repeats, supersede contradictions, add the rest.

        `at` (ISO-8601) is when the words were said, for the rows' times instead of the clock:
        the worker passes the turn's time, so a fact from an ingested chat of last year is a
        year old in recall, and one from a live turn is as old as the message."""
        if not facts:
            return []
        stamp = stored_time(at) if at else now(self.clock)
        vectors = self.embedder.embed([fact.text for fact in facts])
        return [self._place(user_id, f, v, turn_id, stamp)
                for f, v in zip(facts, vectors, strict=True)]  # fmt: skip

    def _place(
        self, user_id: str, fact: ExtractedFact, vector: NDArray[np.float32], turn_id: str,
        stamp: str,
    ) -> WriteResult:  # fmt: skip
        same: Memory | None = None
        contradicted: list[str] = []  # superseded by the new fact
        later: list[str] = []  # said after it: they supersede the new fact
        for memory, similarity in self.similar(user_id, vector, self.neighbours, self.related_at):
            relation = self.judge.relation(fact.text, memory.text, similarity)
            if relation == "contradicts":  # the later statement wins, whichever came in first
                (later if memory.last_seen_at > stamp else contradicted).append(memory.id)
            elif relation == "same" and same is None and similarity >= self.merge_at:
                same = memory
        if same is not None:
            self._merge(same, fact, turn_id, stamp)
            target, action = same.id, "merged"
        else:
            target, action = self._insert(user_id, fact, vector, turn_id, stamp=stamp), "added"
        self._supersede(user_id, contradicted, target, stamp)
        if later and action == "added":  # said before what replaced it (an older chat ingested)
            self._supersede(user_id, [target], later[0], stamp)
        return WriteResult(action, target, tuple(contradicted))  # type: ignore[arg-type]

    def similar(
        self, user_id: str, vector: NDArray[np.float32], n: int, at_least: float = -1.0
    ) -> list[tuple[Memory, float]]:
        """Return the user's current memories nearest to a vector, most similar first."""
        hits = [h for h in self.vectors.query(user_id, vector, n) if h.similarity >= at_least]
        found = self.current_by_ids(user_id, [h.id for h in hits])
        return [(found[h.id], h.similarity) for h in hits if h.id in found]

    def _insert(
        self, user_id: str, fact: ExtractedFact, vector: NDArray[np.float32], turn_id: str,
        origin: str = "extracted", stamp: str | None = None,
    ) -> str:  # fmt: skip
        new_id, stamp = memory_id(user_id, turn_id, fact.text), stamp or now(self.clock)
        self.vectors.add(user_id, [new_id], vector[None, :])
        with transaction(self.db):
            self.db.table("memories").upsert(
                {
                    "id": new_id, "user_id": user_id, "kind": fact.kind.value,
                    "text": fact.text, "importance": fact.importance, "emotion": fact.emotion,
                    "valence": fact.valence, "happened": fact.happened,
                    "source_turn_id": turn_id, "status": "current", "superseded_by": None,
                    "origin": origin, "created_at": stamp, "updated_at": stamp,
                    "last_seen_at": stamp,
                },
                pk="id",
            )  # fmt: skip
            self._add_source(user_id, new_id, turn_id, stamp)
        return new_id

    def _merge(self, memory: Memory, fact: ExtractedFact, turn_id: str, stamp: str) -> None:
        if turn_id in self.sources(memory.user_id, memory.id):
            return
        seen = max(memory.last_seen_at, stamp)  # an older chat ingested later ages nothing
        with transaction(self.db):
            self.db.table("memories").update(
                memory.id,
                {
                    "importance": min(1.0, max(memory.importance, fact.importance) + 0.05),
                    "emotion": fact.emotion or memory.emotion,
                    "valence": fact.valence if fact.emotion else memory.valence,
                    "happened": memory.happened or fact.happened,
                    "updated_at": seen, "last_seen_at": seen,
                },
            )  # fmt: skip
            self._add_source(memory.user_id, memory.id, turn_id, stamp)

    def _add_source(self, user_id: str, memory: str, turn_id: str, stamp: str) -> None:
        row = {"memory_id": memory, "turn_id": turn_id, "user_id": user_id}
        self.db.table("memory_sources").insert(
            {**row, "created_at": stamp}, pk=("memory_id", "turn_id"), ignore=True
        )

    def _supersede(self, user_id: str, old_ids: Sequence[str], new_id: str, stamp: str) -> None:
        old_ids = [i for i in old_ids if i != new_id]
        if not old_ids:
            return
        with transaction(self.db):
            for old in old_ids:
                self.db.table("memories").update(
                    old,
                    {
                        "status": "superseded",
                        "superseded_by": new_id,
                        "updated_at": stamp,
                    },
                )
        self.vectors.delete(user_id, old_ids)

    def current_by_ids(self, user_id: str, ids: Sequence[str]) -> dict[str, Memory]:
        """Return this user's current memories among `ids` (others' ids are never returned)."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self.db.query(
            f"select * from memories where user_id = ? and status = 'current' and id in ({marks})",
            [user_id, *ids],
        )
        return {row["id"]: Memory.from_row(row) for row in rows}

    def get(self, user_id: str, memory: str) -> Memory:
        """Return one of the user's memories (current or history), or raise."""
        table = self.db.table("memories")
        rows = list(table.rows_where("id = ? and user_id = ?", [memory, user_id]))
        if not rows:
            raise UnknownMemoryError(
                f"No memory {memory!r} for user {user_id!r}: see `empathos memory list`."
            )
        return Memory.from_row(rows[0])

    def verify(self, user_id: str, memory: str) -> bool:
        """Return True only if the memory exists, belongs to this user and is current."""
        return bool(self.current_by_ids(user_id, [memory]))

    def all(self, user_id: str, include_history: bool = False) -> list[Memory]:
        where = "user_id = ?" + ("" if include_history else " and status = 'current'")
        table = self.db.table("memories")
        rows = table.rows_where(where, [user_id], order_by="created_at desc, id")
        return [Memory.from_row(row) for row in rows]

    def from_turn(self, user_id: str, turn_id: str) -> list[Memory]:
        """Return the user's current memories first extracted from one turn."""
        rows = self.db.table("memories").rows_where(
            "source_turn_id = ? and user_id = ? and status = 'current'", [turn_id, user_id]
        )
        return [Memory.from_row(row) for row in rows]

    def sources(self, user_id: str, memory: str) -> list[str]:
        rows = self.db.table("memory_sources").rows_where(
            "memory_id = ? and user_id = ?", [memory, user_id], order_by="created_at"
        )
        return [row["turn_id"] for row in rows]

    def history(self, user_id: str, memory: str) -> list[Memory]:
        """Return the versions this memory superseded, newest first."""
        chain, frontier = [], [memory]
        while frontier:
            marks = ", ".join("?" * len(frontier))
            rows = self.db.query(
                f"select * from memories where user_id = ? and superseded_by in ({marks}) "
                "order by created_at desc",
                [user_id, *frontier],
            )
            older = [Memory.from_row(row) for row in rows]
            chain += older
            frontier = [m.id for m in older]
        return chain

    def search(self, user_id: str, text: str, k: int = 5) -> list[tuple[Memory, float]]:
        return self.similar(user_id, self.embedder.embed([text])[0], k)

    def edit(self, user_id: str, memory: str, text: str) -> Memory:
        """Replace a current memory's words (the user's correction) and re-embed it."""
        found = self.get(user_id, memory)
        if not found.current:
            raise UnknownMemoryError(f"Memory {memory!r} is history; edit the current version.")
        ExtractedFact(kind=MemoryKind(found.kind), text=text)  # validates the length
        vector = self.embedder.embed([text])
        update = {"text": text, "origin": "edited", "updated_at": now(self.clock)}
        with transaction(self.db):  # the row rolls back if the vector cannot be written
            self.db.table("memories").update(memory, update)
            self.vectors.add(user_id, [memory], vector)
        return self.get(user_id, memory)

    def forget(self, user_id: str, memory: str) -> list[str]:
        """Delete a memory, its history versions and what was inferred from them; return ids."""
        ids = [self.get(user_id, memory).id, *(m.id for m in self.history(user_id, memory))]
        marks = ", ".join("?" * len(ids))
        with transaction(self.db):
            for table, column in [("memory_sources", "memory_id"), ("trait_evidence", "source_id"),
                                  ("trait_evidence", "basis"), ("memories", "id")]:  # fmt: skip
                self.db.execute(
                    f"delete from {table} where user_id = ? and {column} in ({marks})",
                    [user_id, *ids],
                )
            # a reading of the telling passages may have drawn on it: the next one makes new ones
            self.db.execute(
                "delete from trait_evidence where user_id = ? and kind in ('recall', 'rating')",
                [user_id],
            )
            scrub_traces(self.db, user_id, set(ids))
        # The words go first; a crash before the vectors go leaves only stale vectors, which
        # `reconcile` removes at the next start.
        self.vectors.delete(user_id, ids)
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # old page images leave the WAL
        return ids

    def reindex(self, user_id: str, only_missing: bool = False, batch: int = 256) -> int:
        """Make the user's collection hold exactly the current memories' vectors: drop stale
        ones, embed the rest (`only_missing`: only those without a vector); return how many
        were embedded.

        SQLite is the truth and Chroma an index of it, so every crash window between the two
        leaves a state this repairs: a vector without its row (written first), or a row whose
        vector was not written yet."""
        current = self.all(user_id)
        stored = set(self.vectors.ids(user_id))
        self.vectors.delete(user_id, sorted(stored - {m.id for m in current}))
        todo = [m for m in current if m.id not in stored] if only_missing else current
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            vectors = self.embedder.embed([m.text for m in chunk])
            self.vectors.add(user_id, [m.id for m in chunk], vectors)
        return len(todo)

    def reconcile(self) -> dict[str, int]:
        """Bring Chroma in step with SQLite after a crash (run at start-up, before any work):
        every user's vectors (see `reindex`), and the collections of people no longer stored
        (their forgetting was cut short after the rows went). Returns what changed, by user."""
        users = [row[0] for row in self.db.execute("select id from users").fetchall()]
        changed = {u: n for u in users if (n := self.reindex(u, only_missing=True))}
        for name in self.vectors.orphans(users):
            self.vectors.drop_collection(name)
            changed[name] = 0
        return changed
