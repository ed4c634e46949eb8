"""Fakes for unit tests of logic: scripted chat models and fixed plug-ins."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agent.schemas import EmotionReading, EmotionScore, SafetyAssessment

ANALYSIS = {
    "cause_span": "I failed my driving test again",
    "situation": "They failed their driving test a second time and their dad laughed.",
    "need": "be_validated",
    "thoughts": "Maybe I am just not good enough.",
    "risk": False,
}
REPLY = "That sounds really painful, especially when your dad laughed. You tried hard."


def scripted_model(*responses: str | dict[str, object]) -> GenericFakeChatModel:
    """A fake chat model answering with each response in turn (dicts become JSON)."""
    texts: Iterable[str] = (r if isinstance(r, str) else json.dumps(r) for r in responses)
    return GenericFakeChatModel(messages=iter([AIMessage(content=t) for t in texts]))


FIRSTS = [
    "That sounds heavy to carry.",
    "You have been holding a lot lately.",
    "It makes sense that this stays with you.",
    "Thank you for telling me about it.",
    "What a day you have had.",
    "I can hear how much this matters to you.",
    "That would shake most people.",
    "It took courage to put that into words.",
]
SECONDS = [
    "What part of it weighs on you most?",
    "How are you looking after yourself tonight?",
    "Who else knows how you feel about it?",
    "What would help a little right now?",
    "When did it start to feel this way?",
    "Is there a moment from today you keep replaying?",
    "What do you wish people understood about it?",
    "How did you get through the last hours?",
]


def varied_reply(i: int) -> str:
    """The i-th reply of a fake conversation: turn 0 says `REPLY`, later turns never repeat an
    earlier one (the reply check would rewrite a repeat)."""
    if i == 0:
        return REPLY
    return f"{FIRSTS[i % 8]} {SECONDS[(i // 8 + i) % 8]}"


def turn_model(turns: int = 1, analysis: dict[str, object] | None = None) -> GenericFakeChatModel:
    """A fake that serves `turns` ordinary turns: analysis JSON, then a reply, each time."""
    script: list[str | dict[str, object]] = []
    for i in range(turns):
        script += [analysis or ANALYSIS, varied_reply(i)]
    return scripted_model(*script)


class FakeEmbedder:
    """Deterministic 384-d vectors without loading a model."""

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed_one(t) for t in texts]) if texts else np.zeros((0, 384))

    def embed_one(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        v = rng.standard_normal(384).astype(np.float32)
        return v / np.linalg.norm(v)


class FakeEmotion:
    """Always reads the same emotion."""

    def __init__(self, label: str = "sadness", probability: float = 0.7, valence: float = -0.6):
        self.reading = EmotionReading(
            label=label,
            probability=probability,
            top=[EmotionScore(label=label, probability=probability)],
            valence=valence,
            intensity=probability,
        )

    def classify_vector(self, vector: np.ndarray, top_k: int = 3) -> EmotionReading:
        return self.reading


class FakeSafety:
    """Flags messages containing a trigger word; combines like the real rule."""

    def __init__(self, trigger: str = "CRISIS", uncertain: str = "UNSURE"):
        self.trigger, self.uncertain = trigger, uncertain

    def screen(
        self, text: str, vector: np.ndarray | None = None, windows_embedded: object = None
    ) -> SafetyAssessment:
        if self.trigger in text:
            return SafetyAssessment(crisis=True, category="suicide", risk=0.99, band="crisis")
        band = "uncertain" if self.uncertain in text else "clear"
        return SafetyAssessment(
            crisis=False, risk=0.4 if band == "uncertain" else 0.0, band=band,
            indirect_signal=band == "uncertain",
        )  # fmt: skip

    def combine(self, assessment: SafetyAssessment, llm_risk: bool | None) -> SafetyAssessment:
        second = llm_risk is None or (llm_risk and assessment.indirect_signal)
        if assessment.band == "uncertain" and second:
            return assessment.model_copy(update={"crisis": True, "category": "suicide"})
        return assessment
