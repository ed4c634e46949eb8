"""Named, ordered schema migrations for the structured store (the simonw/llm pattern).

Each migration is a function `mNNN_what(db)`; applied names are recorded in `_migrations`, so a
migration runs once per database and new ones append to the end of the list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; order of definition is order of application."""
    MIGRATIONS.append(fn)
    return fn


def migrate(db: Database) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    db["_migrations"].create(
        {"name": str, "applied_at": str}, pk="name", if_not_exists=True
    )
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:
            fn(db)
            db["_migrations"].insert(
                {"name": fn.__name__, "applied_at": datetime.now(UTC).isoformat()}
            )
        applied.append(fn.__name__)
    return applied


@migration
def m001_create_tables(db: Database) -> None:
    db["users"].create(
        {"id": str, "created_at": str, "display_name": str}, pk="id", if_not_exists=True
    )
    db["sessions"].create(
        {"id": str, "user_id": str, "title": str, "created_at": str, "updated_at": str},
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        if_not_exists=True,
    )
    db["turns"].create(
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
    db["turns"].create_index(["session_id", "idx"], if_not_exists=True)
    db["turns"].create_index(["user_id", "status"], if_not_exists=True)
    db["sessions"].create_index(["user_id", "updated_at"], if_not_exists=True)
