"""Finding a person's turns by their words: SQLite FTS5 over messages and replies.

The index (`turns_fts`, created by migration `m005_turn_search`) is brought up to date for a
user just before their search, not by triggers: a trigger would open FTS5 inside every turn's
write transaction, and that fails at once with "database is locked" when another thread has
committed meanwhile. Forgetting a person removes their index rows (a trigger on `users`).

What a person types is never handed to FTS5 as query syntax: `match_expression` keeps only its
words, each quoted as a phrase, so quotes, `*`, `NEAR(`, `-` or `:` are plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlite_utils import Database

WORD = re.compile(r"\w+")
SEARCH_WORDS_MAX = 32
SNIPPET_TOKENS = 12
INDEX_BATCH = 500


@dataclass(frozen=True)
class TurnHit:
    """A turn found by its words: where it is, the words around the match, its bm25 rank
    (lower is a better match)."""

    turn_id: str
    session_id: str
    snippet: str
    rank: float


def match_expression(query: str) -> str | None:
    """Return an FTS5 query matching every word of `query` (None if it has no words).

    Each word becomes a quoted phrase, so nothing typed is read as FTS5 syntax."""
    words = WORD.findall(query)[:SEARCH_WORDS_MAX]
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


STALE_SQL = """
select t.rowid from turns t left join turns_fts f on f.rowid = t.rowid
where t.user_id = ?
  and (f.rowid is null or f.turn_id is not t.id or f.user_text is not t.user_text
       or f.reply is not t.reply)
"""

SEARCH_SQL = f"""
select t.id, t.session_id, snippet(turns_fts, -1, '', '', '…', {SNIPPET_TOKENS}),
  bm25(turns_fts)
from turns_fts join turns t on t.rowid = turns_fts.rowid and t.id = turns_fts.turn_id
where turns_fts match ? and t.user_id = ?
order by bm25(turns_fts), t.created_at desc limit ?
"""


def search_turns(db: Database, user_id: str, query: str, limit: int = 30) -> list[TurnHit]:
    """Return the user's turns whose message or reply has every word of `query` (by word
    stem: "exams" finds "exam"), best match (bm25) first. Any text is a valid query."""
    expression = match_expression(query)
    if expression is None or limit <= 0:
        return []
    index_turns(db, user_id)
    rows = db.execute(SEARCH_SQL, [expression, user_id, limit]).fetchall()
    return [TurnHit(r[0], r[1], " ".join(str(r[2]).split()), float(r[3])) for r in rows]


def index_turns(db: Database, user_id: str) -> None:
    """Bring the search index up to date with the user's turns (new ones, finished replies).

    The read runs outside any transaction, so FTS5 opens there (see `m005_turn_search`); the
    rewrite takes the write lock first (`begin immediate`), so two searches at once cannot
    both re-add a row. A turn written meanwhile is indexed by the next search."""
    stale = [row[0] for row in db.execute(STALE_SQL, [user_id]).fetchall()]
    for start in range(0, len(stale), INDEX_BATCH):
        batch = stale[start : start + INDEX_BATCH]
        marks = ", ".join("?" * len(batch))
        conn = db.conn
        conn.execute("begin immediate")
        try:
            conn.execute(f"delete from turns_fts where rowid in ({marks})", batch)
            conn.execute(
                "insert into turns_fts(rowid, turn_id, user_text, reply) "
                f"select rowid, id, user_text, reply from turns where rowid in ({marks})",
                batch,
            )
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
