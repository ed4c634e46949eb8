"""Pilot tests of the Textual app: each flow against a fake agent on a real temp store.

The fake agent behaves like `agent.runner.Agent` from the outside: it persists the message,
reports stages and streams tokens through the callbacks, stores the reply with a trace, returns a
`TurnResult`, and turns any failure (including the app's cancellation) into `TurnFailedError`.

Here: the fake agent and the helpers the other TUI tests import, the pure helpers (config
file, keymap, cause span, text search) and the real app on the embedded model. The flows of the
chat screen (sending, cancelling, failing, copying, feedback, an agent that cannot load) are in
`test_tui_chat.py`; sessions, search, users, settings and keys in `test_tui_screens.py`; the
memory screen in `test_tui_memory.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.context import Context
from agent.runner import TurnFailedError, TurnResult
from agent.settings import Settings
from memory.store import ConversationStore, new_id
from memory.trace import AnalysisTrace, MemoryRef, TraitValue, TurnTrace
from tests.fakes import FakeEmbedder, FakeEmotion, FakeSafety
from tui.app import EmpathosApp, create_app
from tui.keys import dump_toml, keymap_from, read_config, write_config
from tui.screens.chat import ChatScreen
from tui.screens.search import text_search
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_log import ReplyMessage
from tui.widgets.why_panel import cause_text, find_span

REPLY = "That sounds **really** painful. You tried hard, and it still hurts."
CRISIS_REPLY = "I am really glad you told me. You deserve support right now."
MESSAGE = "I failed my driving test again and my dad laughed at me."
NODES = ("recall", "recognize_emotion", "analyze_cause", "select_strategy")
Handler = Callable[[str], None]


def make_trace(turn_id: str, memories: list[dict[str, Any]], crisis: bool) -> TurnTrace:
    """A trace as `agent.trace.build_trace` writes it."""
    return TurnTrace.model_validate({
        "turn_id": turn_id,
        "emotion": {
            "label": "sadness",
            "probability": 0.62,
            "valence": -0.6,
            "intensity": 0.62,
            "top": [
                {"label": "sadness", "probability": 0.62},
                {"label": "embarrassment", "probability": 0.21},
            ],
        },
        "safety": {"crisis": crisis, "band": "crisis" if crisis else "clear", "risk": 0.1},
        "analysis": None
        if crisis
        else {
            "cause_span": "failed my driving test again",
            "situation": "A second failed test.",
            "need": "be_validated",
            "thoughts": "Maybe I am not good enough.",
        },
        "plan": None
        if crisis
        else {
            "lens": "person_centred",
            "strategy": "Reflection of feelings",
            "stage": "comforting",
            "why": ["they want to be heard first"],
            "lens_definition": "Acceptance and self-awareness.",
            "strategy_definition": "Say back the feelings you hear.",
        },
        "memories_used": memories,
        "traits": {},
        "crisis": crisis,
        "degraded": [],
        "model": "fake",
        "llm_calls": [],
        "timings": {"guard": 0.01},
    })  # fmt: skip


class FakeAgent:
    """Runs turns like the real runner, from scripted parts."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.reply = REPLY
        self.fail: str | None = None
        self.gate: threading.Event | None = None
        self.memories: list[dict[str, Any]] = []
        self.turns: list[str] = []

    def run_turn(
        self,
        user_id: str,
        session_id: str,
        message: str,
        *,
        on_token: Handler | None = None,
        on_stage: Handler | None = None,
        turn_id: str | None = None,
    ) -> TurnResult:
        turn_id = turn_id or new_id()
        self.store.begin_turn(turn_id, user_id, session_id, message)
        self.turns.append(message)
        try:
            return self._run(
                turn_id, message, on_token or (lambda t: None), on_stage or (lambda n: None)
            )
        except Exception as exc:
            self.store.fail_turn(turn_id, f"{type(exc).__name__}: {exc}")
            raise TurnFailedError(turn_id, f"{type(exc).__name__}: {exc}") from exc

    def _run(self, turn_id: str, message: str, on_token: Handler, on_stage: Handler) -> TurnResult:
        on_stage("guard")
        if self.fail:
            raise RuntimeError(self.fail)
        crisis = "CRISIS" in message
        on_stage("safety_screen")
        reply = CRISIS_REPLY if crisis else self.reply
        if not crisis:
            for node in NODES:
                on_stage(node)
            if self.gate is not None:
                self.gate.wait(10)
            for word in reply.split(" "):
                on_token(word + " ")
        on_stage("crisis_reply" if crisis else "generate_reply")
        trace = make_trace(turn_id, self.memories, crisis)
        self.store.complete_turn(turn_id, reply, trace, crisis)
        on_stage("remember")
        return TurnResult(turn_id=turn_id, reply=reply, crisis=crisis, state={"reply": reply})

    def resume_pending(self, user_id: str, on_token: Handler | None = None) -> list[TurnResult]:
        return []


def fake_context(settings: Settings, store: ConversationStore, embedder: FakeEmbedder) -> Context:
    """A real context on the temp store with fake plug-ins (no model is loaded)."""
    fakes: dict[str, Any] = {"embedder": embedder, "emotion": FakeEmotion(), "safety": FakeSafety()}
    return Context(settings, store, **fakes)


def build(context: Context, agent: FakeAgent, user: str | None = "ana", **kw: Any) -> EmpathosApp:
    return create_app(context, agent, user, None, **kw)


async def settle(pilot: Any) -> None:
    """Let workers finish and queued messages be handled."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def say(pilot: Any, text: str) -> None:
    """Type a message and press Enter."""
    chat_input = pilot.app.screen.query_one(ChatInput)
    chat_input.load_text(text)
    await pilot.press("enter")
    await settle(pilot)


def chat(app: EmpathosApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


def notes(app: EmpathosApp, severity: str | None = None) -> list[str]:
    """The notification texts shown so far (optionally of one severity)."""
    return [n.message for n in app._notifications if severity in (None, n.severity)]


def shown_replies(app: EmpathosApp) -> list[str]:
    return [r.text for r in app.screen.query(ReplyMessage)]


# ------------------------------------------------------------------ pure helpers


def test_config_round_trip_keeps_tables(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    data = {"model": 'a "quoted" name', "max_tokens": 64, "keys": {"why": "f6", "search": "ctrl+f"}}
    write_config(path, data)
    assert read_config(path) == data
    assert path.stat().st_mode & 0o777 == 0o600
    assert dump_toml({"x": True}) == "x = true\n"


def test_saving_settings_keeps_the_users_comments(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('# my model\nmodel = "a"  # fast\nlocale = "uk"\n\n[keys]\nwhy = "f6"\n')
    write_config(path, {"model": "b", "keys": {"why": "f7"}})
    text = path.read_text()
    assert "# my model" in text and "locale" not in text
    assert read_config(path) == {"model": "b", "keys": {"why": "f7"}}


def test_keymap_reports_unknown_actions() -> None:
    keymap, problems = keymap_from({"keys": {"why": "f6", "fly": "f7", "search": ""}})
    assert keymap == {"why": "f6"}
    assert len(problems) == 2 and "fly" in problems[0]


def test_cause_span_is_highlighted_in_the_users_words() -> None:
    assert find_span(MESSAGE, "Failed my driving test again.") == (2, 30)
    analysis = AnalysisTrace(cause_span="failed my driving test again", need="vent")
    text = cause_text(MESSAGE, analysis)
    highlighted = [text.plain[s.start : s.end] for s in text.spans if "yellow" in str(s.style)]
    assert highlighted == ["failed my driving test again"]
    assert "need: vent" in text.plain
    assert "cause (not verbatim)" in cause_text(MESSAGE, AnalysisTrace(cause_span="an exam")).plain


def test_text_search_finds_words_of_this_user_only(store: ConversationStore) -> None:
    session = store.new_session("ana")
    for i, text in enumerate(["so tired of exams", "a lovely walk", "tiring day, long exam"]):
        store.begin_turn(f"t{i}", "ana", session, text)
    hits = text_search(store, "ana", "tiring exams")
    assert sorted(h.turn_id for h in hits) == ["t0", "t2"]
    assert all("exam" in h.snippet for h in hits)
    assert text_search(store, "ana", '"100%" NEAR(') == []
    assert text_search(store, "bob", "tired") == []


# ------------------------------------------------------------------ the real app, headless


async def wait_for(pilot: Any, done: Any, seconds: float) -> None:
    """Pause until `done()` is true or `seconds` of pauses have passed (a bound, not a check)."""
    for _ in range(int(seconds / 0.25)):
        if done():
            return
        await pilot.pause(0.25)


@pytest.mark.model
@pytest.mark.asyncio
async def test_real_app_replies_with_the_embedded_model(tmp_path: Path) -> None:
    from agent.models import ModelNotInstalledError, resolve_model_path
    from tui.launch import agent_factory

    settings = Settings(data_dir=tmp_path / "real", model="smollm2-135m-instruct", max_tokens=32)
    try:
        resolve_model_path(settings.model, settings.models_dir)
    except ModelNotInstalledError as exc:
        pytest.skip(f"needs `empathos models install smollm2-135m-instruct` ({exc})")
    context = Context(settings)
    app = create_app(context, agent_factory(context), "ana")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.models_status.startswith("loading"), 600)
        assert app.models_status.startswith("ready"), notes(app, "error")
        await say(pilot, "I finally finished my first painting today and I feel proud.")
        await wait_for(pilot, lambda: chat(app).busy_text is None, 600)
        await settle(pilot)
        assert not notes(app, "error")
        replies = shown_replies(app)
        assert len(replies) == 1 and replies[0].strip()
        assert [t.status for t in context.store.turns("ana")] == ["done"]


def test_traits_and_memories_are_described() -> None:
    from tui.screens.memory_detail import describe_memory
    from tui.widgets.why_panel import traits_text

    traits = {"openness": TraitValue(value=0.8, confidence=0.5, source="user")}
    text = traits_text(traits).plain
    assert "openness" in text and "50%" in text and "set by you" in text
    memory = MemoryRef(id="m1", text="x", score=0.5, kind="event", relevance=0.9)
    assert describe_memory(memory) == "event · id m1 · score 0.50 (relevance 0.90)"
    assert describe_memory(MemoryRef(id="m2", text="y")) == "id m2 · score 0.00"
