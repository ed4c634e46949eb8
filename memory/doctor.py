"""Check a data dir the way a person would want before trusting it: is anything broken, stuck
or out of step, and what to do about it. Nothing here changes data except `repair_vectors`.

Checks: SQLite integrity; each user's Chroma collection against their current memories (SQLite
is the source of truth); memory jobs that failed for good or are stuck; turns that failed or
were interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from memory.jobs import orphaned_jobs
from memory.memories import MemoryStore


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def integrity(db: Database) -> Finding:
    """SQLite's own check of every page and index."""
    result = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    if result == ["ok"]:
        return Finding("database integrity", True, "ok")
    return Finding(
        "database integrity", False, "; ".join(result[:5]),
        "Restore the data dir from a backup, or export what you can with `empathos memory export`.",
    )  # fmt: skip


def vector_agreement(memories: MemoryStore) -> list[Finding]:
    """Each user's vectors must be exactly their current memories' (no stale, none missing)."""
    findings = []
    for (user_id,) in memories.db.execute("select id from users order by id").fetchall():
        current = {m.id for m in memories.all(user_id)}
        stored = set(memories.vectors.ids(user_id))
        missing, stale = current - stored, stored - current
        detail = f"{len(current)} memories, {len(stored)} vectors"
        if missing or stale:
            detail += f" ({len(missing)} missing, {len(stale)} stale)"
            fix = f"Run `empathos doctor --repair` to re-embed {user_id}'s memories."
            findings.append(Finding(f"vectors of {user_id}", False, detail, fix))
        else:
            findings.append(Finding(f"vectors of {user_id}", True, detail))
    return findings


def jobs(db: Database, max_attempts: int = 3) -> Finding:
    """Memory jobs that gave up, or that keep failing."""
    rows = db.execute(
        "select status, count(*), max(last_error) from jobs "
        "where status = 'failed' or (status = 'pending' and attempts > 0) group by status"
    ).fetchall()
    counts = {status: (count, error) for status, count, error in rows}
    failed, _ = counts.get("failed", (0, ""))
    retrying, _ = counts.get("pending", (0, ""))
    interrupted = len(orphaned_jobs(db))
    if interrupted:
        return Finding(
            "memory jobs", False,
            f"{interrupted} left running by a process that stopped, {failed} failed, "
            f"{retrying} retrying",
            "They run again with the next memory work: start a chat, or run `empathos doctor "
            "--repair`.",
        )  # fmt: skip
    if not failed and not retrying:
        return Finding("memory jobs", True, "none failed or retrying")
    error = next((e for _, e in counts.values() if e), "")
    return Finding(
        "memory jobs", False,
        f"{failed} failed after {max_attempts} attempts, {retrying} retrying; last error: {error}",
        "Failed jobs are not retried: check the model (`empathos models verify`), then start a "
        "chat; the facts of those turns are missing from memory.",
    )  # fmt: skip


def turns(db: Database) -> Finding:
    """Turns that failed, and turns a crash left unfinished (resumed at the next start)."""
    rows = dict(
        db.execute(
            "select status, count(*) from turns where status in ('failed', 'pending') "
            "group by status"
        ).fetchall()
    )
    failed, pending = rows.get("failed", 0), rows.get("pending", 0)
    if not failed and not pending:
        return Finding("turns", True, "none failed or unfinished")
    return Finding(
        "turns", failed == 0, f"{failed} failed, {pending} unfinished",
        "Unfinished turns are resumed the next time the person chats; failed ones keep the "
        "message and say why (`empathos memory export` shows them).",
    )  # fmt: skip


def check(memories: MemoryStore) -> list[Finding]:
    """Every data check, in order."""
    db = memories.db
    return [integrity(db), *vector_agreement(memories), jobs(db), turns(db)]
