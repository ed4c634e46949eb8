"""kill -9 at exact points (issue 8): a random kill (`tests/test_kill9.py`) seldom lands in a
window a few milliseconds wide, so these put one in each window that once lost data or left the
stores out of step (an exception no `except Exception` stops, raised where the process would
die), then open the data dir again and check what start-up leaves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.context import Context
from agent.runner import Agent
from memory import doctor, privacy
from memory.worker import MemoryServices, MemoryWorker
from tests.conftest import fake_context
from tests.test_memory_fakes import add_turn, build_services


class Killed(BaseException):
    """The process dying at this point."""


def die_after(real):  # type: ignore[no-untyped-def]
    def run(*args, **kw):  # type: ignore[no-untyped-def]
        real(*args, **kw)
        raise Killed

    return run


def die(*args: object, **kw: object) -> None:
    raise Killed


def restarted(data: Path) -> MemoryServices:
    """Open the data dir again and run the memory jobs, as the next command or chat does."""
    services = build_services(data)
    MemoryWorker(services).drain()
    return services


def disagreement(services: MemoryServices) -> list[str]:
    return [f"{f.check}: {f.detail}" for f in doctor.vector_agreement(services.memories)
            if not f.ok]  # fmt: skip


def remembered(services: MemoryServices, *texts: str) -> str:
    """Store finished turns for ana and run their memory jobs; return the session."""
    session, worker = services.store.new_session("ana"), MemoryWorker(services)
    for text in texts:
        worker.enqueue_turn("ana", session, add_turn(services, "ana", session, text))
    assert worker.drain().failed == 0
    return session


def test_kill_between_superseding_a_memory_and_deleting_its_vector(tmp_path):
    data = tmp_path / "data"
    services = build_services(data)
    session = remembered(services, "I love running in the park.")
    worker = MemoryWorker(services)
    turn = add_turn(services, "ana", session, "I don't love running in the park anymore.")
    worker.enqueue_turn("ana", session, turn)
    services.memories.vectors.delete = die  # the SQLite update is committed; Chroma's is not
    with pytest.raises(Killed):
        worker.drain()
    after = restarted(data)  # the extraction job runs again; it never revisits the old memory
    assert [m.text for m in after.memories.all("ana")] == [
        "I don't love running in the park anymore"
    ]
    assert disagreement(after) == []  # the superseded memory's vector is gone too


def test_kill_while_forgetting_a_memory(tmp_path):
    data = tmp_path / "data"
    services = build_services(data)
    remembered(services, "My sister Maya lives in Lisbon.")
    [memory] = services.memories.all("ana")
    vectors = services.memories.vectors
    vectors.delete = die_after(vectors.delete)  # the vector goes, the row not yet
    with pytest.raises(Killed):
        services.memories.forget("ana", memory.id)
    after = restarted(data)  # the memory is gone, or still listed (to forget again) and found
    assert disagreement(after) == []


def test_kill_while_forgetting_a_person(tmp_path, monkeypatch):
    data = tmp_path / "data"
    services = build_services(data)
    remembered(services, "My sister Maya lives in Lisbon.")
    monkeypatch.setattr(privacy, "forget_rows", die)  # the collection is dropped, rows not yet
    with pytest.raises(Killed):
        privacy.forget_user(services.db, services.memories.vectors, "ana")
    monkeypatch.undo()
    after = restarted(data)
    assert disagreement(after) == []


def test_kill_while_importing(tmp_path):
    data = tmp_path / "data"
    services = build_services(data)
    remembered(services, "My sister Maya lives in Lisbon.")
    export = privacy.export_user(services.db, "ana")
    privacy.forget_user(services.db, services.memories.vectors, "ana")
    services.memories.reindex = die  # the rows are committed, the vectors not yet written
    with pytest.raises(Killed):
        privacy.import_user(services.db, services.memories, export)
    after = restarted(data)
    assert disagreement(after) == []


def test_kill_while_replacing_a_person_with_their_export(tmp_path):
    """`memory import --replace`: the rows are swapped in one transaction; a kill after it,
    before the vectors are rebuilt, leaves the new rows and old vectors, which start-up mends."""
    data = tmp_path / "data"
    services = build_services(data)
    remembered(services, "My sister Maya lives in Lisbon.")
    export = privacy.export_user(services.db, "ana")
    remembered(services, "My brother Tom moved to Oslo.")
    services.memories.vectors.drop = die  # the rows are swapped, the old vectors still there
    with pytest.raises(Killed):
        privacy.import_user(services.db, services.memories, export, replace=True)
    after = restarted(data)
    assert disagreement(after) == []
    [memory] = after.memories.all("ana")  # the export's one memory; Tom's went with the swap
    assert "Maya" in memory.text


def test_kill_before_the_guard_saves_the_message(settings, store):
    session = store.new_session("ana")
    store.begin_turn = die  # LangGraph has saved the input checkpoint; the turn row is not
    with pytest.raises(Killed):
        Agent(fake_context(settings, store)).run_turn("ana", session, "hi", turn_id="t-cut")
    del store.begin_turn
    Agent(fake_context(settings, store)).resume_pending("ana")  # what start-up does
    turn = store.get_turn("t-cut")
    assert turn is not None and turn.user_text == "hi" and turn.status in ("done", "failed")


def test_a_one_shot_command_runs_the_jobs_a_killed_process_left_running(settings):
    services = build_services(settings.data_dir)
    session = services.store.new_session("ana")
    turn = add_turn(services, "ana", session, "My sister Maya lives in Lisbon.")
    MemoryWorker(services).enqueue_turn("ana", session, turn)
    assert MemoryWorker(services).queue.claim() is not None  # running when the process died
    after = build_services(settings.data_dir)  # `empathos say`: no background worker
    Context(settings, after.store, memory_worker=MemoryWorker(after)).finish_memory_work()
    statuses = {r[0] for r in after.db.execute("select status from jobs")}
    assert statuses == {"done"}
