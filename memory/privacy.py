"""Privacy and control: forget a user everywhere; export one JSON document; import it back.

Exceptions: `PrivacyError` (base) > `UnknownUserError` (nothing stored for that name),
`ExportFormatError` (not an empathos export, or not one this version reads), `UserExistsError`
(importing over a user who already has data), `CompactionError` (a file is in use, so freed
pages could not be wiped; close other empathos processes and run it again).

Forgetting leaves no byte of the user's text in any file under the data dir: rows are deleted
from every table with a `user_id` column (with `secure_delete` on), the user's Chroma collection
is dropped with its segment files and Chroma's SQLite file is vacuumed, LangGraph checkpoints of
the user's threads (`"{user}:{turn}"`) are deleted, and each SQLite file is checkpointed
(`wal_checkpoint(TRUNCATE)`) and vacuumed so no page or WAL frame keeps the old bytes. No on-disk
cache holds user text (the per-turn embedding cache is in process memory). Stop the background
memory worker first: a job in flight could write the user back.

An export holds every row of the user's (memories with their history, traits with evidence and
history, outcomes, feedback, sessions and turns with traces), not the vectors: importing
re-embeds current memories, which gives the same vectors with the same model.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from memory.database import transaction
from memory.errors import MemoryLayerError
from memory.store import check_user_id
from memory.trait_rating import RATING_SOURCE, RECALL_SOURCE
from memory.vectors import secure_tree

if TYPE_CHECKING:
    from memory.memories import MemoryStore
    from memory.vectors import VectorStore

EXPORT_FORMAT, EXPORT_VERSION = "empathos-export", 1
EXPORT_TABLES: list[tuple[str, tuple[str, ...]]] = [
    ("users", ()), ("sessions", ()), ("turns", ("trace",)), ("memories", ()),
    ("memory_sources", ()), ("traits", ("evidence",)), ("trait_evidence", ()),
    ("trait_history", ()), ("outcomes", ()), ("feedback", ()),
]  # fmt: skip
PARENT_TABLES = ("sessions", "users")


class PrivacyError(MemoryLayerError):
    """Base class for privacy errors."""


class UnknownUserError(PrivacyError, LookupError):
    """Nothing is stored for that user."""


class ExportFormatError(PrivacyError, ValueError):
    """Not an empathos export, or not a version this code reads."""


class UserExistsError(PrivacyError):
    """The user already has data; importing would mix two histories."""


class CompactionError(PrivacyError):
    """A database file is in use, so freed pages could not be wiped."""


@dataclass
class ForgetReport:
    rows: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    left_behind: list[str] = field(default_factory=list)  # "path: why", to remove by hand

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.checkpoints


def user_exists(db: Database, user_id: str) -> bool:
    return db.execute("select 1 from users where id = ?", [user_id]).fetchone() is not None


def user_tables(db: Database) -> list[str]:
    """Return every table with a `user_id` column, then `users`; children before parents."""
    found = [t.name for t in db.tables if "user_id" in {c.name for c in t.columns}]
    children = sorted(t for t in found if t not in PARENT_TABLES)
    return children + [t for t in PARENT_TABLES if t in found or t == "users"]


def compact(connection: sqlite3.Connection, path: Path | str) -> None:
    """Fold the WAL into the file, wipe free pages (VACUUM) and truncate the WAL."""
    try:
        _truncate_wal(connection, path)
        connection.execute("VACUUM")
        _truncate_wal(connection, path)
    except sqlite3.OperationalError as exc:
        raise CompactionError(
            f"Could not compact {path} ({exc}): close other empathos processes using this data "
            "dir and run the command again."
        ) from exc


def _truncate_wal(connection: sqlite3.Connection, path: Path | str) -> None:
    busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy is not None and busy[0]:
        raise CompactionError(
            f"{path} is in use by another connection, so its log could not be wiped: close "
            "other empathos processes and run the command again."
        )


def forget_rows(db: Database, user_id: str) -> dict[str, int]:
    """Delete the user's rows from every table that has them; return counts per table."""
    counts = {}
    db.execute("PRAGMA secure_delete = ON")
    with transaction(db):
        for table in user_tables(db):
            column = "id" if table == "users" else "user_id"
            cursor = db.execute(f"delete from [{table}] where {column} = ?", [user_id])
            counts[table] = cursor.rowcount
    return counts


def forget_checkpoints(path: Path, user_id: str) -> int:
    """Delete the LangGraph checkpoints of the user's threads and wipe the freed pages."""
    if not path.exists():
        return 0
    prefix = f"{user_id}:"
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA secure_delete = ON")
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
        deleted = 0
        with connection:
            for table in ("checkpoints", "writes", "checkpoint_blobs", "checkpoint_writes"):
                if table in tables:
                    deleted += connection.execute(
                        f"delete from [{table}] where substr(thread_id, 1, ?) = ?",
                        [len(prefix), prefix],
                    ).rowcount
        compact(connection, path)
    finally:
        connection.close()
    return deleted


def forget_user(
    db: Database, vectors: VectorStore, user_id: str, *, checkpoint_path: Path | None = None,
    data_dir: Path | None = None,
) -> ForgetReport:  # fmt: skip
    """Remove the user everywhere: SQLite rows, Chroma collection, checkpoints; wipe pages."""
    check_user_id(user_id)
    if not user_exists(db, user_id) and vectors.count(user_id) == 0:
        raise UnknownUserError(f"Nothing is stored for user {user_id!r}.")
    # Rows first: a crash before the collection goes leaves a collection of nobody, which the
    # next start drops (`MemoryStore.reconcile`); the reverse would leave words without vectors.
    report = ForgetReport(rows=forget_rows(db, user_id))
    vectors.drop(user_id)
    compact(db.conn, "the empathos database")
    return forget_files(report, user_id, checkpoint_path=checkpoint_path, data_dir=data_dir)


def forget_files(
    report: ForgetReport, user_id: str, *, checkpoint_path: Path | None = None,
    data_dir: Path | None = None,
) -> ForgetReport:  # fmt: skip
    """Delete what the user has outside the database's tables and Chroma (the checkpoints of
    their threads, their loose files), wipe the freed space, and note it in `report`."""
    if checkpoint_path is not None:
        report.checkpoints = forget_checkpoints(checkpoint_path, user_id)
    if data_dir is not None:
        report.left_behind = remove_tree(user_files(data_dir, user_id))
        secure_tree(data_dir)
    return report


def remove_tree(folder: Path) -> list[str]:
    """Delete a folder; return each path that could not be removed, with why (never silent)."""
    failures: list[str] = []

    def note(
        _: object, path: str, exc_info: tuple[type[BaseException], BaseException, object]
    ) -> None:
        failures.append(f"{path}: {exc_info[1]}")

    if folder.exists():
        shutil.rmtree(folder, onerror=note)
    return failures


def user_files(data_dir: Path, user_id: str) -> Path:
    """The folder for a user's loose files (e.g. the copied last reply); forget removes it."""
    return data_dir / "users" / check_user_id(user_id)


def _rows(db: Database, table: str, user_id: str, json_columns: tuple[str, ...]) -> list[Any]:
    column = "id" if table == "users" else "user_id"
    rows = list(db.query(f"select * from [{table}] where {column} = ? order by rowid", [user_id]))
    for row in rows:
        for name in json_columns:
            row[name] = json.loads(row[name]) if row[name] else row[name]
    return rows


def export_user(db: Database, user_id: str) -> dict[str, Any]:
    """Return everything stored about the user as one JSON-able document."""
    if not user_exists(db, user_id):
        raise UnknownUserError(f"Nothing is stored for user {user_id!r}.")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": {t: _rows(db, t, user_id, cols) for t, cols in EXPORT_TABLES},
    }


def check_export(doc: Any) -> str:
    """Return the user id of a valid export document, else raise saying what is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ExportFormatError("Not an empathos export: expected a JSON object with "
                                f'"format": "{EXPORT_FORMAT}".')  # fmt: skip
    if doc.get("version") != EXPORT_VERSION:
        raise ExportFormatError(
            f"Export version {doc.get('version')!r} is not supported (this empathos reads "
            f"version {EXPORT_VERSION}); export again with a matching empathos."
        )
    tables = doc.get("tables")
    if not isinstance(tables, dict) or set(tables) - {t for t, _ in EXPORT_TABLES}:
        known = [t for t, _ in EXPORT_TABLES]
        raise ExportFormatError(f"The export's tables must be among {known}.")
    user_id = check_user_id(str(doc.get("user_id", "")))
    for table, rows in tables.items():
        if not isinstance(rows, list):
            raise ExportFormatError(f"Table {table!r} must be a list of rows.")
        column = "id" if table == "users" else "user_id"
        if any(not isinstance(r, dict) or r.get(column) != user_id for r in rows):
            raise ExportFormatError(
                f"Rows of table {table!r} belong to another user than {user_id!r}."
            )
    own_sessions = {r.get("id") for r in tables.get("sessions", [])}
    if any(r.get("session_id") not in own_sessions for r in tables.get("turns", [])):
        raise ExportFormatError("Some turns point to a session that is not in the export.")
    return user_id


def import_user(
    db: Database, memories: MemoryStore, doc: Any, *, replace: bool = False
) -> dict[str, int]:
    """Restore an export exactly (rows as exported, vectors re-embedded); return row counts.

    `replace` swaps the user's current rows for the export's in one transaction, so an export
    that does not fit leaves the current data as it was; the old vectors are then dropped and
    the new memories embedded. What an export does not hold (checkpoints, loose files) is the
    caller's to remove once this returns: `agent.context.Context.import_user`."""
    user_id = check_export(doc)
    if user_exists(db, user_id) and not replace:
        raise UserExistsError(
            f"User {user_id!r} already has data: forget them first (`empathos memory forget "
            f"--user {user_id} --all`) or import with --replace."
        )
    counts = {}
    try:
        with transaction(db):
            if replace:
                forget_rows(db, user_id)
            for table, json_columns in EXPORT_TABLES:
                rows = [_encode(row, json_columns) for row in doc["tables"].get(table, [])]
                db.table(table).insert_all(rows, alter=False)
                counts[table] = len(rows)
            for kind, latest in (("recall", RECALL_SOURCE), ("rating", RATING_SOURCE)):
                db.execute(  # an export from before m008 (m009) has a reading per session
                    f"delete from trait_evidence where user_id = ? and source_id like '{kind}:%' "
                    "and source_id != ?",
                    [user_id, latest],
                )
    except sqlite3.DatabaseError as exc:
        raise ExportFormatError(
            f"The export does not fit this database: {exc}. Nothing was imported"
            + (f"; {user_id!r}'s current data is unchanged." if replace else ".")
        ) from exc
    if replace:  # rows first, as in forget_user: a crash here leaves vectors `reconcile` drops
        memories.vectors.drop(user_id)
        compact(db.conn, "the empathos database")
    memories.reindex(user_id)  # a crash before this ends is repaired by `reconcile`
    return counts


def _encode(row: dict[str, Any], json_columns: tuple[str, ...]) -> dict[str, Any]:
    encoded = dict(row)
    for name in json_columns:
        if encoded.get(name) is not None and not isinstance(encoded[name], str):
            encoded[name] = json.dumps(encoded[name], default=str)
    return encoded
