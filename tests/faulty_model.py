"""A chat model that fails the way real ones do, on a seeded schedule.

Faults: a timeout, a server error (HTTP 503), malformed JSON, schema-valid nonsense, a stream
cut off mid-reply, an empty reply. Everything else is a well-formed analysis or reply. The
schedule is shared by copies of the model (LangChain copies models to bind options).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from tests.fakes import ANALYSIS, REPLY

FAULTS = ("timeout", "http_503", "malformed", "nonsense", "cut_stream", "empty")
NONSENSE = {**ANALYSIS, "cause_span": "purple monkey dishwasher", "situation": "zzz " * 10}


class FaultSchedule:
    """Which call gets which fault; counts what was injected."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng, self.rate = random.Random(seed), rate
        self.injected: Counter[str] = Counter()

    def draw(self, allowed: tuple[str, ...]) -> str | None:
        if self.rng.random() >= self.rate:
            return None
        fault = self.rng.choice(allowed)
        self.injected[fault] += 1
        return fault


class FaultyChatModel(BaseChatModel):
    """Answers analyses (calls with a response_format) with JSON and replies with text."""

    schedule: Any

    @property
    def _llm_type(self) -> str:
        return "faulty-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        analysis = "response_format" in kw
        fault = self.schedule.draw(FAULTS[:4] + ("empty",) if analysis else FAULTS)
        self._raise(fault)
        text = json.dumps(ANALYSIS) if analysis else REPLY
        text = {"malformed": '{"cause_span": "x", "need": ', "empty": ""}.get(fault or "", text)
        if fault == "nonsense":
            text = json.dumps(NONSENSE) if analysis else "}}}{{{ [[[ ]]] " * 3
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        fault = self.schedule.draw(FAULTS)
        self._raise(fault)
        words = [] if fault == "empty" else REPLY.split(" ")
        for index, word in enumerate(words):
            if fault == "cut_stream" and index == 3:
                raise ConnectionResetError("the stream was cut off mid-reply")
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))

    @staticmethod
    def _raise(fault: str | None) -> None:
        if fault == "timeout":
            raise TimeoutError("the model did not answer in time")
        if fault == "http_503":
            raise ConnectionError("HTTP 503 from the model server: overloaded")
