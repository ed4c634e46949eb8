"""A fake chat model for whole-run tests (simulations, ingest): it answers by what is asked.

A structured call names its schema (`response_format`'s title, as `invoke_structured` binds it
for `json_schema_text`), so the fake can serve the analysis, fact extraction, the relation
judge and the user simulator in any order, from any thread; a plain call is a reply, chosen
from the message so the same conversation gets the same replies on every run.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from tests.fakes import ANALYSIS, varied_reply

FENCED = re.compile(r"The message to take facts from[^\n]*\n```\n(.*?)\n```", re.S)


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


class SchemaRouterModel(BaseChatModel):
    """Answers each call by the schema it asks for; counts the calls by kind."""

    emotion_change: int = 5
    junk_for: frozenset[str] = frozenset()  # schema titles answered with junk (fault tests)
    _calls: dict[str, int] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "schema-router-fake"

    @property
    def calls(self) -> dict[str, int]:
        return dict(self._calls)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        response_format = kwargs.get("response_format") or {}
        title = (response_format.get("schema") or {}).get("title", "reply")
        with self._lock:
            self._calls[title] = self._calls.get(title, 0) + 1
        last = str(messages[-1].content)
        if title in self.junk_for:
            content = "this is not json at all"
        elif title == "reply":
            content = varied_reply(digest(last))
        else:
            content = json.dumps(self.answer(title, last))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])

    def answer(self, title: str, prompt: str) -> dict[str, Any]:
        if title == "CauseAnalysis":
            return ANALYSIS
        if title == "FactDrafts":
            found = FENCED.search(prompt)
            words = (found.group(1) if found else "").split()[:12]
            if len(words) < 3:
                return {"facts": []}
            fact = {"kind": "life_event", "text": " ".join(words), "importance": 3,
                    "feeling": "negative", "emotion": "sadness", "when": ""}  # fmt: skip
            return {"facts": [fact]}
        if title == "RelationVerdict":
            return {"relation": "unrelated"}
        if title == "TraitScores":
            from memory.traits import TRAITS

            return {
                name: {"rating": 1 + digest(name + prompt) % 5, "passage": 1} for name in TRAITS
            }
        if title == "Opening":
            return {"message": f"today i want to talk, number {digest(prompt) % 1000}"}
        if title in ("Reaction", "FixedReaction"):
            reaction = {"reaction": "I feel a little more understood.",
                        "emotion_change": self.emotion_change, "reason": "it listened"}  # fmt: skip
            if title == "Reaction":
                reaction["message"] = f"and another thing, number {digest(prompt) % 1000}"
            return reaction
        raise AssertionError(f"the fake was asked for an unknown schema {title!r}")


class WordsEmbedder:
    """Hashed bag-of-words vectors: texts sharing words are near (unlike `FakeEmbedder`), so
    recall finds the memory a question is about, without loading a model."""

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed_one(t) for t in texts]) if texts else np.zeros((0, 384))

    def embed_one(self, text: str) -> np.ndarray:
        vector = np.zeros(384, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[digest(word) % 384] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector + 1 / np.sqrt(384)
