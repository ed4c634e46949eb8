"""Named, ordered schema migrations for the structured store (the simonw/llm pattern).

Each migration is a function `mNNN_what(db)`; applied names are recorded in `_migrations`, so a
migration runs once per database (in one transaction) and new ones append to the end of the list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlite_utils import Database

from memory.trace import TurnTrace, upgrade

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; order of definition is order of application."""
    MIGRATIONS.append(fn)
    return fn


def migrate(db: Database) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    db.table("_migrations").create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db.table("_migrations").rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.atomic():
            fn(db)
            db.table("_migrations").insert(
                {"name": fn.__name__, "applied_at": datetime.now(UTC).isoformat()}
            )
        applied.append(fn.__name__)
    return applied


@migration
def m001_create_tables(db: Database) -> None:
    db.table("users").create(
        {"id": str, "created_at": str, "display_name": str}, pk="id", if_not_exists=True
    )
    db.table("sessions").create(
        {"id": str, "user_id": str, "title": str, "created_at": str, "updated_at": str},
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("turns").create(
        {
            "id": str,
            "session_id": str,
            "user_id": str,
            "idx": int,
            "user_text": str,
            "reply": str,
            "status": str,
            "crisis": int,
            "error": str,
            "trace": str,
            "created_at": str,
            "completed_at": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id"), ("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("turns").create_index(["session_id", "idx"], if_not_exists=True)
    db.table("turns").create_index(["user_id", "status"], if_not_exists=True)
    db.table("sessions").create_index(["user_id", "updated_at"], if_not_exists=True)


@migration
def m002_memory_tables(db: Database) -> None:
    """Long-term memory: facts with their source turns, and the off-critical-path job queue."""
    db.table("memories").create(
        {
            "id": str,
            "user_id": str,
            "kind": str,
            "text": str,
            "importance": float,
            "emotion": str,
            "valence": float,
            "happened": str,
            "source_turn_id": str,
            "status": str,
            "superseded_by": str,
            "origin": str,
            "created_at": str,
            "updated_at": str,
            "last_seen_at": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("memories").create_index(["user_id", "status"], if_not_exists=True)
    db.table("memories").create_index(["source_turn_id"], if_not_exists=True)
    db.table("memory_sources").create(
        {"memory_id": str, "turn_id": str, "user_id": str, "created_at": str},
        pk=("memory_id", "turn_id"),
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("memory_sources").create_index(["user_id"], if_not_exists=True)
    db.table("jobs").create(
        {
            "id": str,
            "seq": int,
            "user_id": str,
            "kind": str,
            "payload": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "run_after": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("jobs").create_index(["status", "run_after", "seq"], if_not_exists=True)
    db.table("jobs").create_index(["user_id"], if_not_exists=True)


@migration
def m003_user_model_tables(db: Database) -> None:
    """The user model: traits with evidence and history, strategy outcomes and feedback."""
    db.table("traits").create(
        {
            "user_id": str,
            "name": str,
            "value": float,
            "confidence": float,
            "source": str,
            "evidence": str,
            "updated_at": str,
        },
        pk=("user_id", "name"),
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("trait_evidence").create(
        {
            "user_id": str,
            "source_id": str,
            "name": str,
            "signal": float,
            "weight": float,
            "why": str,
            "session_id": str,
            "created_at": str,
        },
        pk=("user_id", "source_id", "name"),
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("trait_history").create(
        {
            "user_id": str,
            "name": str,
            "session_id": str,
            "value": float,
            "confidence": float,
            "source": str,
            "created_at": str,
        },
        pk=("user_id", "name", "session_id"),
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("outcomes").create(
        {
            "turn_id": str,
            "user_id": str,
            "lens": str,
            "strategy": str,
            "emotion_shift": float,
            "engagement": float,
            "auto_reward": float,
            "feedback": int,
            "reward": float,
            "next_turn_id": str,
            "updated_at": str,
        },
        pk="turn_id",
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db.table("outcomes").create_index(["user_id"], if_not_exists=True)
    db.table("feedback").create(
        {"turn_id": str, "user_id": str, "value": int, "note": str, "created_at": str},
        pk="turn_id",
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )


@migration
def m004_trace_version_2(db: Database) -> None:
    """Stored traces become versioned `TurnTrace` records (see `memory.trace`). A trace that
    does not validate is left as it was (it reads as unreadable, nothing is thrown away)."""
    rows = db.execute("select id, trace from turns where trace is not null").fetchall()
    for turn_id, raw in rows:
        try:
            data = upgrade(json.loads(raw))
            TurnTrace.model_validate(data)
        except (ValueError, TypeError, ValidationError):
            continue
        db.execute("update turns set trace = ? where id = ?", [json.dumps(data), turn_id])


FORGET_SEARCH_TRIGGER = """
create trigger if not exists users_ad_turns_fts after delete on users begin
  delete from turns_fts where turn_id not in (select id from turns);
  insert into turns_fts(turns_fts) values ('optimize');
end"""


@migration
def m005_turn_search(db: Database) -> None:
    """Full-text search over turns: an FTS5 table of each turn's message and reply, under the
    turn's rowid, with Porter stems (so "exams" finds "exam"), filled from the stored turns. It
    keeps the turn id too, since VACUUM may renumber the rowids of `turns`.

    There are no triggers on `turns`: `ConversationStore.search_turns` brings the index up to
    date before it searches. A trigger would open the FTS5 table inside every turn write, and
    FTS5 reads its config when a connection first opens it; inside sqlite-utils' deferred
    `BEGIN` that read pins a snapshot, and the write then fails with "database is locked" when
    another thread committed meanwhile. Forgetting a person deletes their `users` row last; the
    trigger on that drops index rows whose turn is gone and merges the index (FTS5 keeps deleted
    words in its pages until a merge), so with `secure_delete` and the VACUUM that follows no
    word of theirs stays in the file."""
    db.execute(
        "create virtual table if not exists turns_fts using fts5(turn_id unindexed, user_text, "
        "reply, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.execute("delete from turns_fts")
    db.execute(
        "insert into turns_fts(rowid, turn_id, user_text, reply) "
        "select rowid, id, user_text, reply from turns"
    )
    db.execute(FORGET_SEARCH_TRIGGER)


@migration
def m006_job_claims(db: Database) -> None:
    """Which process runs a job, so a job whose process died is put back on the queue."""
    if "claimed_by" not in db.table("jobs").columns_dict:
        db.execute("alter table jobs add column claimed_by text")


@migration
def m007_trait_evidence_kinds(db: Database) -> None:
    """Each trait signal keeps its kind (what it measures by) and the memory a rating rests on."""
    columns = db.table("trait_evidence").columns_dict
    for column in ("kind", "basis"):
        if column not in columns:
            db.execute(f"alter table trait_evidence add column {column} text")
    db.execute(
        """update trait_evidence set kind = case
             when why like 'needed %' then 'need' when why like 'felt %' then 'emotion'
             when why like 'said %' then 'marker' when why like 'wrote %' then 'length'
             else 'prototype' end
           where kind is null"""
    )


@migration
def m008_one_recall_reading(db: Database) -> None:
    """The recall reading of the telling passages is one row per person (`recall:latest`), no
    longer one per session (re-reading the same words counted as new evidence); the next
    reading writes it."""
    db.execute(
        "delete from trait_evidence where source_id like 'recall:%' and source_id != ?",
        ["recall:latest"],
    )


@migration
def m009_one_rating_reading(db: Database) -> None:
    """The model's rating of the telling passages is one row per person and trait
    (`rating:latest`), on the probability-weighted scale; the old per-session ratings (a
    whole digit, mostly 3) are dropped and the next reading writes the new one."""
    db.execute(
        "delete from trait_evidence where source_id like 'rating:%' and source_id != ?",
        ["rating:latest"],
    )
