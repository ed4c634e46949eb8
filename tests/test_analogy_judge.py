"""The analogy's relation judge: the question it asks, how its answer is read, and when it is
asked at all (only for the best own experience in the grey band below the similarity floor).

The chat models here are fakes that answer with fixed logprobs (unit tests of the logic); the
real model answers in eval/bench_analogy.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.analogy_judge import NEUTRAL, LLMRelationJudge, judge_messages
from agent.errors import ModelCallError
from agent.understanding import Understanding, related_experience
from memory.trace import MemoryRef
from strategies.policy import ANALOGY_JUDGE_MIN, ANALOGY_MIN_RELEVANCE, Signals, select_plan


def logprobs(**probabilities: float) -> dict[str, Any]:
    top = [{"token": t, "logprob": math.log(p)} for t, p in probabilities.items()]
    return {"logprobs": {"content": [{**top[0], "top_logprobs": top}]}}


class LetterChat(BaseChatModel):
    """Answers with fixed logprobs (by the experience the prompt quotes, else `metadata_out`),
    or fails, and keeps the prompts and arguments."""

    metadata_out: dict[str, Any] = {}
    by_memory: dict[str, dict[str, Any]] = {}
    fail: bool = False
    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = []

    @property
    def _llm_type(self) -> str:
        return "letters"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls.append((messages, kwargs))
        if self.fail:
            raise ModelCallError("the endpoint is down")
        text = str(messages[-1].content)
        quoted = next((m for m in self.by_memory if m in text), None)
        metadata = self.by_memory[quoted] if quoted else self.metadata_out
        message = AIMessage(content="A", response_metadata=metadata)
        return ChatResult(generations=[ChatGeneration(message=message)])


class Judge:
    """A judge that answers a fixed probability and counts its calls."""

    def __init__(self, answer: float | None) -> None:
        self.answer, self.asked = answer, []

    def relates(self, message: str, who: str, memory: str) -> float | None:
        self.asked.append((message, who, memory))
        return self.answer


class Experiences:
    """A recall source with fixed own experiences (best first), all this user's."""

    def __init__(self, *found: tuple[str, float]) -> None:
        self.found = [MemoryRef(id=f"m{i}", text=t, relevance=r) for i, (t, r) in enumerate(found)]

    def experiences(self, user_id, text, vector=None, k=3):
        return self.found[:k]

    def verify_memory(self, user_id, memory_id):
        return True


READING = Understanding(
    True, "my sister", "I don't get why", "my sister is so upset about the move"
)
MESSAGE = "I don't get why my sister is so upset about the move."


def embed(text: str) -> np.ndarray:
    return np.zeros(384, np.float32)


def find(source: Experiences, judge: Judge | None):
    return related_experience(source, "u1", READING, embed, judge, MESSAGE)


def test_the_question_quotes_both_texts_as_data_and_names_the_other_person() -> None:
    system, human = judge_messages(
        'He said """stop""" to me', "their sister", "The user felt lost."
    )
    assert "own past experience" in system.content
    text = str(human.content)
    assert "'''stop'''" in text and '"""stop"""' not in text  # the quote cannot be closed
    assert "The user felt lost." in text and "understand their sister?" in text
    assert text.endswith("Answer with one letter.")


def test_the_judge_weighs_the_experience_against_a_neutral_one() -> None:
    chat = LetterChat(
        by_memory={
            "The user felt lost.": logprobs(A=0.6, B=0.2, C=0.2),
            NEUTRAL: logprobs(A=0.5, B=0.5),
        },
        calls=[],
    )
    assert LLMRelationJudge(chat).relates(MESSAGE, "their sister", "The user felt lost.") == (
        pytest.approx(0.75 - 0.5)
    )
    (first, kwargs), (second, _) = chat.calls
    assert kwargs["logprobs"] is True and kwargs["max_tokens"] == 1
    assert NEUTRAL in str(second[-1].content) and NEUTRAL not in str(first[-1].content)
    assert first[0] == second[0]  # the same question: only the experience differs


@pytest.mark.parametrize("chat", [
    LetterChat(metadata_out={}, calls=[]),  # an endpoint without logprobs
    LetterChat(metadata_out=logprobs(A=0.6), fail=True, calls=[]),  # a failing model
])  # fmt: skip
def test_without_an_answer_the_judge_cannot_tell(chat: LetterChat) -> None:
    assert LLMRelationJudge(chat).relates(MESSAGE, "their sister", "x") is None


def test_an_experience_above_the_floor_grounds_it_without_asking() -> None:
    judge = Judge(0.0)
    found = find(Experiences(("The user felt lost after moving to Leeds.", 0.45)), judge)
    assert found is not None and found[0].id == "m0" and found[1] is None
    assert judge.asked == []


def test_a_grey_band_experience_grounds_it_only_when_judged_related() -> None:
    source = Experiences(("The user felt lost after changing schools at twelve.", 0.30))
    yes, no = Judge(ANALOGY_JUDGE_MIN + 0.01), Judge(ANALOGY_JUDGE_MIN - 0.01)
    found = find(source, yes)
    assert found is not None and found[1] == pytest.approx(ANALOGY_JUDGE_MIN + 0.01)
    assert yes.asked == [(MESSAGE, "their sister", source.found[0].text)]
    assert find(source, no) is None
    assert find(source, None) is None  # no judge: the floor alone, as before
    assert find(source, Judge(None)) is None  # the judge cannot tell


def test_only_the_best_own_experience_in_the_band_is_put_to_the_judge() -> None:
    judge = Judge(0.0)
    source = Experiences(
        ("The user's sister Maya is moving to Berlin.", 0.36),  # about the sister: not the user's
        ("The user felt lost after changing schools.", 0.30),
        ("The user felt homesick at camp.", 0.28),
    )
    assert find(source, judge) is None
    assert [memory for _, _, memory in judge.asked] == [
        "The user felt lost after changing schools."
    ]


def test_an_experience_below_the_band_is_never_judged() -> None:
    judge = Judge(1.0)
    assert find(Experiences(("The user likes tea.", 0.15)), judge) is None
    assert judge.asked == []


def test_a_judged_experience_counts_as_related_as_the_floor_for_the_plan() -> None:
    base = {"need": "vent", "emotion": "sadness", "grounding_memory_id": "m1",
            "understanding_other": True, "other_person": "my sister"}  # fmt: skip
    judged = select_plan(Signals(**base, grounding_relevance=0.26, grounding_judged=0.72), {})
    floor = select_plan(Signals(**base, grounding_relevance=ANALOGY_MIN_RELEVANCE), {})
    assert judged.strategy == floor.strategy == "Personal Analogy"
    assert judged.scores["Personal Analogy"] == pytest.approx(floor.scores["Personal Analogy"])
    assert any("relevance 0.26, judged related +0.72" in why for why in judged.why)


def test_the_model_is_built_only_when_a_judgement_is_asked_for() -> None:
    built: list[int] = []

    def factory() -> LetterChat:
        built.append(1)
        return LetterChat(metadata_out=logprobs(A=0.5, B=0.5), calls=[])

    judge = LLMRelationJudge(factory)
    assert find(Experiences(("The user felt lost after moving to Leeds.", 0.45)), judge)
    assert built == []
    assert find(Experiences(("The user felt lost after changing schools.", 0.30)), judge) is None
    assert built == [1, 1]  # the experience, then the neutral one
