"""`empathos memory ingest` on the command line: a file is ingested once; a bad file or a bad user
name is reported, with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from memory.database import open_database
from memory.store import ConversationStore
from tests.test_ingest import (
    CONVERSATION,
    HINT,
    ingest_context,
    jsonl,
    write_history,
)
from tui.commands import memory as memory_commands


@pytest.fixture
def cli_context(monkeypatch):
    """Make `empathos memory ingest` build its context over fakes (no model, no download)."""
    from tui.options import settings_from

    def build(**options):
        settings = settings_from(**options)
        return ingest_context(settings, ConversationStore(open_database(settings.db_path)))

    monkeypatch.setattr(memory_commands, "ingest_context", build)


def run_ingest(path: Path, data_dir: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        memory_commands.memory,
        ["ingest", str(path), "--user", "ana", "--data-dir", str(data_dir), *extra],
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_command_ingests_a_file_once(tmp_path, cli_context):
    path, data = write_history(tmp_path, jsonl(CONVERSATION)), tmp_path / "data"
    code, out, err = run_ingest(path, data)
    assert code == 0, out + err
    assert out.strip() == (
        "ingested 8 messages as 3 turns in 2 sessions (0 already there); 4 memories"
    )
    assert "1 assistant message(s)" in err and "Traceback" not in err
    code, out, _ = run_ingest(path, data)
    assert code == 0 and "(3 already there); 4 memories" in out
    store = ConversationStore(open_database(data / "empathos.db"))
    assert len(store.turns("ana")) == 3


def test_the_command_reports_a_bad_file_and_writes_nothing(tmp_path, cli_context):
    text = jsonl(CONVERSATION[:3]) + '{"role": "user", "text": "hi", "time": "2025-03-02T10:00"}\n'
    path, data = write_history(tmp_path, text), tmp_path / "data"
    code, out, err = run_ingest(path, data)
    assert code == 1 and "Traceback" not in err
    assert "line 4, field 'time'" in err and HINT in err
    assert not (data / "empathos.db").exists()
    code, _, err = run_ingest(tmp_path / "missing.jsonl", data)
    assert code == 1 and "no such file" in err


def test_the_command_refuses_a_bad_user_name(tmp_path, cli_context):
    path = write_history(tmp_path, jsonl(CONVERSATION))
    result = CliRunner().invoke(
        memory_commands.memory,
        ["ingest", str(path), "--user", "bad name", "--data-dir", str(tmp_path / "data")],
    )
    assert result.exit_code == 1 and "Invalid user name" in result.stderr
