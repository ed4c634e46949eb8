"""Pilot tests of the chat screen against the fake agent: sending, streaming, cancelling and
failing a turn, the crisis reply and the why panel; copying a reply and giving feedback; an agent
that cannot load and a rejected message."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from textual.widgets import Markdown, OptionList

from agent.context import Context
from agent.runner import TurnResult
from agent.settings import Settings
from memory.store import ConversationStore, new_id
from tests.test_tui import (
    MESSAGE,
    REPLY,
    FakeAgent,
    build,
    chat,
    notes,
    say,
    settle,
    shown_replies,
)
from tui.app import create_app
from tui.screens.chat import ChatScreen
from tui.screens.memory_detail import MemoryDetailScreen
from tui.widgets.chat_log import ReplyMessage, UserMessage

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
