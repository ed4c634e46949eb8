import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from memory.database import open_database
from memory.migrations import MIGRATIONS, m005_turn_search, migrate
from memory.privacy import compact, forget_rows
from memory.search import match_expression
from memory.store import (
    TITLE_MAX,
    ConversationStore,
    InvalidUserIdError,
    UnknownSessionError,
)
from memory.trace import TurnTrace


def test_migrations_are_recorded_once(tmp_path):
    db = open_database(tmp_path / "d" / "x.db")
    assert {r["name"] for r in db["_migrations"].rows} == {m.__name__ for m in MIGRATIONS}
    assert migrate(db) == []


def test_files_are_private(tmp_path):
    open_database(tmp_path / "d" / "x.db")
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "x.db").st_mode) == 0o600


def test_begin_turn_is_idempotent_and_indexed(store: ConversationStore):
    session = store.new_session("ana")
    first = store.begin_turn("t1", "ana", session, "hello")
    again = store.begin_turn("t1", "ana", session, "hello")
    second = store.begin_turn("t2", "ana", session, "again")
    assert (first.idx, again.idx, second.idx) == (0, 0, 1)
    assert [t.id for t in store.turns("ana")] == ["t1", "t2"]
    assert [t.status for t in store.pending_turns("ana")] == ["pending", "pending"]


def test_complete_and_history(store: ConversationStore):
    session = store.new_session("ana")
    store.begin_turn("t1", "ana", session, "hello")
    store.complete_turn(
        "t1",
        "hi there",
        TurnTrace.model_validate({"plan": {"lens": "Person-centred", "strategy": "Question"}}),
        crisis=False,
    )
    store.begin_turn("t2", "ana", session, "next")
    assert store.history("ana", session, limit=5, before_idx=1) == [
        ("user", "hello"),
        ("assistant", "hi there"),
    ]
    turn = store.get_turn("t1")
    assert turn is not None and turn.trace.plan.strategy == "Question"


def test_failed_turn_keeps_the_message(store: ConversationStore):
    session = store.new_session("ana")
    store.begin_turn("t1", "ana", session, "keep me")
    store.fail_turn("t1", "model exploded")
    turn = store.get_turn("t1")
    assert turn is not None and (turn.status, turn.user_text) == ("failed", "keep me")


def test_sessions_are_scoped_to_their_user(store: ConversationStore):
    mine = store.new_session("ana")
    with pytest.raises(UnknownSessionError, match="omit --session"):
        store.check_session("bob", mine)
    assert store.latest_session("bob") is None


@pytest.mark.parametrize("bad", ["", " ana", "a/b", "x" * 65, "../etc"])
def test_bad_user_ids_are_refused(store: ConversationStore, bad: str):
    with pytest.raises(InvalidUserIdError, match="Invalid user name"):
        store.ensure_user(bad)


# ------------------------------------------------------------------ users and sessions


def test_users_are_listed_most_recently_active_first(store: ConversationStore):
    store.ensure_user("ana")
    store.ensure_user("bob")
    store.new_session("ana")
    assert store.users()[0] == "ana" and set(store.users()) == {"ana", "bob"}


def test_sessions_summarise_only_the_users_own_turns(store: ConversationStore):
    first = store.new_session("ana", title="Exams")
    store.begin_turn("t1", "ana", first, "  the first\nmessage ")
    store.begin_turn("t2", "ana", first, "the second")
    empty = store.new_session("ana")
    store.new_session("bob")
    sessions = store.sessions("ana")
    assert [(s.id, s.title, s.turns) for s in sessions] == [(empty, "", 0), (first, "Exams", 2)]
    assert sessions[1].first_text == "  the first\nmessage "
    assert store.session("ana", first) == sessions[1]
    with pytest.raises(UnknownSessionError):
        store.session("bob", first)


def test_rename_tidies_the_title_and_refuses_another_users_session(store: ConversationStore):
    mine = store.new_session("ana")
    assert store.rename_session("ana", mine, "  Sunday \n thoughts ") == "Sunday thoughts"
    assert store.rename_session("ana", mine, "x" * 200) == "x" * TITLE_MAX
    store.ensure_user("bob")
    with pytest.raises(UnknownSessionError, match="nothing was renamed"):
        store.rename_session("bob", mine, "taken over")
    with pytest.raises(UnknownSessionError):
        store.rename_session("ana", "no-such-session", "x")
    assert store.session("ana", mine).title == "x" * TITLE_MAX


# ------------------------------------------------------------------ full-text search


def talk(store: ConversationStore, user: str, *exchanges: tuple[str, str]) -> list[str]:
    """Store finished turns for `user` in a new session; return their ids."""
    session = store.new_session(user)
    ids = []
    for i, (said, reply) in enumerate(exchanges):
        turn_id = f"{user}-{i}"
        store.begin_turn(turn_id, user, session, said)
        store.complete_turn(turn_id, reply, TurnTrace(), crisis=False)
        ids.append(turn_id)
    return ids


def test_search_finds_words_by_their_stem_in_messages_and_replies(store: ConversationStore):
    exams, walk, both = talk(
        store,
        "ana",
        ("My exams went badly", "That must sting."),
        ("It rained all day", "A walk might help."),
        ("Exam after exam, I keep walking around", "Exams are a lot."),
    )
    assert [h.turn_id for h in store.search_turns("ana", "exam")] == [both, exams]  # bm25
    assert {h.turn_id for h in store.search_turns("ana", "walked")} == {walk, both}
    assert store.search_turns("ana", "EXAMS walks")[0].turn_id == both
    hit = store.search_turns("ana", "sting")[0]
    assert (hit.turn_id, hit.snippet) == (exams, "That must sting.")
    assert store.search_turns("ana", "exam", limit=1)[0].turn_id == both
    assert store.search_turns("ana", "painting") == []


def test_search_never_returns_another_users_turns(store: ConversationStore):
    talk(store, "bob", ("my secret garden", "Tell me about the garden."))
    (mine,) = talk(store, "ana", ("a garden party", "Sounds fun."))
    assert [h.turn_id for h in store.search_turns("ana", "garden")] == [mine]
    assert store.search_turns("ana", "secret") == []
    assert store.search_turns("nobody", "garden") == []


HOSTILE = ['"', '""', "*", "NEAR(", "NEAR(exam, 2)", "-", "-exam", ":", "user_text:exam", "",
           "   ", "AND", "exam OR", "NOT exam", "(", ")", "^", "'", "exam*", '"unbalanced exam',
           "{reply}: x", "\x00", "🙂", "x" * 5000, "exam " * 100]  # fmt: skip


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(store: ConversationStore, query: str):
    talk(store, "ana", ("an exam NEAR the end", "user_text reply"))
    hits = store.search_turns("ana", query)
    assert all(h.turn_id == "ana-0" for h in hits)


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_any_text_is_a_valid_query(query: str):
    store = ConversationStore(open_database(":memory:"))
    talk(store, "ana", ("an exam", "a reply"))
    store.search_turns("ana", query)


def test_match_expression_quotes_every_word():
    assert match_expression('say "hi" NEAR(x* - :') == '"say" "hi" "NEAR" "x"'
    assert match_expression(' "*- ') is None


def test_the_search_index_covers_turns_stored_before_it(tmp_path):
    db = Database(tmp_path / "old.db")
    db.table("_migrations").create({"name": str, "applied_at": str}, pk="name")
    for fn in MIGRATIONS[: MIGRATIONS.index(m005_turn_search)]:
        fn(db)
        db.table("_migrations").insert({"name": fn.__name__, "applied_at": "then"})
    store = ConversationStore(db)
    (old,) = talk(store, "ana", ("an old conversation about gardens", "Yes."))
    assert migrate(db)[0] == "m005_turn_search"  # and any later ones
    assert db.execute(
        "select count(*) from turns_fts where turns_fts match 'garden'"
    ).fetchone() == (1,)
    assert [h.turn_id for h in store.search_turns("ana", "garden")] == [old]


def test_the_index_heals_when_rowids_move(store: ConversationStore):
    """VACUUM may renumber `turns`; a misplaced index row never shows one user another's words."""
    (mine,) = talk(store, "ana", ("a garden party", "Sounds fun."))
    (theirs,) = talk(store, "bob", ("my secret diary", "Tell me."))
    rowids = dict(store.db.execute("select id, rowid from turns").fetchall())
    with store.db.conn:
        store.db.execute("delete from turns_fts")
        store.db.execute(
            "insert into turns_fts(rowid, turn_id, user_text, reply) values (?, ?, ?, ?)",
            [rowids[mine], theirs, "my secret diary", "Tell me."],
        )
    assert store.search_turns("ana", "secret") == []
    assert [h.turn_id for h in store.search_turns("ana", "garden")] == [mine]
    assert [h.turn_id for h in store.search_turns("bob", "secret")] == [theirs]


def test_the_index_follows_a_reply_written_after_a_search(store: ConversationStore):
    session = store.new_session("ana")
    store.begin_turn("t1", "ana", session, "my garden")
    assert [h.turn_id for h in store.search_turns("ana", "garden")] == ["t1"]
    assert store.search_turns("ana", "tomatoes") == []
    store.complete_turn("t1", "Tell me about the tomatoes.", TurnTrace(), crisis=False)
    assert [h.turn_id for h in store.search_turns("ana", "tomato")] == ["t1"]
    assert len(store.search_turns("ana", "garden")) == 1


def test_forgetting_a_user_leaves_none_of_their_words_in_the_index(tmp_path):
    path = tmp_path / "d" / "x.db"
    db = open_database(path)
    store = ConversationStore(db)
    talk(store, "ana", ("zanzibarian heliotrope", "quixotically yours"))
    talk(store, "bob", ("a plain message", "a plain reply"))
    forget_rows(db, "ana")
    compact(db.conn, path)
    data = b"".join(p.read_bytes() for p in path.parent.iterdir())
    assert b"zanzibar" not in data and b"heliotrop" not in data and b"quixot" not in data
    assert [h.turn_id for h in store.search_turns("bob", "plain")] == ["bob-0"]
