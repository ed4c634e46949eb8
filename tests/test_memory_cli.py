"""`empathos memory|traits|feedback`: the command groups over a real data dir."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest
from click.testing import CliRunner

from memory import embeddings
from memory.trait_rating import Passage, Rating, rating_signals
from memory.worker import MemoryWorker
from tests.test_memory_fakes import WordEmbedder, add_turn, build_services, fact
from tests.test_memory_privacy import write_checkpoint
from tui.commands.doctor import doctor
from tui.commands.feedback import feedback
from tui.commands.memory import memory
from tui.commands.traits import traits


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "default_embedder", lambda: WordEmbedder())
    path = tmp_path / "data"
    mem = build_services(path)
    worker, session = MemoryWorker(mem), mem.store.new_session("ana")
    for text in ["My sister Maya moved to Berlin in March.", "I started cello lessons."]:
        worker.enqueue_turn(
            "ana",
            session,
            add_turn(mem, "ana", session, text, need="get_advice", strategy="Question"),
        )
    assert worker.drain().failed == 0
    return path


def run(group, *args: str, data_dir=None, ok: bool = True, input: str | None = None) -> str:
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    result = CliRunner().invoke(group, [*args, *extra], input=input)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def memory_id(data_dir, text_part: str) -> str:
    listed = json.loads(run(memory, "list", "--user", "ana", "--json", data_dir=data_dir))
    return next(m["id"] for m in listed if text_part in m["text"])


def test_list_search_show_edit_and_forget_one(data_dir):
    assert "Maya moved to Berlin" in run(memory, "list", "--user", "ana", data_dir=data_dir)
    found = run(memory, "search", "sister in Berlin", "--user", "ana", "-k", "1", data_dir=data_dir)
    assert "Maya" in found and "sim" in found
    maya = memory_id(data_dir, "Maya")
    shown = json.loads(run(memory, "show", maya, "--user", "ana", data_dir=data_dir))
    assert shown["source_turns"] and shown["replaced"] == []
    run(
        memory,
        "edit",
        maya,
        "My sister Maya lives in Hamburg now",
        "--user",
        "ana",
        data_dir=data_dir,
    )
    assert "Hamburg" in run(memory, "list", "--user", "ana", data_dir=data_dir)
    assert "Forgot 1" in run(memory, "forget", maya, "--user", "ana", data_dir=data_dir)
    assert "Maya" not in run(memory, "list", "--user", "ana", data_dir=data_dir)


def test_errors_are_messages_not_tracebacks(data_dir):
    out = run(memory, "show", "nope", "--user", "ana", data_dir=data_dir, ok=False)
    assert "No memory 'nope'" in out and "Traceback" not in out
    assert "Give either" in run(memory, "forget", "--user", "ana", data_dir=data_dir, ok=False)


def test_bad_files_and_paths_are_messages_not_tracebacks(data_dir, tmp_path, monkeypatch):
    maya = memory_id(data_dir, "Maya")
    out = run(memory, "edit", maya, "x", "--user", "ana", data_dir=data_dir, ok=False)
    assert "Not accepted" in out and "Traceback" not in out
    out = run(memory, "export", "--user", "ana", "-o", "/nonexistent/x.json", data_dir=data_dir,
              ok=False)  # fmt: skip
    assert "No such file or directory" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "empathos-export", "version": 1, "user_id": "zed", '
                   '"tables": {"users": null}}')  # fmt: skip
    assert "must be a list" in run(memory, "import", str(bad), "--user", "zed",
                                   data_dir=data_dir, ok=False)  # fmt: skip
    config = tmp_path / "broken.toml"
    config.write_text("model = \n")
    monkeypatch.setenv("EMPATHOS_CONFIG", str(config))
    out = run(memory, "list", "--user", "ana", data_dir=data_dir, ok=False)
    assert "is not valid TOML" in out and "Traceback" not in out


def test_export_forget_all_and_import(data_dir, tmp_path):
    target = tmp_path / "ana.json"
    run(memory, "export", "--user", "ana", "-o", str(target), data_dir=data_dir)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(target.read_text())["user_id"] == "ana"
    run(memory, "forget", "--user", "ana", "--all", data_dir=data_dir, input="n\n", ok=False)
    assert "Maya" in run(memory, "list", "--user", "ana", data_dir=data_dir)
    assert "records removed" in run(
        memory, "forget", "--user", "ana", "--all", "--yes", data_dir=data_dir
    )
    assert "Nothing remembered" in run(memory, "list", "--user", "ana", data_dir=data_dir)
    out = run(memory, "import", str(target), "--user", "bo", data_dir=data_dir, ok=False)
    assert "not 'bo'" in out
    assert "Imported ana" in run(memory, "import", str(target), "--user", "ana", data_dir=data_dir)
    assert "Maya" in run(memory, "search", "Maya", "--user", "ana", data_dir=data_dir)
    out = run(memory, "import", str(target), "--user", "ana", data_dir=data_dir, ok=False)
    assert "--replace" in out
    assert "Imported ana" in run(
        memory, "import", str(target), "--user", "ana", "--replace", data_dir=data_dir
    )


def test_import_replace_swaps_in_the_export_and_drops_the_old_conversation(data_dir, tmp_path):
    target = tmp_path / "ana.json"
    run(memory, "export", "--user", "ana", "-o", str(target), data_dir=data_dir)
    build_services(data_dir).memories.remember("ana", [fact("My brother Tom moved to Oslo.")], "x")
    checkpoints = data_dir / "checkpoints.db"
    write_checkpoint(checkpoints, "ana:t1", "a message from before the import")
    write_checkpoint(checkpoints, "bo:t1", "bo's conversation stays")

    out = run(memory, "import", str(target), "--user", "ana", "--replace", data_dir=data_dir)

    assert "Imported ana" in out
    listed = run(memory, "list", "--user", "ana", data_dir=data_dir)
    assert "Maya" in listed and "Oslo" not in listed
    with sqlite3.connect(checkpoints) as connection:
        threads = {row[0] for row in connection.execute("select thread_id from checkpoints")}
    assert threads == {"bo:t1"}


def test_traits_show_and_set(data_dir):
    shown = run(traits, "show", "--user", "ana", "--evidence", data_dir=data_dir)
    assert "wants_advice" in shown and "needed 'get_advice'" in shown
    run(traits, "set", "wants_advice=0.2", "humour=0.9", "--user", "ana", data_dir=data_dir)
    record = json.loads(run(traits, "show", "--user", "ana", "--json", data_dir=data_dir))
    assert record["wants_advice"]["value"] == 0.2 and record["wants_advice"]["source"] == "user"
    run(traits, "set", "wants_advice=auto", "--user", "ana", data_dir=data_dir)
    record = json.loads(run(traits, "show", "--user", "ana", "--json", data_dir=data_dir))
    assert record["wants_advice"]["source"] == "inferred"
    assert "Unknown trait" in run(
        traits, "set", "charm=0.5", "--user", "ana", data_dir=data_dir, ok=False
    )
    assert "NAME=VALUE" in run(
        traits, "set", "humour", "--user", "ana", data_dir=data_dir, ok=False
    )


def test_feedback_up_and_down(data_dir):
    assert "helped" in run(feedback, "up", "--user", "ana", data_dir=data_dir)
    out = run(feedback, "down", "--user", "ana", "--turn", "nope", data_dir=data_dir, ok=False)
    assert "omit --turn" in out
    assert "did not help" in run(
        feedback, "down", "--user", "ana", "--note", "too pushy", data_dir=data_dir
    )


def test_forget_all_names_what_it_could_not_remove(data_dir, monkeypatch):
    from memory.privacy import user_files

    stuck = user_files(data_dir, "ana") / "last-reply.txt"
    stuck.parent.mkdir(parents=True)
    stuck.write_text("a copied reply")
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if str(path).endswith("last-reply.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    out = run(memory, "forget", "--user", "ana", "--all", "--yes", data_dir=data_dir, ok=False)
    assert "records removed" in out
    assert "could not be removed" in out and "last-reply.txt" in out and "Permission denied" in out
    assert "Nothing remembered" in run(memory, "list", "--user", "ana", data_dir=data_dir)


def test_doctor_finds_a_healthy_data_dir_healthy(data_dir):
    out = run(doctor, data_dir=data_dir)
    assert "ok   database integrity: ok" in out
    assert "ok   vectors of ana: 2 memories, 2 vectors" in out
    assert "FIX" not in out


def test_doctor_finds_vectors_out_of_step_and_repairs_them(data_dir):
    from agent.services import vectors_for
    from agent.settings import load_settings

    vectors = vectors_for(load_settings(data_dir=data_dir))
    vectors.delete("ana", [memory_id(data_dir, "cello")])
    out = run(doctor, data_dir=data_dir, ok=False)
    assert "FIX  vectors of ana: 2 memories, 1 vectors (1 missing, 0 stale)" in out
    assert "--repair" in out
    repaired = run(doctor, "--repair", data_dir=data_dir)
    assert "ok   vectors of ana: 2 memories, 2 vectors" in repaired
    assert "cello" in run(memory, "search", "cello lessons", "--user", "ana", data_dir=data_dir)


def test_doctor_reports_failed_jobs_and_turns_with_what_to_do(data_dir):
    from memory.database import open_database

    db = open_database(data_dir / "empathos.db")
    db.execute("update jobs set status = 'failed', last_error = 'model crashed' where rowid = 1")
    db.execute("update turns set status = 'failed', error = 'TimeoutError' where rowid = 1")
    db.conn.commit()
    records = [
        json.loads(line) for line in run(doctor, "--json", data_dir=data_dir, ok=False).splitlines()
    ]
    by_check = {r["check"]: r for r in records}
    assert (
        not by_check["memory jobs"]["ok"] and "model crashed" in by_check["memory jobs"]["detail"]
    )
    assert not by_check["turns"]["ok"] and by_check["turns"]["detail"].startswith("1 failed")
    assert all(r["fix"] for r in records if not r["ok"])


def test_forgetting_a_memory_at_once_recomputes_the_traits_inferred_from_it(data_dir):
    mem = build_services(data_dir)
    maya = memory_id(data_dir, "Maya")
    mem.db.execute("delete from trait_evidence where user_id = 'ana' and name = 'humour'")
    rating = rating_signals([Rating("humour", 5, 1)], [Passage(maya, "Maya", memory=True)])
    mem.traits.observe_ratings("ana", "s1", rating, "rating:s1")
    mem.traits.refresh("ana", "s1")
    assert mem.traits.values("ana")["humour"].value > 0.5
    run(memory, "forget", maya, "--user", "ana", data_dir=data_dir)
    assert mem.traits.by_trait("ana").get("humour") is None  # its only evidence was the rating
    assert "humour" not in mem.traits.values("ana")  # and the value inferred from it is gone
    assert "wants_advice" in mem.traits.values("ana")  # traits with evidence left stay
