"""The TUI tests' fixtures (registered by `conftest.py`): a real context on the temp store with
fake plug-ins, and the fake agent. A module's own fixture of the same name wins over these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agent.context import Context
from agent.settings import Settings
from memory.store import ConversationStore
from tests.fakes import FakeEmbedder

if TYPE_CHECKING:
    from tests.test_tui import FakeAgent


@pytest.fixture
def context(settings: Settings, store: ConversationStore) -> Context:
    from tests.test_tui import fake_context  # textual loads only for the tests that use it

    return fake_context(settings, store, FakeEmbedder())


@pytest.fixture
def agent(store: ConversationStore) -> FakeAgent:
    from tests.test_tui import FakeAgent

    return FakeAgent(store)
