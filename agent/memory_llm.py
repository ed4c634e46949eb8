"""The LLM side of long-term memory: fact extraction and the same/contradicts judge.

Both run in the memory worker, off the reply's critical path. Only the user's own words are
shown to the model (never the assistant's replies, never prompts), quoted as data: instructions
inside them are something the person said, not something to do. Schemas bound every string and
use enums, because small models loop when decoding is constrained without bounds.
Extraction decodes greedily, and a deterministic post-check (`checked`) drops a fact with a
number the person did not write or an age they gave only as a duration ("married 14 years"
is not "14 years old"), and blanks a "when" they did not write: small models invent all three
(issue 12; measured by `eval.bench_facts`).
The wiring (which store, which model) lives in `agent.services`. Both take the chat model or a
function returning it, so the model loads only when the first job needs it.

Errors: `StructuredOutputError` / `ModelCallError` from `agent.llm` propagate out of extraction so
the worker records the failure and retries the job; the judge falls back to the rule judge.
A call that gave way to a turn (`ModelPreempted`) becomes `JobPreempted`: the job goes back on
the queue as it was, in both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Union

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agent.errors import ModelPreempted
from agent.llm import LLMError, StructuredMethod, invoke_structured
from agent.prompts import EXTRACT_SYSTEM, EXTRACT_USER, JUDGE_SYSTEM, JUDGE_USER, quote_block
from agent.schemas import LLMCall
from memory.errors import JobPreempted
from memory.memories import ExtractedFact, MemoryKind, RelationJudge
from memory.rules import Relation, RuleJudge, content_words

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


EXTRACT_MAX_TOKENS, JUDGE_MAX_TOKENS = 400, 40
EXTRACT_MAX_FACTS = 4  # EXTRACT_SYSTEM says so too
SURE_SAME = 0.97


UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
fifteen sixteen seventeen eighteen nineteen".split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {word: str(n) for n, word in enumerate(UNITS)} | {
    word: str(20 + 10 * n) for n, word in enumerate(TENS)
}
TENS_AND_UNIT = re.compile(rf"\b({'|'.join(TENS)})[\s-]+({'|'.join(UNITS[1:10])})\b")
NUMBER_WORD = re.compile(rf"\b({'|'.join(NUMBER_WORDS)})\b")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
ALWAYS_SAID = frozenset({"1"})  # "a year", "an hour": the model may write 1 for "a"


def normalise(text: str) -> str:
    """Lower-case, number words as digits, no thousands commas, dashes as spaces.

    "Twenty-five years" -> "25 years", "£1,800" -> "£1800", "35-years-old" -> "35 years old",
    "nine and a half" -> "9.5".
    """
    text = text.lower().replace("\u2019", "'")
    text = TENS_AND_UNIT.sub(lambda m: str(int(NUMBER_WORDS[m[1]]) + int(NUMBER_WORDS[m[2]])), text)
    text = NUMBER_WORD.sub(lambda m: NUMBER_WORDS[m[1]], text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"\b(\d+) and a half\b", r"\1.5", text)
    return " ".join(re.sub(r"[-\u2010-\u2015]", " ", text).split())


def numbers_in(text: str) -> set[str]:
    """The numbers a text states, after `normalise` ("twelve" and "12" are the same)."""
    return set(NUMBER.findall(normalise(text)))


def unsaid_numbers(claim: str, sources: Iterable[str]) -> set[str]:
    """Numbers in `claim` that none of `sources` states (1 is always allowed: "a year")."""
    said = set().union(*(numbers_in(s) for s in sources)) | ALWAYS_SAID
    return numbers_in(claim) - said


AGE_CLAIM = re.compile(r"\b(\d+) years? old\b|\bage(?:d| of)? (\d+)\b")
AGE_SAID = re.compile(
    r"\b(\d+) (?:years? )?(?:olds?|yo)\b|\bage(?:d| of)? (\d+)\b"
    r"|\b(?:i'm|i am|is|turned|turns|turning|at) (\d+)\b"
)
DURATION = re.compile(r"\b(\d+(?:\.\d+)?) (?:years?|months?|weeks?|days?)\b(?! olds?\b)")


def numbers_as(pattern: re.Pattern[str], texts: Iterable[str]) -> set[str]:
    """The numbers `pattern` captures in the texts, after `normalise`."""
    return {n for text in texts for m in pattern.finditer(normalise(text)) for n in m.groups() if n}


def ages_from_durations(claim: str, sources: Iterable[str]) -> set[str]:
    """Ages in `claim` ("14 years old", "aged 14") that the sources give only as a duration
    ("married 14 years"), never as an age."""
    sources = list(sources)
    durations = numbers_as(DURATION, sources) - numbers_as(AGE_SAID, sources)
    return numbers_as(AGE_CLAIM, [claim]) & durations


def grounded_when(when: str, sources: Sequence[str]) -> str:
    """`when` if its words come from the sources, else "" (the model invents "last week")."""
    wanted = content_words(normalise(when)) - {"ago"}
    have = set().union(*(content_words(normalise(s)) for s in sources))
    return when if wanted <= have and not unsaid_numbers(when, sources) else ""


def checked(facts: Iterable[ExtractedFact], sources: Sequence[str]) -> list[ExtractedFact]:
    """Keep the facts whose numbers the person wrote, and not as an age they did not give;
    blank a `when` they did not write."""
    kept = []
    for fact in facts:
        if unsaid_numbers(fact.text, sources) or ages_from_durations(fact.text, sources):
            continue
        kept.append(fact.model_copy(update={"happened": grounded_when(fact.happened, sources)}))
    return kept


class Feeling(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    MIXED = "mixed"
    NEUTRAL = "neutral"


FEELING_VALENCE = {Feeling.POSITIVE: 0.6, Feeling.NEGATIVE: -0.6, Feeling.MIXED: 0.0,
                   Feeling.NEUTRAL: 0.0}  # fmt: skip


ModelSource = Union["BaseChatModel", Callable[[], "BaseChatModel"]]


def resolve(model: ModelSource) -> BaseChatModel:
    """Return the chat model (calling the factory the first time it is needed)."""
    from langchain_core.language_models import BaseChatModel

    return model if isinstance(model, BaseChatModel) else model()


class FactDraft(BaseModel):
    """One fact as the model writes it."""

    kind: MemoryKind
    text: str = Field(min_length=3, max_length=200)
    importance: int = Field(ge=1, le=5)
    feeling: Feeling
    emotion: str = Field(max_length=24)
    when: str = Field(max_length=40)

    def to_fact(self) -> ExtractedFact:
        return ExtractedFact(
            kind=self.kind, text=self.text.strip(), importance=(self.importance - 1) / 4,
            emotion=self.emotion.strip().lower(), valence=FEELING_VALENCE[self.feeling],
            happened=self.when.strip(),
        )  # fmt: skip


class FactDrafts(BaseModel):
    facts: list[FactDraft] = Field(max_length=EXTRACT_MAX_FACTS)


class RelationVerdict(BaseModel):
    relation: Literal["same", "contradicts", "unrelated"]


def extraction_messages(user_text: str, context: list[str]) -> list[BaseMessage]:
    """Build the extraction prompt: the user's words only, quoted as data."""
    earlier = quote_block("\n".join(context)) if context else "(none)"
    return [
        SystemMessage(EXTRACT_SYSTEM),
        HumanMessage(EXTRACT_USER.format(context=earlier, message=quote_block(user_text))),
    ]


@contextmanager
def gives_way() -> Iterator[None]:
    """A model call aborted for a turn becomes a job that gave way (it is run again later)."""
    try:
        yield
    except ModelPreempted as exc:
        raise JobPreempted(str(exc)) from exc


class LLMFactExtractor:
    """Extract facts with the chat model; failures propagate so the worker retries.

    Decoding is greedy (temperature 0): a fact is copied, not written, and sampling is where
    a small model's invented ages and dates came from. With `keep_dropped` (the bench only:
    they hold a person's words), facts the post-check (`checked`) refuses are kept in `dropped`.
    """

    def __init__(
        self, model: ModelSource, method: StructuredMethod, keep_dropped: bool = False
    ) -> None:
        self._model, self.method, self.keep_dropped = model, method, keep_dropped
        self.calls: list[LLMCall] = []
        self.dropped: list[ExtractedFact] = []

    @property
    def model(self) -> BaseChatModel:
        return resolve(self._model)

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]:
        with gives_way():
            drafts, calls = invoke_structured(
                greedy(self.model), extraction_messages(user_text, context), FactDrafts,
                method=self.method, node="extract_memories", max_tokens=EXTRACT_MAX_TOKENS,
            )  # fmt: skip
        self.calls += calls
        facts = [draft.to_fact() for draft in drafts.facts]
        kept = checked(facts, [user_text, *context])
        if self.keep_dropped:
            self.dropped += [fact for fact in facts if fact.text not in {k.text for k in kept}]
        return kept


def greedy(model: BaseChatModel) -> BaseChatModel:
    """The model decoding at temperature 0, if it has a temperature to set."""
    if "temperature" in type(model).model_fields:
        return model.model_copy(update={"temperature": 0.0})
    return model


class LLMRelationJudge:
    """Ask the chat model whether a new fact repeats or contradicts an old one."""

    def __init__(self, model: ModelSource, method: StructuredMethod) -> None:
        self._model, self.method = model, method
        self.fallback: RelationJudge = RuleJudge()
        self.calls: list[LLMCall] = []

    def relation(self, new: str, old: str, similarity: float) -> Relation:
        if similarity >= SURE_SAME:
            return self.fallback.relation(new, old, similarity)
        messages = [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(JUDGE_USER.format(old=quote_block(old), new=quote_block(new))),
        ]
        try:
            with gives_way():
                verdict, calls = invoke_structured(
                    resolve(self._model), messages, RelationVerdict, method=self.method,
                    node="judge_memory", max_tokens=JUDGE_MAX_TOKENS,
                )  # fmt: skip
        except LLMError:  # the judge is an refinement: the rule judge still decides
            return self.fallback.relation(new, old, similarity)
        self.calls += calls
        return verdict.relation
