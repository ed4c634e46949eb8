"""Opening the SQLite database: private files, WAL, migrations, one connection per thread.

The UI thread, the turn and the memory worker all use the same `Database` object, but never the
same connection: `ThreadLocalDatabase` opens a connection the first time a thread touches it, so
one thread's commit or rollback can never take another thread's half-written rows with it.

`with transaction(db):` is one all-or-nothing write on the calling thread's connection. It
takes the write lock up front (`BEGIN IMMEDIATE`, waiting up to `BUSY_TIMEOUT_S` for another
writer), so a transaction that reads before it writes never fails half-way because another
thread committed in between; nested blocks are savepoints. (`with db.conn:` is no transaction
here: sqlite-utils commits each write it makes outside an open transaction.) WAL lets readers
run beside the one writer.

A connection closes when its thread ends (its thread-local slot is dropped) or on `close()`.
`open_database(":memory:")` is one plain connection, for single-threaded tests only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from memory.migrations import migrate

BUSY_TIMEOUT_S = 30.0


def secure_dir(path: Path) -> Path:
    """Create a private (0700) directory."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _prepare(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")  # deleted text is overwritten, not left in free pages
    return conn


class _Slot:
    """Holds one thread's connection and closes it when the thread's local storage goes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def __del__(self) -> None:
        self.close()


class ThreadLocalDatabase(Database):
    """A sqlite-utils `Database` whose `conn` is the calling thread's own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._slots_lock = threading.Lock()
        super().__init__(self._connect())

    def _connect(self) -> sqlite3.Connection:
        # Only this thread uses the connection; other threads may close it (`close`, GC).
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        return _prepare(conn)

    @property
    def conn(self) -> sqlite3.Connection:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            self.conn = self._connect()
            slot = self._local.slot
        conn: sqlite3.Connection = slot.conn
        return conn

    @conn.setter
    def conn(self, value: sqlite3.Connection) -> None:
        slot = _Slot(value)
        self._local.slot = slot
        with self._slots_lock:
            self._slots.add(slot)

    def close(self) -> None:
        """Close every thread's connection (a thread that uses the database again reopens)."""
        with self._slots_lock:
            slots = list(self._slots)
        for slot in slots:
            slot.close()
        self._local = threading.local()


def open_database(path: Path | str) -> Database:
    """Open (creating and migrating) the SQLite database at `path`, private and in WAL mode."""
    if str(path) == ":memory:":
        db = Database(memory=True)
        _prepare(db.conn)
    else:
        path = Path(path)
        secure_dir(path.parent)
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        db = ThreadLocalDatabase(path)
        db.enable_wal()
    migrate(db)
    return db


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Run the block as one write transaction of this thread (nested: a savepoint)."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
