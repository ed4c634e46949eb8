"""Snapshot tests (pytest-textual-snapshot) of the main screens, against the fake agent.

Update the stored SVGs after an intended change of looks with `pytest --snapshot-update`, and
look at them before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.context import Context
from agent.settings import Settings
from memory.database import open_database
from memory.store import ConversationStore
from tests.fakes import FakeEmbedder
from tests.test_tui import MESSAGE, FakeAgent, fake_context, say, settle
from tui.app import EmpathosApp, create_app
from tui.widgets.chat_input import ChatInput

SIZE = (110, 36)
STAMP = "2026-03-01T09:30:00.000+00:00"


def make_app(tmp_path: Path) -> EmpathosApp:
    """An app on a temp store with fixed settings and a fake agent."""
    settings = Settings(
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", model="demo-model"
    )
    store = ConversationStore(open_database(settings.db_path))
    context = fake_context(settings, store, FakeEmbedder())
    agent = FakeAgent(store)
    agent.memories = [{"id": "m1", "text": "Ana's dad teases her about driving.", "score": 0.71}]
    return create_app(context, agent, "ana")


async def chat_with_a_reply(pilot: Any) -> None:
    """Say one message, wait for the reply, and stop the cursor blinking."""
    await settle(pilot)
    pilot.app.screen.query_one(ChatInput).cursor_blink = False
    await say(pilot, MESSAGE)


def freeze_dates(app: EmpathosApp) -> None:
    app.store.db.execute("update sessions set updated_at = ?, created_at = ?", [STAMP, STAMP])
    app.store.db.conn.commit()


@pytest.fixture
def app(tmp_path: Path) -> EmpathosApp:
    return make_app(tmp_path)


def test_chat_with_a_reply(snap_compare: Any, app: EmpathosApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=chat_with_a_reply)


def test_why_panel_open(snap_compare: Any, app: EmpathosApp) -> None:
    async def run_before(pilot: Any) -> None:
        await chat_with_a_reply(pilot)
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sessions_screen(snap_compare: Any, app: EmpathosApp) -> None:
    async def run_before(pilot: Any) -> None:
        await chat_with_a_reply(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        freeze_dates(pilot.app)
        await pilot.press("f3")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_memory_screen(snap_compare: Any, app: EmpathosApp) -> None:
    from tests.test_tui_memory import seed

    seed(app.context)
    app.context.traits.set("ana", "directness", 0.8)
    app.store.db.execute(
        "update memories set created_at = ?, updated_at = ?, last_seen_at = ?",
        [STAMP, STAMP, STAMP],
    )
    app.store.db.conn.commit()

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_crisis_reply(snap_compare: Any, app: EmpathosApp) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.screen.query_one(ChatInput).cursor_blink = False
        await say(pilot, "CRISIS I can't go on")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# ------------------------------------------------------------------ the README screenshot

DEMO = (
    "I failed my driving test again and my dad laughed at me.",
    "I practised for weeks. Maybe I'm just not cut out for driving.",
)


async def export_readme_screenshot(target: Path, fake_plugins: bool) -> None:
    """Talk to the real default model for two turns and save the app, why panel open, as SVG."""
    import tempfile

    from tests.test_tui import chat, wait_for
    from tui.launch import agent_factory

    home = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=home / "data", max_tokens=120)
    services: dict[str, Any] = {}
    if fake_plugins:  # until the emotion and crisis heads are built
        from tests.fakes import FakeEmotion, FakeSafety

        services = {"emotion": FakeEmotion(), "safety": FakeSafety()}
    context = Context(settings, **services)
    app = create_app(context, agent_factory(context), "ana")
    async with app.run_test(size=(124, 38)) as pilot:
        await wait_for(pilot, lambda: not app.models_status.startswith("loading"), 900)
        for text in DEMO:
            await say(pilot, text)
            await wait_for(pilot, lambda: chat(app).busy_text is None, 900)
            await settle(pilot)
        await pilot.press("f2")
        chat(app).input.cursor_blink = False
        await pilot.pause()
        app.save_screenshot(target.name, str(target.parent))


if __name__ == "__main__":
    # python -m tests.test_tui_snapshots docs/screenshot.svg [--fake-plugins]
    import asyncio
    import sys

    asyncio.run(export_readme_screenshot(Path(sys.argv[1]), "--fake-plugins" in sys.argv))
