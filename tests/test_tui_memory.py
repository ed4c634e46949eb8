"""Pilot tests of the memory screen: a real context (SQLite, Chroma) with the fake embedder."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label

from agent.context import Context
from agent.settings import config_file
from memory.memories import ExtractedFact, MemoryKind
from memory.store import ConversationStore
from tests.test_tui import FakeAgent, build, chat, notes, say, settle
from tui.keys import write_config
from tui.screens import memory_actions
from tui.screens.chat import ChatScreen
from tui.screens.memory import MemoryScreen
from tui.screens.memory_actions import NO_MEMORIES
from tui.screens.memory_detail import (
    ConfirmScreen,
    DetailScreen,
    ForgetMeScreen,
    parse_trait_value,
)
from tui.screens.prompt import PromptScreen
from tui.screens.users import UserScreen

SISTER = "The user's sister Maya moved to Berlin in March."
RUNNING = "The user loves running by the river at dawn."


def seed(context: Context, user: str = "ana") -> dict[str, str]:
    """Store two memories for `user` from one turn; return their ids by text."""
    store = context.store
    session = store.new_session(store.ensure_user(user))
    store.begin_turn("seed-turn", user, session, f"{SISTER} {RUNNING}")
    facts = [
        ExtractedFact(kind=MemoryKind.PERSON, text=SISTER, importance=0.8),
        ExtractedFact(kind=MemoryKind.PREFERENCE, text=RUNNING, importance=0.4),
    ]
    written = context.memories.remember(user, facts, "seed-turn")
    return {fact.text: result.memory_id for fact, result in zip(facts, written, strict=True)}


async def open_memory(pilot: Any) -> MemoryScreen:
    await settle(pilot)
    await pilot.press("f5")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MemoryScreen), notes(pilot.app)
    return screen


def table_text(screen: MemoryScreen, table_id: str) -> list[list[str]]:
    table = screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def answer(pilot: Any, text: str) -> None:
    """Type `text` into the prompt that is open and press Enter."""
    assert isinstance(pilot.app.screen, PromptScreen)
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot)


async def goto_row(pilot: Any, table: DataTable[Any], key: str) -> None:
    keys = [row.key.value for row in table.ordered_rows]
    table.move_cursor(row=keys.index(key))
    await pilot.pause()


# ------------------------------------------------------------------ helpers


def test_trait_values_are_parsed_with_clear_errors() -> None:
    assert parse_trait_value("0.7") == 0.7 and parse_trait_value("0,25") == 0.25
    for bad in ("abc", "1.5", "-0.1", "nan"):
        with pytest.raises(ValueError, match="from 0 \\(low\\) to 1 \\(high\\)"):
            parse_trait_value(bad)


# ------------------------------------------------------------------ memories


@pytest.mark.asyncio
async def test_memories_are_listed_and_open_in_detail(context: Context, agent: FakeAgent) -> None:
    seed(context)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        rows = table_text(screen, "#memories")
        assert sorted(r[0] for r in rows) == ["person", "preference"]
        assert {r[1] for r in rows} == {SISTER, RUNNING}
        assert not screen.query_one("#memories-empty").display
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert str(app.screen.query_one("#memory-text").render()) in {SISTER, RUNNING}
        await pilot.press("escape")
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


@pytest.mark.asyncio
async def test_nothing_remembered_says_so(context: Context, agent: FakeAgent) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        empty = screen.query_one("#memories-empty", Label)
        assert empty.display and str(empty.render()) == NO_MEMORIES
        await pilot.press("e")
        assert any("no memory to edit" in n for n in notes(app, "warning"))


@pytest.mark.asyncio
async def test_filter_by_words(context: Context, agent: FakeAgent) -> None:
    seed(context)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        await pilot.press("slash", *"berlin")
        await pilot.pause()
        assert [r[1] for r in table_text(screen, "#memories")] == [SISTER]
        await pilot.press(*" zebra")
        await pilot.pause()
        assert table_text(screen, "#memories") == []
        assert "berlin zebra" in str(screen.query_one("#memories-empty", Label).render())
        await pilot.press("escape")  # clears the filter first
        assert len(table_text(screen, "#memories")) == 2 and isinstance(app.screen, MemoryScreen)


@pytest.mark.asyncio
async def test_editing_a_memory_changes_the_stored_text(context: Context, agent: FakeAgent) -> None:
    ids = seed(context)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        await goto_row(pilot, screen.query_one("#memories", DataTable), ids[SISTER])
        await pilot.press("e")
        await answer(pilot, "ab")  # too short: refused, the prompt comes back with the text
        assert any("Not saved" in n and "3 to 300" in n for n in notes(app, "error"))
        assert isinstance(app.screen, PromptScreen) and app.screen.query_one(Input).value == "ab"
        assert context.memories.get("ana", ids[SISTER]).text == SISTER
        await answer(pilot, "The user's sister Maya moved to Lisbon in May.")
        edited = context.memories.get("ana", ids[SISTER])
        assert edited.text == "The user's sister Maya moved to Lisbon in May."
        assert edited.origin == "edited"
        assert isinstance(app.screen, MemoryScreen)
        assert "Lisbon" in " ".join(r[1] for r in table_text(screen, "#memories"))


@pytest.mark.asyncio
async def test_forgetting_one_memory_asks_then_removes_it(
    context: Context, agent: FakeAgent
) -> None:
    ids = seed(context)
    agent.memories = [{"id": ids[RUNNING], "text": RUNNING, "score": 0.7}]
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, "I went running again today.")
        assert [m.id for m in chat(app).why.memories] == [ids[RUNNING]]
        screen = await open_memory(pilot)
        await goto_row(pilot, screen.query_one("#memories", DataTable), ids[RUNNING])
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # kept
        assert len(context.memories.all("ana")) == 2
        await pilot.press("d")
        await pilot.press("y")
        await settle(pilot)
        assert [m.id for m in context.memories.all("ana")] == [ids[SISTER]]
        assert [r[1] for r in table_text(screen, "#memories")] == [SISTER]
        await pilot.press("escape")
        await pilot.pause()
        assert chat(app).why.memories == []  # the why panel drops it too


# ------------------------------------------------------------------ traits


@pytest.mark.asyncio
async def test_setting_and_unsetting_a_trait(context: Context, agent: FakeAgent) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert screen.on_traits and screen.query_one("#traits-empty").display
        traits = screen.query_one("#traits", DataTable)
        await goto_row(pilot, traits, "directness")
        await pilot.press("e")
        await answer(pilot, "0.8")
        stored = context.traits.values("ana")["directness"]
        assert (stored.value, stored.source) == (0.8, "user")
        row = table_text(screen, "#traits")[traits.get_row_index("directness")]
        assert row[:4] == ["directness", "0.80", "100%", "set by you"]
        await pilot.press("u")
        await settle(pilot)
        assert "directness" not in context.traits.values("ana")
        assert table_text(screen, "#traits")[traits.get_row_index("directness")][1] == "—"


@pytest.mark.asyncio
async def test_a_bad_trait_value_is_refused_and_nothing_stored(
    context: Context, agent: FakeAgent
) -> None:
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_memory(pilot)
        await pilot.press("t", "e")
        await pilot.pause()
        await answer(pilot, "1.5")
        assert any("Not set" in n and "outside 0 to 1" in n for n in notes(app, "error"))
        await answer(pilot, "very")
        assert any("'very' is not a number" in n for n in notes(app, "error"))
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MemoryScreen)
        assert context.traits.values("ana") == {}


# ------------------------------------------------------------------ forget me


@pytest.mark.asyncio
async def test_forget_me_with_a_wrong_name_does_nothing(context: Context, agent: FakeAgent) -> None:
    seed(context)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_memory(pilot)
        await pilot.press("ctrl+x")
        assert isinstance(app.screen, ForgetMeScreen)
        await pilot.press(*"Ana", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ForgetMeScreen)
        assert any("type ana exactly" in n for n in notes(app, "error"))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MemoryScreen) and app.user == "ana"
        assert len(context.memories.all("ana")) == 2 and context.store.turns("ana")


@pytest.mark.asyncio
async def test_forget_me_removes_the_person_and_asks_who_is_talking(
    context: Context, agent: FakeAgent, store: ConversationStore
) -> None:
    seed(context)
    seed(context, "bob")
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await say(pilot, "Hello there.")
        screen = await open_memory(pilot)
        await pilot.click("#forget-me")
        await pilot.press(*"ana", "enter")
        await settle(pilot)
        assert isinstance(app.screen, UserScreen), notes(app)
        assert not any(isinstance(s, (ChatScreen, MemoryScreen)) for s in app.screen_stack)
        assert app.user is None and screen.forgetting
        assert store.turns("ana") == [] and context.memories.all("ana") == []
        assert context.traits.values("ana") == {} and len(context.memories.all("bob")) == 2
        assert any(n.startswith("Forgot ana") for n in notes(app))
        app.screen.query_one("#new-user", Input).value = "cleo"
        app.screen.query_one("#new-user", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen) and app.user == "cleo"


@pytest.mark.asyncio
async def test_forget_me_waits_for_a_running_turn(
    context: Context, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_actions, "LOCK_WAIT", 0.05)
    seed(context)
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_memory(pilot)
        with app.turn_lock:  # as if a turn were running
            await pilot.press("ctrl+x", *"ana", "enter")
            await settle(pilot)
        assert any("still being written" in n for n in notes(app, "error"))
        assert app.screen is screen and not screen.forgetting and app.user == "ana"
        assert len(context.memories.all("ana")) == 2


# ------------------------------------------------------------------ keys and palette


@pytest.mark.asyncio
async def test_memory_keys_rebind_and_show_in_the_palette(
    context: Context, agent: FakeAgent
) -> None:
    write_config(config_file(), {"keys": {"memory": "f10", "memory_traits": "ctrl+t"}})
    app = build(context, agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not notes(app, "warning")  # the memory screen's actions are known to [keys]
        assert "Memory" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("f10")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        await pilot.press("ctrl+t")
        assert screen.on_traits
        await palette(pilot, "Forget me")
        assert isinstance(app.screen, ForgetMeScreen)


async def palette(pilot: Any, command: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*command)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.3)
