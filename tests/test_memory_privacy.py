"""Forget leaves no bytes; export is one JSON document and import restores it exactly."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from memory.privacy import (
    ExportFormatError,
    UnknownUserError,
    UserExistsError,
    export_user,
    forget_user,
    import_user,
    user_files,
)
from memory.recall import Recaller
from memory.trait_rating import RATING_SOURCE, RECALL_SOURCE
from memory.worker import MemoryServices, MemoryWorker
from tests.test_memory_fakes import add_turn, build_services, fact

USER = "quokka-fan-77"
SECRETS = ["Zanzibar-marmalade-7731", "periwinkle-obelisk-4409", "REPLY-kumquat-5150"]


class Echo(TypedDict):
    message: str


def write_checkpoint(path: Path, thread_id: str, message: str) -> None:
    """Run a one-node graph so LangGraph's SqliteSaver stores the message under the thread."""
    path.touch(mode=0o600, exist_ok=True)
    graph = StateGraph(Echo)
    graph.add_node("echo", lambda state: {"message": state["message"] + "!"})
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    saver = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
    saver.setup()
    graph.compile(checkpointer=saver).invoke(
        {"message": message}, {"configurable": {"thread_id": thread_id}}
    )
    saver.conn.close()


def populate(mem: MemoryServices, user: str, secrets: list[str]) -> list[str]:
    """Give a user turns, memories (one superseded), traits, outcomes and feedback."""
    worker, session = MemoryWorker(mem), mem.store.new_session(user)
    turns = [
        add_turn(
            mem,
            user,
            session,
            f"I keep a jar of {secrets[0]} on my desk.",
            need="vent",
            reply=f"That sounds lovely {secrets[2]}",
        ),
        add_turn(
            mem,
            user,
            session,
            f"My friend {secrets[1]} moved away last week.",
            valence=0.2,
            need="get_advice",
        ),
    ]
    for turn in turns:
        worker.enqueue_turn(user, session, turn)
    assert worker.drain().failed == 0
    mem.memories.remember(user, [fact(f"I love the colour {secrets[1]}")], "x1")
    mem.memories.remember(user, [fact(f"I don't love the colour {secrets[1]}")], "x2")
    mem.traits.set(user, "humour", 0.8)
    mem.outcomes.feedback(mem.store, user, up=True, note=f"note {secrets[0]}")
    return turns


def files_containing(root: Path, needles: list[bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n.decode() for n in needles if n in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def test_forget_leaves_no_byte_of_the_user_under_the_data_dir(data_dir):
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    populate(mem, "bo", ["bo-keeps-this-1", "bo-keeps-this-2", "bo-keeps-this-3"])
    checkpoints = data_dir / "checkpoints.db"
    write_checkpoint(checkpoints, f"{USER}:turn1", f"checkpointed {SECRETS[0]}")
    write_checkpoint(checkpoints, "bo:turn1", "bo-checkpoint-stays")
    write_checkpoint(checkpoints, f"{USER}x:turn1", "a-user-with-a-longer-name")
    copied = user_files(data_dir, USER)  # the app's "copy last reply" file
    copied.mkdir(parents=True)
    (copied / "last-reply.md").write_text(f"reply quoting {SECRETS[1]}")
    needles = [s.encode() for s in [*SECRETS, USER]]
    assert files_containing(data_dir, needles)  # the test can see the bytes before

    report = forget_user(
        mem.db, mem.memories.vectors, USER, checkpoint_path=checkpoints, data_dir=data_dir
    )

    assert report.rows["turns"] == 2 and report.rows["users"] == 1 and report.checkpoints > 0
    assert files_containing(data_dir, needles) == {
        "checkpoints.db": [USER]  # only inside the thread id of the user named USER + "x"
    }
    assert files_containing(data_dir, [*needles[:-1], f"{USER}:".encode()]) == {}
    kept = files_containing(
        data_dir, [b"bo-keeps-this-1", b"bo-checkpoint-stays", b"a-user-with-a-longer-name"]
    )
    assert sorted(kept) == ["checkpoints.db", "empathos.db"]
    assert len(mem.memories.all("bo")) >= 2 and mem.memories.vectors.count("bo") >= 2
    assert mem.memories.all(USER, include_history=True) == []
    assert not copied.exists()


STALE_BYTES = """
import ctypes, sys
from pathlib import Path
if sys.argv[1] == "store":
    from memory.vectors import VectorStore
    VectorStore(Path(sys.argv[2]))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 100_000  # below glibc's mmap threshold: served from the heap, like a small index buffer
first = libc.malloc(size)
ctypes.memset(first, ord("Q"), size)
libc.free(first)
again = libc.malloc(size)
print(ctypes.string_at(again, size).count(b"Q"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's M_PERTURB")
def test_opening_the_local_store_stops_freed_bytes_reaching_new_buffers(tmp_path):
    """Chroma persists its whole level-0 buffer, unused elements too (memory/heap.py)."""

    def stale(mode: str) -> int:
        run = [sys.executable, "-c", STALE_BYTES, mode, str(tmp_path / mode)]
        return int(subprocess.run(run, capture_output=True, text=True, check=True).stdout)

    assert stale("plain") > 90_000  # without it a new buffer hands back the freed bytes
    assert stale("store") == 0


def test_files_and_dirs_stay_private(data_dir):
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    forget_user(mem.db, mem.memories.vectors, USER, data_dir=data_dir)
    for folder, _, files in os.walk(data_dir):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder) / name).st_mode) == 0o600, name


def test_forgetting_an_unknown_user_says_so(data_dir):
    mem = build_services(data_dir)
    with pytest.raises(UnknownUserError, match="Nothing is stored"):
        forget_user(mem.db, mem.memories.vectors, "ghost")


def comparable(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if key != "exported_at"}


def test_export_import_round_trip_is_exact(data_dir):
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    exported = export_user(mem.db, USER)
    text = json.dumps(exported)  # one JSON document
    assert {t: len(rows) > 0 for t, rows in exported["tables"].items()} == {
        t: True for t in exported["tables"]
    }
    forget_user(mem.db, mem.memories.vectors, USER)

    counts = import_user(mem.db, mem.memories, json.loads(text))

    assert counts["memories"] == len(exported["tables"]["memories"])
    assert comparable(export_user(mem.db, USER)) == comparable(exported)
    current = [m.id for m in mem.memories.all(USER)]
    assert sorted(mem.memories.vectors.ids(USER)) == sorted(current)
    refs = Recaller(mem.store, memories=mem.memories).rank(USER, f"jar of {SECRETS[0]}")
    assert refs and SECRETS[0] in refs[0].text


def test_an_old_export_brings_back_no_per_session_recall_readings(data_dir):
    """Exports made before migration m008 (m009) hold a recall (rating) reading per session;
    imported, only the one current reading ("recall:latest", "rating:latest") stays."""
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    exported = export_user(mem.db, USER)
    old = {"user_id": USER, "name": "openness", "signal": 0.9, "weight": 2.0, "why": "old",
           "session_id": "s1", "created_at": "2026-03-01T10:00:00+00:00", "kind": "recall",
           "basis": None}  # fmt: skip
    current = [r for r in exported["tables"]["trait_evidence"] if r["name"] == "openness"]
    exported["tables"]["trait_evidence"].append({**old, "source_id": "recall:s1"})
    rating = {**old, "kind": "rating"}
    exported["tables"]["trait_evidence"] += [{**rating, "source_id": "rating:s1"},
                                             {**rating, "source_id": RATING_SOURCE}]  # fmt: skip
    current.append({**rating, "source_id": RATING_SOURCE})
    if not any(r["source_id"] == RECALL_SOURCE for r in current):
        exported["tables"]["trait_evidence"].append({**old, "source_id": RECALL_SOURCE})
        current.append({**old, "source_id": RECALL_SOURCE})
    forget_user(mem.db, mem.memories.vectors, USER)
    import_user(mem.db, mem.memories, json.loads(json.dumps(exported)))
    sources = sorted(r["source_id"] for r in mem.traits.evidence(USER, "openness"))
    assert sources == sorted(r["source_id"] for r in current)  # all but the "...:s1" rows
    assert RECALL_SOURCE in sources and RATING_SOURCE in sources


def test_import_with_replace_swaps_the_data_and_an_export_that_does_not_fit_changes_nothing(
    data_dir,
):
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    exported = export_user(mem.db, USER)
    later = "tangerine-gazebo-2290"
    mem.memories.remember(USER, [fact(f"I painted the gate {later}")], "x3")
    before = export_user(mem.db, USER)
    broken = json.loads(json.dumps(exported))
    broken["tables"]["memories"].append(broken["tables"]["memories"][0])  # one id twice

    with pytest.raises(ExportFormatError, match="current data is unchanged"):
        import_user(mem.db, mem.memories, broken, replace=True)
    assert comparable(export_user(mem.db, USER)) == comparable(before)
    current = sorted(m.id for m in mem.memories.all(USER))
    assert sorted(mem.memories.vectors.ids(USER)) == current and len(current) > 0

    import_user(mem.db, mem.memories, exported, replace=True)

    assert comparable(export_user(mem.db, USER)) == comparable(exported)
    current = sorted(m.id for m in mem.memories.all(USER))
    assert sorted(mem.memories.vectors.ids(USER)) == current
    assert files_containing(data_dir, [later.encode()]) == {}


def test_import_refuses_to_mix_histories_and_bad_documents(data_dir):
    mem = build_services(data_dir)
    populate(mem, USER, SECRETS)
    exported = export_user(mem.db, USER)
    with pytest.raises(UserExistsError, match="--replace"):
        import_user(mem.db, mem.memories, exported)
    with pytest.raises(ExportFormatError, match="Not an empathos export"):
        import_user(mem.db, mem.memories, {"hello": 1})
    with pytest.raises(ExportFormatError, match="version"):
        import_user(mem.db, mem.memories, {**exported, "version": 99})
    smuggled = json.loads(json.dumps(exported))
    smuggled["user_id"] = "mallory"
    smuggled["tables"]["users"][0]["id"] = "mallory"
    with pytest.raises(ExportFormatError, match="another user"):
        import_user(mem.db, mem.memories, smuggled)
