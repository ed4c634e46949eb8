"""Benchmark items: one JSONL line each, one schema, told apart by `task`.

    {"task": "reply", "id": "grief-03", "user": "rosa", "message": "...", ...}

Tasks (every field below is validated; unknown fields are refused, so a typo is an error):

- `reply` (PersonaEmp-style): `user`, optional hidden `persona` (trait values 0..1, preferred and
  disliked ESConv strategies, notes), `history` (past conversations, ingested through the
  history path before the turn: `agent.ingest`), `context` (earlier lines of this same
  conversation), the `message` to answer, and `gold`: `emotions` (any of, GoEmotions labels),
  `cause_span` (the words that say what caused the feeling), `acceptable`, `preferred`,
  `disliked` strategies, `reference` reply, `memory_words` (words of this person's history a
  personal reply would use).
- `strategy` (ESConv-style): `context` lines and the seeker's `message`; `gold` the supporter's
  next strategy, `reference` their actual reply.
- `emotion`: `text` and gold `labels` (GoEmotions names, one or more).
- `memory`: `history`, a `question`, `answer` (any of these words or phrases, whole-word, in any
  case) and `evidence` (0-based indexes of the history lines that hold the answer).
- `rating`: `context`, a `response` and human `ratings` (rubric dimension, value, rater
  attributes where known). These check the judge; they need no system.

History and context lines are `{"role": "user"|"assistant", "text": "...", "session": "label",
"time": "ISO-8601 with zone"}`; `session` and `time` are optional (missing times are filled in
a day apart per session, a minute apart per line).

`load_items(paths)` reads every file whole; a bad line is named (file, line, field and what to
do), skipped and counted in `Loaded.problems`, never silently dropped. Ids must be unique
across the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from eval.errors import EvalError

MAX_TEXT = 20_000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^\S+$")
]
Strategy = Literal[
    "Question", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
    "Affirmation and Reassurance", "Providing Suggestions", "Information", "Others",
    "Personal Analogy",
]  # fmt: skip
Emotion = Literal[
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
]  # fmt: skip
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
STRATEGIES: tuple[str, ...] = get_args(Strategy)  # the catalogue's names (a test checks)
ESCONV_STRATEGIES = STRATEGIES[:8]
EMOTIONS: tuple[str, ...] = get_args(Emotion)


class ItemError(EvalError, ValueError):
    """A benchmark file that cannot be read at all (missing, not UTF-8, no valid item)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(Strict):
    """One line of a past or current conversation."""

    role: Literal["user", "assistant"]
    text: Text
    session: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    time: AwareDatetime | None = None


class Persona(Strict):
    """The hidden truth about a person, never shown to the system under test."""

    traits: dict[Name, Unit] = Field(default_factory=dict)

    @field_validator("traits")
    @classmethod
    def _known_traits(cls, traits: dict[str, float]) -> dict[str, float]:
        from memory.traits import TRAITS

        unknown = sorted(set(traits) - set(TRAITS))
        if unknown:
            raise ValueError(f"unknown trait {unknown[0]!r}; the agent's traits are: "
                             f"{', '.join(TRAITS)}")  # fmt: skip
        return traits

    preferred: list[Strategy] = Field(default_factory=list)
    disliked: list[Strategy] = Field(default_factory=list)
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class ReplyGold(Strict):
    emotions: list[Emotion] = Field(default_factory=list)
    cause_span: Annotated[str, StringConstraints(max_length=2000)] | None = None
    acceptable: list[Strategy] = Field(default_factory=list)
    preferred: list[Strategy] = Field(default_factory=list)
    disliked: list[Strategy] = Field(default_factory=list)
    reference: Text | None = None
    memory_words: list[Text] = Field(default_factory=list)


class Item(Strict):
    id: Name
    source: Annotated[str, StringConstraints(max_length=200)] = ""


class ReplyItem(Item):
    task: Literal["reply"]
    user: Name
    persona: Persona | None = None
    history: list[Line] = Field(default_factory=list)
    context: list[Line] = Field(default_factory=list)
    message: Text
    gold: ReplyGold = ReplyGold()

    @model_validator(mode="after")
    def _gold_from_persona(self) -> ReplyItem:
        """A persona's preferred and disliked strategies are gold for the reply, each unless
        the gold gives its own."""
        if self.persona is None:
            return self
        update = {
            name: getattr(self.persona, name)
            for name in ("preferred", "disliked")
            if not getattr(self.gold, name)
        }
        object.__setattr__(self, "gold", self.gold.model_copy(update=update))
        return self


class StrategyItem(Item):
    task: Literal["strategy"]
    context: list[Line] = Field(default_factory=list)
    message: Text
    gold: Strategy
    reference: Text | None = None


class EmotionItem(Item):
    task: Literal["emotion"]
    text: Text
    labels: list[Emotion] = Field(min_length=1)


class MemoryItem(Item):
    task: Literal["memory"]
    user: Name
    history: list[Line] = Field(min_length=1)
    question: Text
    answer: list[Text] = Field(min_length=1)
    evidence: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _evidence_in_history(self) -> MemoryItem:
        bad = [i for i in self.evidence if not 0 <= i < len(self.history)]
        if bad:
            raise ValueError(
                f"evidence {bad} points outside the history (lines 0..{len(self.history) - 1})"
            )
        said = [i for i in self.evidence if self.history[i].role != "user"]
        if said:
            raise ValueError(
                f"evidence {said} points at assistant lines; point at the person's own lines "
                "(only their words are remembered)"
            )
        return self


class Rating(Strict):
    dimension: Name
    value: float
    scale: tuple[float, float] = (0.0, 2.0)
    rater: Annotated[str, StringConstraints(max_length=100)] | None = None
    attributes: dict[Name, str | float | int | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _on_scale(self) -> Rating:
        low, high = self.scale
        if not low <= self.value <= high:
            raise ValueError(f"value {self.value} is outside its scale {low}..{high}")
        return self


class RatingItem(Item):
    task: Literal["rating"]
    context: Text
    response: Text
    ratings: list[Rating] = Field(min_length=1)


AnyItem = Annotated[
    ReplyItem | StrategyItem | EmotionItem | MemoryItem | RatingItem, Field(discriminator="task")
]
TASKS = ("reply", "strategy", "emotion", "memory", "rating")
ITEM = TypeAdapter(AnyItem)
HINT = 'each line must be one JSON object with "task" (one of: ' + ", ".join(TASKS) + ') and "id"'


@dataclass
class Loaded:
    """The valid items of some files, and a message for every line that was not one."""

    items: list[AnyItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def by_task(self, task: str) -> list[AnyItem]:
        return [item for item in self.items if item.task == task]


def describe(error: ValidationError) -> str:
    """The first problem of a validation error as "field.path: message"."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if p not in TASKS) or "item"
    return f"{where}: {first['msg']}"


def parse_line(text: str) -> AnyItem:
    """One item from its JSON line; raises ValueError saying what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno}); {HINT}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"not a JSON object; {HINT}")
    if raw.get("task") not in TASKS:
        raise ValueError(f"task {raw.get('task')!r} is not one of: {', '.join(TASKS)}")
    try:
        return ITEM.validate_python(raw)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def load_items(paths: Sequence[Path]) -> Loaded:
    """Read benchmark files; raise `ItemError` for a file that cannot be read or holds no valid
    item, else return the items and one message per skipped line (file, line, what is wrong)."""
    loaded = Loaded()
    seen: dict[str, str] = {}
    for path in paths:
        loaded.files.append(str(path))
        for number, text in read_lines(path):
            where = f"{path.name} line {number}"
            try:
                item = parse_line(text)
            except ValueError as exc:
                loaded.problems.append(f"{where}: {exc}")
                continue
            if item.id in seen:
                loaded.problems.append(
                    f"{where}: id {item.id!r} is already used ({seen[item.id]}); ids must be "
                    "unique across the files"
                )
                continue
            seen[item.id] = where
            loaded.items.append(item)
    if not loaded.items:
        detail = f" First problem: {loaded.problems[0]}" if loaded.problems else ""
        raise ItemError(f"No valid benchmark item in {', '.join(map(str, paths))}.{detail}")
    return loaded


def read_lines(path: Path) -> Iterable[tuple[int, str]]:
    """The non-blank lines of a file with their numbers (1-based)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from an editor is not JSON
    except FileNotFoundError:
        raise ItemError(f"{path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ItemError(f"{path} cannot be read as UTF-8 text: {exc}.") from None
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 is text
        if line.strip():
            yield number, line


def write_items(items: Iterable[BaseModel], path: Path) -> int:
    """Write items as JSONL (atomically: a temp file renamed over the target); return count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    count = 0
    with temporary.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(item.model_dump_json(exclude_defaults=True) + "\n")
            count += 1
    temporary.replace(path)
    return count
