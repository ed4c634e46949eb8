import os
import stat

import pytest

from memory.migrations import MIGRATIONS, migrate
from memory.store import (
    ConversationStore,
    InvalidUserIdError,
    UnknownSessionError,
    open_database,
)


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
    store.complete_turn("t1", "hi there", {"plan": {"strategy": "Question"}}, crisis=False)
    store.begin_turn("t2", "ana", session, "next")
    assert store.history("ana", session, limit=5, before_idx=1) == [
        ("user", "hello"),
        ("assistant", "hi there"),
    ]
    turn = store.get_turn("t1")
    assert turn is not None and turn.trace["plan"]["strategy"] == "Question"


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
