"""Shared fixtures: temp data dirs, settings, contexts with fakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.context import Context
from agent.runner import Agent, checkpoint_serde
from agent.settings import Settings
from memory.database import open_database
from memory.store import ConversationStore
from memory.worker import MemoryServices
from tests.fakes import FakeEmbedder, FakeEmotion, FakeSafety, turn_model
from tests.test_memory_fakes import build_services

pytest_plugins = ["tests.tui_fixtures"]  # the TUI tests' context and fake agent


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's config or write to their data dir."""
    monkeypatch.setenv("EMPATHOS_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("EMPATHOS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EMPATHOS_BASE_URL", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the fake chat models give no logprobs: the trait rater is tested on its own
    # (test_trait_rating, and on the real model in test_llm)
    return Settings(
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", llm_trait_asking=False
    )


@pytest.fixture
def store(settings: Settings) -> ConversationStore:
    return ConversationStore(open_database(settings.db_path))


@pytest.fixture
def mem(tmp_path: Path) -> MemoryServices:
    """The memory system on real SQLite and Chroma with fakes, users "ana" and "bo" created."""
    services = build_services(tmp_path / "data")
    for user in ("ana", "bo"):
        services.store.ensure_user(user)
    return services


def fake_context(
    settings: Settings, store: ConversationStore, turns: int = 1, **kw: object
) -> Context:
    """A context on real stores with fake models and plug-ins."""
    services: dict[str, object] = {
        "chat_model": turn_model(turns),
        "structured_method": "json_schema_text",
        "embedder": FakeEmbedder(),
        "emotion": FakeEmotion(),
        "safety": FakeSafety(),
    }
    services.update(kw)
    return Context(settings, store, **services)  # type: ignore[arg-type]


@pytest.fixture
def make_agent(settings: Settings, store: ConversationStore):
    """Build an agent over fakes; returns (agent, user, session)."""

    def make(turns: int = 1, **kw: object) -> tuple[Agent, str, str]:
        agent = Agent(
            fake_context(settings, store, turns, **kw), InMemorySaver(serde=checkpoint_serde())
        )
        session = store.new_session("ana")
        return agent, "ana", session

    return make
