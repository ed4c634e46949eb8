"""Pilot tests of the Textual app: each flow against a fake agent on a real temp store.

The fake agent behaves like `agent.runner.Agent` from the outside: it persists the message,
reports stages and streams tokens through the callbacks, stores the reply with a trace, returns a
`TurnResult`, and turns any failure (including the app's cancellation) into `TurnFailedError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Markdown, OptionList, Switch

from agent.context import Context
from agent.runner import TurnFailedError, TurnResult
from agent.settings import Settings, config_file
from memory.store import ConversationStore, new_id
from memory.trace import AnalysisTrace, MemoryRef, TraitValue, TurnTrace
from tests.fakes import FakeEmbedder, FakeEmotion, FakeSafety
from tui.app import EmpathosApp, create_app
from tui.keys import dump_toml, keymap_from, read_config, write_config
from tui.screens.chat import ChatScreen
from tui.screens.memory_detail import MemoryDetailScreen
from tui.screens.search import SearchScreen, text_search
from tui.screens.sessions import SessionsScreen
from tui.screens.settings import SettingsScreen
from tui.screens.users import UserScreen
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_log import ReplyMessage, UserMessage
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


@pytest.fixture
def context(settings: Settings, store: ConversationStore) -> Context:
    return fake_context(settings, store, FakeEmbedder())


@pytest.fixture
def agent(store: ConversationStore) -> FakeAgent:
    return FakeAgent(store)


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


class WordEmbedder(FakeEmbedder):
    """Bag-of-words vectors: texts sharing words are close (enough for semantic search tests)."""

    def embed_one(self, text: str) -> Any:
        import numpy as np

        vector = np.zeros(384, dtype=np.float32)
        for word in text.lower().split():
            vector[sum(map(ord, word.strip(".,!?"))) % 384] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)


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


# ------------------------------------------------------------------ chat


@pytest.mark.asyncio
async def test_first_screen_welcomes_and_loads_models(context: Context, agent: FakeAgent) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert "Hello ana" in app.screen.query_one(".welcome", Markdown).source
        assert str(app.screen.query_one("#status").render()).startswith("ready")


@pytest.mark.asyncio
async def test_send_streams_a_markdown_reply_and_explains_it(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, MESSAGE)
        assert shown_replies(app) == [REPLY]
        assert [t.status for t in store.turns("ana")] == ["done"]
        assert not app.screen.query_one("#stage").display
        why = chat(app).why
        assert not why.display
        await pilot.press("f2")
        assert why.display and why.turn_id == store.turns("ana")[0].id
        assert "sadness" in str(why.query_one("#why-emotion").render())
        assert "Reflection of feelings" in str(why.query_one("#why-plan").render())
        assert "no traits yet" in str(why.query_one("#why-traits").render())


@pytest.mark.asyncio
async def test_enter_sends_and_ctrl_j_adds_a_line(context: Context, agent: FakeAgent) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("h", "i", "ctrl+j", "y", "o", "shift+enter", "!", "enter")
        await settle(pilot)
        assert agent.turns == ["hi\nyo\n!"]
        assert chat(app).input.text == ""


@pytest.mark.asyncio
async def test_stage_indicator_follows_the_turn_and_esc_cancels(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    agent.gate = threading.Event()
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        chat(app).input.load_text(MESSAGE)
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.01)
            if chat(app).stage.stage == "replying":
                break
        assert chat(app).stage.stage == "replying"
        await pilot.press("escape")
        await pilot.pause()
        assert chat(app).busy_text is None
        assert chat(app).input.text == MESSAGE
        assert app.screen.query_one(UserMessage).has_class("cancelled")
        agent.gate.set()
        await settle(pilot)
        assert shown_replies(app) == []
        assert [(t.user_text, t.status) for t in store.turns("ana")] == [(MESSAGE, "failed")]
        assert "TurnCancelledError" in (store.turns("ana")[0].error or "")


@pytest.mark.asyncio
async def test_failed_turn_shows_the_error_and_keeps_the_text(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    agent.fail = "the model server went away"
    app = build(context, agent)
    async with app.run_test() as pilot:
        await say(pilot, MESSAGE)
        assert any("went away" in n for n in notes(app, "error"))
        assert chat(app).input.text == MESSAGE
        assert app.screen.query_one(UserMessage).has_class("failed")
        assert [t.status for t in store.turns("ana")] == ["failed"]
        agent.fail = None
        await pilot.press("enter")  # retry with the kept text
        await settle(pilot)
        assert shown_replies(app) == [REPLY]


@pytest.mark.asyncio
async def test_crisis_reply_looks_different_and_shows_resources(
    context: Context, agent: FakeAgent
) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await say(pilot, "CRISIS I want to end it")
        reply = app.screen.query_one(ReplyMessage)
        assert reply.has_class("crisis") and "crisis support" in str(reply.border_title)
        assert "danger right now" in reply.query_one(".crisis-resources", Markdown).source


@pytest.mark.asyncio
async def test_a_memory_used_opens_from_the_why_panel(context: Context, agent: FakeAgent) -> None:
    agent.memories = [{"id": "m1", "text": "Ana's dad teases her about driving.", "score": 0.7}]
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, MESSAGE)
        await pilot.press("f2")
        memories = app.screen.query_one("#why-memories", OptionList)
        memories.focus()
        memories.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MemoryDetailScreen)
        assert "teases her" in str(app.screen.query_one("#memory-text").render())
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


@pytest.mark.asyncio
async def test_focusing_an_older_reply_explains_that_reply(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, "first message")
        await say(pilot, "second message")
        first, second = store.turns("ana")
        assert chat(app).why.turn_id == second.id
        app.screen.query(ReplyMessage).first().focus()
        await pilot.pause()
        assert chat(app).why.turn_id == first.id


# ------------------------------------------------------------------ sessions and search


@pytest.mark.asyncio
async def test_sessions_new_rename_and_switch(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, "about my exam")
        first = app.session_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.session_id != first and shown_replies(app) == []
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        options = app.screen.query_one("#sessions", OptionList)
        assert options.option_count == 2
        options.highlighted = [o.id for o in options._options].index(first)
        await pilot.press("r")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input", Input)
        prompt.value = "Exam worries"
        await pilot.press("enter")
        await pilot.pause()
        assert [s.title for s in store.sessions("ana") if s.id == first] == ["Exam worries"]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen) and app.session_id == first
        assert shown_replies(app) == [REPLY]
        assert "Exam worries" in app.screen.sub_title


@pytest.mark.asyncio
async def test_rename_the_current_session(context: Context, agent: FakeAgent) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await pilot.pause()
        app.screen.query_one("#prompt-input", Input).value = "  Sunday   thoughts "
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.sub_title == "ana · Sunday thoughts"


@pytest.mark.asyncio
async def test_search_full_text_and_by_meaning_opens_the_session(
    settings: Settings, store: ConversationStore, agent: FakeAgent
) -> None:
    context = fake_context(settings, store, WordEmbedder())
    old = store.new_session("ana")
    store.begin_turn("t-old", "ana", old, "My driving exam went badly")
    store.complete_turn("t-old", "That must sting.", TurnTrace(), False)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, "the weather is lovely")
        assert app.session_id != old
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one("#query", Input).value = "exam"
        await pilot.press("enter")
        await settle(pilot)
        assert [h.turn_id for h in app.screen.hits] == ["t-old"]
        app.screen.query_one("#semantic", Switch).value = True
        app.screen.query_one("#query", Input).value = "driving lessons"
        app.screen.query_one("#query", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.hits[0].turn_id == "t-old" and len(app.screen.hits) == 2
        hits = app.screen.query_one("#hits", OptionList)
        hits.focus()
        hits.highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen) and app.session_id == old
        assert chat(app).why.turn_id == "t-old"


# ------------------------------------------------------------------ users, settings, keys


@pytest.mark.asyncio
async def test_pick_or_create_a_user_at_start(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    app = build(context, agent, user=None)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, UserScreen)
        app.screen.query_one("#new-user", Input).value = "bad name!"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, UserScreen) and notes(app, "error")
        app.screen.query_one("#new-user", Input).value = "bo"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen) and app.user == "bo"
        assert store.sessions("bo")


@pytest.mark.asyncio
async def test_switch_to_an_existing_user(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    store.ensure_user("cy")
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("f12")
        await pilot.pause()
        options = app.screen.query_one("#users", OptionList)
        options.focus()
        options.highlighted = [o.id for o in options._options].index("cy")
        await pilot.press("enter")
        await settle(pilot)
        assert app.user == "cy" and "cy ·" in (app.screen.sub_title or "")


@pytest.mark.asyncio
async def test_settings_screen_writes_the_config_file(context: Context, agent: FakeAgent) -> None:
    path = config_file()
    write_config(path, {"keys": {"why": "f11"}})
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#set-max_tokens", Input).value = "5"
        await pilot.click("#save")
        await pilot.pause()
        assert any("max_tokens" in n for n in notes(app, "error"))
        assert read_config(path) == {"keys": {"why": "f11"}}
        app.screen.query_one("#set-max_tokens", Input).value = "64"
        app.screen.query_one("#set-base_url", Input).value = "http://127.0.0.1:8080/v1"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen), notes(app)
        saved = read_config(path)
        assert saved["max_tokens"] == 64 and saved["base_url"] == "http://127.0.0.1:8080/v1"
        assert saved["keys"] == {"why": "f11"} and "api_key" not in saved


@pytest.mark.asyncio
async def test_keys_are_rebound_from_the_config_file(context: Context, agent: FakeAgent) -> None:
    write_config(config_file(), {"keys": {"why": "f11", "teleport": "f5"}})
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert any("teleport" in n for n in notes(app, "warning"))
        await pilot.press("f2")
        assert not chat(app).why.display
        await pilot.press("f11")
        assert chat(app).why.display


@pytest.mark.asyncio
async def test_every_action_is_in_the_command_palette(context: Context, agent: FakeAgent) -> None:
    from tui.keys import ACTIONS

    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {a.title for a in ACTIONS} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Sessions")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, SessionsScreen)


# ------------------------------------------------------------------ copy and feedback


@pytest.mark.asyncio
async def test_copy_the_last_reply_with_a_file_fallback(
    context: Context, agent: FakeAgent, settings: Settings
) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("f8")
        assert any("no reply to copy" in n for n in notes(app, "warning"))
        await say(pilot, MESSAGE)
        await pilot.press("f8")
        copy = settings.data_dir / "users" / "ana" / "last-reply.md"
        assert app.clipboard == REPLY
        assert copy.read_text(encoding="utf-8").strip() == REPLY
        assert any(str(copy) in n for n in notes(app))


@pytest.mark.asyncio
async def test_thumbs_go_to_the_feedback_handler(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    received: list[tuple[str, int]] = []
    app = build(context, agent, on_feedback=lambda turn, value: received.append((turn, value)))
    async with app.run_test() as pilot:
        await say(pilot, MESSAGE)
        await pilot.press("ctrl+g", "ctrl+b")
        turn = store.turns("ana")[0].id
        assert received == [(turn, 1), (turn, -1)]
        assert sum("Feedback noted" in n for n in notes(app)) == 2


@pytest.mark.asyncio
async def test_feedback_feeds_the_strategy_statistics_by_default(
    context: Context, agent: FakeAgent
) -> None:
    app = build(context, agent)
    async with app.run_test() as pilot:
        await say(pilot, MESSAGE)
        await pilot.press("ctrl+g")
        assert any("Feedback noted" in n for n in notes(app)), notes(app)
    stats = context.outcomes.stats("ana")
    assert stats and all(beta.n == 1 and beta.mean > 0.5 for beta in stats.values())


# ------------------------------------------------------------------ loading failures


@pytest.mark.asyncio
async def test_an_agent_that_cannot_load_is_reported_and_text_kept(context: Context) -> None:
    def broken() -> FakeAgent:
        raise RuntimeError("model file missing: run `empathos models install`")

    app = create_app(context, broken, "ana")
    async with app.run_test() as pilot:
        await settle(pilot)
        assert any("models install" in n for n in notes(app, "error"))
        assert "failed" in str(app.screen.query_one("#status").render())
        await say(pilot, MESSAGE)
        assert chat(app).input.text == MESSAGE
        assert sum("models install" in n for n in notes(app, "error")) == 2


@pytest.mark.asyncio
async def test_a_rejected_message_is_given_back(
    context: Context, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reject(user_id: str, session_id: str, message: str, **kw: Any) -> TurnResult:
        return TurnResult(turn_id=new_id(), reply=None, rejected="The message is empty.")

    monkeypatch.setattr(agent, "run_turn", reject)
    app = build(context, agent)
    async with app.run_test() as pilot:
        await say(pilot, "   .")
        assert chat(app).input.text == "."
        assert any("empty" in n for n in notes(app, "warning"))
        assert app.screen.query_one(UserMessage).has_class("rejected")


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
