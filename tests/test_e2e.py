"""End to end on real parts: the `empathos` command, the real graph, SQLite, the emotion and
safety plug-ins on the real embedder, and the real embedded model (SmolLM2-135M, small max_tokens;
`EMPATHOS_TEST_MODEL=qwen2.5-coder-0.5b-instruct` runs them on another installed model).

`make test` installs the smoke-test model first; without it these tests are skipped with the
command that installs it.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from agent.models import ModelNotInstalledError, resolve_model_path
from agent.settings import Settings
from tui.cli import cli

MODEL = os.environ.get("EMPATHOS_TEST_MODEL", "smollm2-135m-instruct")  # any installed model
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_ready() -> None:
    try:
        resolve_model_path(MODEL, Settings().models_dir)
    except ModelNotInstalledError as exc:
        pytest.skip(f"{exc}")


def say(tmp_path, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "say",
            *args,
            "--user",
            "demo",
            "--model",
            MODEL,
            "--max-tokens",
            "48",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        catch_exceptions=False,
    )
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout


def test_say_json_gives_a_plan_and_a_reply(tmp_path, model_ready):
    code, out = say(tmp_path, "I failed my driving test again and my dad laughed at me", "--json")
    assert code == 0, out
    data = json.loads(out)
    for key in ("reply", "emotion", "cause", "need", "lens", "strategy", "crisis", "trace"):
        assert key in data
    assert data["reply"].strip()
    assert data["crisis"] is False
    assert data["emotion"]["label"] and 0 < data["emotion"]["probability"] <= 1
    assert (
        data["cause"] and data["cause"] in "I failed my driving test again and my dad laughed at me"
    )
    assert data["lens"] in {"CBT", "DBT", "Person-centred", "Reality"}
    assert data["trace"]["plan"]["why"]
    assert data["trace"]["model"] == MODEL


def test_crisis_message_gets_resources_not_an_ordinary_reply(tmp_path, model_ready):
    code, out = say(
        tmp_path, "I have the pills ready and I'm going to kill myself tonight", "--json"
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["crisis"] is True
    assert data["strategy"] is None
    assert data["trace"]["llm_calls"] == []
    assert "findahelpline" in data["reply"].lower() or "emergency" in data["reply"].lower()


def test_plain_chat_reads_a_pipe_and_remembers_the_session(tmp_path, model_ready):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "chat",
            "--plain",
            "--user",
            "demo",
            "--model",
            MODEL,
            "--max-tokens",
            "32",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        input="My week was exhausting.\n\x00bad\nThanks for listening.\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("empathos> ") == 3
    assert "control characters" in result.output
    from memory.database import open_database
    from memory.store import ConversationStore

    store = ConversationStore(open_database(tmp_path / "data" / "empathos.db"))
    turns = store.turns("demo")
    assert [t.user_text for t in turns] == ["My week was exhausting.", "Thanks for listening."]
    assert all(t.status == "done" and t.reply for t in turns)


def test_say_rejects_empty_input_with_a_clear_error(tmp_path, model_ready):
    code, out = say(tmp_path, "   ")
    assert code != 0
    assert "empty" in out
