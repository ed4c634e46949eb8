"""Run one turn that dies hard (os._exit) inside generate_reply; used by test_resume.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from agent.context import Context
from agent.runner import Agent
from agent.settings import Settings
from tests.fakes import ANALYSIS, FakeEmbedder, FakeEmotion, FakeSafety, scripted_model


class DiesOnReply(GenericFakeChatModel):
    """Answers the analysis, then kills the process when asked to stream the reply."""

    def _stream(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "You are empathos" in str(messages[0].content):
            os._exit(137)
        return super()._stream(messages, *args, **kwargs)


def main(data_dir: str, session: str, turn_id: str) -> None:
    settings = Settings(data_dir=Path(data_dir), cache_dir=Path(data_dir) / "cache")
    model = DiesOnReply(messages=scripted_model(ANALYSIS).messages)
    context = Context(
        settings,
        chat_model=model,
        structured_method="json_schema_text",
        embedder=FakeEmbedder(),
        emotion=FakeEmotion(),
        safety=FakeSafety(),  # type: ignore[arg-type]
    )
    Agent(context).run_turn("ana", session, "My exam went badly and I feel stupid", turn_id=turn_id)


if __name__ == "__main__":
    main(*sys.argv[1:4])
