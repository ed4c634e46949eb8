"""Pilot tests of the screens beside the chat against the fake agent: sessions (new, rename,
switch), full-text and semantic search, picking and switching users, the settings screen, keys
rebound from the config file and the command palette."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, OptionList, Switch

from agent.context import Context
from agent.settings import Settings, config_file
from memory.store import ConversationStore
from memory.trace import TurnTrace
from tests.fakes import FakeEmbedder
from tests.test_tui import (
    REPLY,
    FakeAgent,
    build,
    chat,
    fake_context,
    notes,
    say,
    settle,
    shown_replies,
)
from tui.keys import read_config, write_config
from tui.screens.chat import ChatScreen
from tui.screens.search import SearchScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.settings import SettingsScreen
from tui.screens.users import UserScreen


class WordEmbedder(FakeEmbedder):
    """Bag-of-words vectors: texts sharing words are close (enough for semantic search tests)."""

    def embed_one(self, text: str) -> Any:
        import numpy as np

        vector = np.zeros(384, dtype=np.float32)
        for word in text.lower().split():
            vector[sum(map(ord, word.strip(".,!?"))) % 384] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)


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
