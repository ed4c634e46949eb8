"""The persisted job queue (`jobs` table) behind the memory worker: enqueue, claim, finish,
fail with backoff, and recovery of jobs whose process died.

Each claimed job records the id of the process running it (`claimed_by`), so recovery puts back
exactly the jobs no live process runs: after a kill -9, at the next start or one-shot command,
while a chat open in another process keeps its own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from memory.database import transaction
from memory.store import now


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int


def job_ids(kinds: Sequence[str], turn_id: str) -> list[str]:
    """The ids of a turn's jobs of these kinds (one job per kind and turn)."""
    return [f"{kind}:{turn_id}" for kind in kinds]


def stamp_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


class JobQueue:
    """The persisted `jobs` table: enqueue, claim, finish, fail with backoff.

    Job times are operational (when to retry), so they follow the wall clock even when the
    stores run on a simulated one: a simulated clock that stands still must not stall retries.
    """

    def __init__(self, db: Database, max_attempts: int = 3, backoff_seconds: float = 5.0) -> None:
        self.db, self.max_attempts, self.backoff = db, max_attempts, backoff_seconds
        self._lock = threading.Lock()

    def enqueue(self, kinds: Sequence[str], user_id: str, payload: dict[str, Any]) -> list[str]:
        """Queue one job per kind for a turn, once per (kind, turn), in one transaction."""
        ids, stamp = job_ids(kinds, payload["turn_id"]), now()
        with self._lock, transaction(self.db):
            seq = self.db.execute("select coalesce(max(seq), 0) + 1 from jobs").fetchone()[0]
            rows = [{"id": job_id, "seq": seq + i, "user_id": user_id, "kind": kind,
                     "payload": json.dumps(payload), "status": "pending", "attempts": 0,
                     "last_error": None, "run_after": stamp, "created_at": stamp,
                     "updated_at": stamp}
                    for i, (job_id, kind) in enumerate(zip(ids, kinds, strict=True))]  # fmt: skip
            self.db.table("jobs").insert_all(rows, pk="id", ignore=True)
        return ids

    def claim(self, ignore_backoff: bool = False, user_id: str | None = None) -> Job | None:
        """Take the oldest due pending job (of `user_id` only, if given) and mark it running
        (atomic across connections)."""
        due = "" if ignore_backoff else " and run_after <= ?"
        args = [] if ignore_backoff else [now()]
        if user_id is not None:
            due, args = due + " and user_id = ?", [*args, user_id]
        with self._lock:
            rows = self.db.execute(
                f"select id, user_id, kind, payload, attempts from jobs where status = 'pending'"
                f"{due} order by seq limit 5",
                args,
            ).fetchall()
            for row in rows:
                with transaction(self.db):
                    taken = self.db.execute(
                        "update jobs set status = 'running', claimed_by = ?, updated_at = ? "
                        "where id = ? and status = 'pending'",
                        [str(os.getpid()), now(), row[0]],
                    ).rowcount
                if taken == 1:
                    return Job(row[0], row[1], row[2], json.loads(row[3]), row[4])
        return None

    def finish(self, job: Job) -> None:
        with self._lock, transaction(self.db):
            self._set(job.id, status="done", attempts=job.attempts + 1, last_error=None)

    def fail(self, job: Job, error: str) -> bool:
        """Record a failure; return True if the job will be retried."""
        attempts = job.attempts + 1
        retry = attempts < self.max_attempts
        with self._lock, transaction(self.db):
            self._set(
                job.id, status="pending" if retry else "failed", attempts=attempts,
                last_error=error[:2000], run_after=stamp_in(self.backoff * 2 ** (attempts - 1)),
            )  # fmt: skip
        return retry

    def release(self, job: Job) -> None:
        """Put a job that gave way to a turn back on the queue, as it was (no attempt)."""
        with self._lock, transaction(self.db):
            self._set(job.id, status="pending", claimed_by=None)

    def _set(self, job_id: str, **values: Any) -> None:
        self.db.table("jobs").update(job_id, {**values, "updated_at": now()})

    def recover(self, user_id: str | None = None) -> int:
        """Put jobs whose process died (or this process's, whose worker is not running) back
        on the queue, counted as an attempt; jobs another live process runs are left alone.
        With `user_id`, only that user's (another thread may be running other people's)."""
        with self._lock, transaction(self.db):
            dead = orphaned_jobs(self.db, user_id)
            for job_id in dead:
                self.db.execute(
                    "update jobs set status = 'pending', attempts = attempts + 1, "
                    "last_error = 'interrupted: the process stopped while this job ran', "
                    "claimed_by = null, updated_at = ? where id = ? and status = 'running'",
                    [now(), job_id],
                )
        return len(dead)

    def failed(self, user_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("status = 'failed'", []) if user_id is None else (
            "status = 'failed' and user_id = ?", [user_id])  # fmt: skip
        return list(self.db.table("jobs").rows_where(where, args, order_by="seq"))

    def retry_failed(self, user_id: str) -> int:
        with self._lock, transaction(self.db):
            cursor = self.db.execute(
                "update jobs set status = 'pending', attempts = 0, run_after = ? "
                "where status = 'failed' and user_id = ?",
                [now(), user_id],
            )
        return cursor.rowcount

    def statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """Return the status of each of these jobs that exists (pending, running, done, failed)."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # within SQLite's limit on parameters
            chunk = list(ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self.db.execute(f"select id, status from jobs where id in ({marks})", chunk)
            found.update((str(job_id), str(status)) for job_id, status in rows.fetchall())
        return found

    def pending(self, user_id: str | None = None) -> int:
        where = "status in ('pending', 'running')" + ("" if user_id is None else " and user_id = ?")
        return int(self.db.execute(
            f"select count(*) from jobs where {where}", [] if user_id is None else [user_id]
        ).fetchone()[0])  # fmt: skip


def process_alive(pid: int) -> bool:
    """Is process `pid` running (a zombie, killed but not yet reaped, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def orphaned_jobs(db: Database, user_id: str | None = None) -> list[str]:
    """Ids of running jobs no live process runs (claimed by a dead one, by no one, or by this
    process, which calls this only while its own worker thread is stopped), of one user if
    given."""
    where, args = ("", []) if user_id is None else (" and user_id = ?", [user_id])
    rows = db.execute(
        f"select id, claimed_by from jobs where status = 'running'{where}", args
    ).fetchall()
    return [
        job_id for job_id, owner in rows
        if not (owner or "").isdigit() or owner == str(os.getpid()) or not process_alive(int(owner))
    ]  # fmt: skip
