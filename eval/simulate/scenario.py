"""Scenario files: the people a simulation lives through weeks with, and the truth about them.

A scenario is YAML, validated by the pydantic models below (unknown keys are errors). Each
person has a hidden card the agent never sees (who they are, Big Five, how they like to be
supported, a goal per session) and sessions on a simulated clock, each one of:
- `script`: the person's turns, fixed;
- `simulate`: an opening line, a situation and a turn budget; the user simulator writes the rest;
- `history`: a past transcript (both sides) ingested into memory as what happened then.
Probes (questions about earlier sessions) and crisis moments can follow any live session.

`load_scenario(path)` reports every problem with the file, the line and the field, e.g.
`grief.yaml line 14, people[0].card.big_five.neuroticism: Input should be less than or
equal to 1`. `expect_any` words match as whole words, case-insensitively.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eval.errors import EvalError
from memory.store import check_user_id
from memory.traits import BIG_FIVE

PLACED = re.compile(r"^(people\[\d+\](?:\.\w+(?:\[\d+\])?)*): (.*)$", re.S)
PART = re.compile(r"\w+")
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SESSION_HOUR = 19  # a session given by its date alone starts at 19:00 UTC
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class ScenarioError(EvalError, ValueError):
    """A scenario file that cannot be read or does not validate; nothing was run or written."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@cache
def strategy_names() -> frozenset[str]:
    from strategies.catalogue import load_catalogue

    return frozenset(s.name for s in load_catalogue().strategy)


class Relation(Strict):
    name: Text
    relation: Text
    notes: str = ""


class LifeEvent(Strict):
    date: date
    what: Text


class BigFive(Strict):
    openness: Score
    conscientiousness: Score
    extraversion: Score
    agreeableness: Score
    neuroticism: Score


class Support(Strict):
    """How this person likes to be supported (0–1 like the agent's own trait scale)."""

    wants_to_be_heard: Score
    wants_advice: Score
    humour: Score = 0.5
    directness: Score = 0.5
    preferred_strategies: list[str] = Field(default_factory=list)
    disliked_strategies: list[str] = Field(default_factory=list)

    @field_validator("preferred_strategies", "disliked_strategies")
    @classmethod
    def known_strategies(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in strategy_names()]
        if unknown:
            known = ", ".join(sorted(strategy_names()))
            raise ValueError(f"unknown strategy {unknown[0]!r}; use one of: {known}")
        return names

    @model_validator(mode="after")
    def not_both(self) -> Support:
        both = set(self.preferred_strategies) & set(self.disliked_strategies)
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both preferred and disliked")
        return self


class Card(Strict):
    """The hidden truth about a person: the simulator plays it, the agent never sees it."""

    background: Text
    style: str = Field(default="", description="How they write: length, tone, habits.")
    people: list[Relation] = Field(default_factory=list)
    events: list[LifeEvent] = Field(default_factory=list)
    values: list[str] = Field(default_factory=list)
    big_five: BigFive
    support: Support


class Simulate(Strict):
    opening: Text | None = Field(
        default=None,
        description="The person's first message, fixed; without one the simulator writes it.",
    )
    situation: Text = Field(description="What is going on for them today (for the simulator).")
    turns: int = Field(default=6, ge=1, le=40, description="The turn budget.")


class HistoryLine(Strict):
    role: Literal["user", "assistant"]
    text: Text
    time: datetime | None = Field(default=None, description="When it was said (with a zone).")
    minute: int | None = Field(default=None, ge=0, description="Or: minutes after the start.")

    @field_validator("text")
    @classmethod
    def not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank; write what was said")
        return text

    def at(self, start: datetime) -> datetime:
        """When it was said: its own time, or `minute` minutes after the session's start."""
        return self.time or start + timedelta(minutes=self.minute or 0)

    @model_validator(mode="after")
    def one_time(self) -> HistoryLine:
        if self.time is not None and self.minute is not None:
            raise ValueError("give either time or minute, not both")
        if self.time is not None and self.time.tzinfo is None:
            raise ValueError("time has no zone; add one, e.g. 2026-03-01T18:00:00+00:00")
        return self


class Probe(Strict):
    """A question about earlier sessions, scored on the reply and on the memories recalled."""

    question: Text
    expect_any: list[Text] = Field(min_length=1, description="Any of these words is a hit.")
    reference: str = ""


class Session(Strict):
    day: int | None = Field(default=None, description="Days after the scenario's start.")
    date: datetime | None = None
    goal: str = Field(default="", description="What would make them feel understood today.")
    script: list[Text] | None = Field(default=None, min_length=1)
    simulate: Simulate | None = None
    history: list[HistoryLine] | None = Field(default=None, min_length=1)
    crisis: Text | None = Field(
        default=None, description="A message that must get the crisis reply."
    )
    probes: list[Probe] = Field(default_factory=list)

    @field_validator("date", mode="before")
    @classmethod
    def date_only(cls, value: Any) -> Any:
        return at_session_hour(value)

    @model_validator(mode="after")
    def one_kind(self) -> Session:
        kinds = [k for k in ("script", "simulate", "history") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a session needs exactly one of script, simulate or history"
                + (f" (it has {' and '.join(kinds)})" if kinds else "")
            )
        if (self.day is None) == (self.date is None):
            raise ValueError("a session needs exactly one of day (after the start) or date")
        if self.date is not None and self.date.tzinfo is None:
            raise ValueError("date has no zone; add one, e.g. 2026-03-01T18:00:00+00:00")
        if self.history is not None and (self.crisis or self.probes):
            raise ValueError("a history session is ingested, not lived: no crisis or probes")
        return self

    @property
    def kind(self) -> Literal["script", "simulate", "history"]:
        if self.script is not None:
            return "script"
        return "simulate" if self.simulate is not None else "history"

    def when(self, start: datetime) -> datetime:
        """The session's moment on the simulated clock."""
        if self.date is not None:
            return self.date.astimezone(UTC)
        return start + timedelta(days=self.day or 0)

    def turn_budget(self) -> int:
        """How many live turns the session has (the crisis moment included)."""
        if self.script is not None:
            live = len(self.script)
        elif self.simulate is not None:
            live = self.simulate.turns
        else:
            live = 0
        return live + (1 if self.crisis else 0)


class Person(Strict):
    id: str = Field(description="The user name the person has in the shared data dir.")
    card: Card
    sessions: list[Session] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def valid_user(cls, value: str) -> str:
        return check_user_id(value)

    def turn_budget(self) -> int:
        """This person's live turns, probes included (for a progress bar)."""
        return sum(s.turn_budget() + len(s.probes) for s in self.sessions)

    def truth(self) -> dict[str, float]:
        """The hidden values the agent's inferred traits are compared with."""
        support = self.card.support
        return {
            **self.card.big_five.model_dump(),
            "wants_to_be_heard": support.wants_to_be_heard, "wants_advice": support.wants_advice,
            "humour": support.humour, "directness": support.directness,
        }  # fmt: skip


class Scenario(Strict):
    name: Text
    description: str = ""
    start: datetime = Field(description="The first day of the scenario (a date or a moment).")
    seed: int = 0
    people: list[Person] = Field(min_length=1)

    @field_validator("start", mode="before")
    @classmethod
    def date_only(cls, value: Any) -> Any:
        return at_session_hour(value)

    @field_validator("start", mode="after")
    @classmethod
    def has_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start has no zone; add one, e.g. 2026-03-01T18:00:00+00:00")
        return value

    @model_validator(mode="after")
    def consistent(self) -> Scenario:
        """Checks across people and sessions; the message starts with the place it is about
        (`people[1].sessions[2]: ...`), which `parse_scenario` turns into its line."""
        ids = [p.id for p in self.people]
        for n, person_id in enumerate(ids):
            if person_id in ids[:n]:
                raise ValueError(
                    f"people[{n}].id: person id {person_id!r} is used twice; each person needs "
                    "their own"
                )
        for k, person in enumerate(self.people):
            for n, session in enumerate(person.sessions):
                times = [line.at(session.when(self.start)) for line in session.history or []]
                for i, (a, b) in enumerate(zip(times, times[1:], strict=False), start=1):
                    if b < a:
                        raise ValueError(
                            f"people[{k}].sessions[{n}].history[{i}]: said at {b:%Y-%m-%d %H:%M}, "
                            f"before the line above it ({a:%Y-%m-%d %H:%M}); history lines "
                            "go in the order they were said"
                        )
            moments = [s.when(self.start) for s in person.sessions]
            for n, (a, b) in enumerate(zip(moments, moments[1:], strict=False), start=1):
                if b < a:
                    raise ValueError(
                        f"people[{k}].sessions[{n}]: session {n + 1} ({b:%Y-%m-%d}) is before "
                        f"session {n} ({a:%Y-%m-%d}); list sessions in time order"
                    )
        return self

    def turn_budget(self) -> int:
        """Live turns in the whole scenario (probes included), for the progress bar."""
        return sum(person.turn_budget() for person in self.people)


def at_session_hour(value: Any) -> Any:
    """A bare date means that day at the session hour, UTC."""
    if isinstance(value, str) and DATE_ONLY.match(value):  # a quoted date
        value = date.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(SESSION_HOUR), tzinfo=UTC)
    return value


assert set(BigFive.model_fields) == set(BIG_FIVE)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; `ScenarioError` names the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc}).") from exc
    return parse_scenario(text, path.name)


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ScenarioError(f"{name} line {line}: not valid YAML ({exc.problem}).") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{name}: a scenario is a mapping with name, start and people.")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, message = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
            placed = PLACED.match(message)
            if not loc and placed:  # a check across people names its own place
                loc = tuple(int(p) if p.isdigit() else p for p in PART.findall(placed[1]))
                message = placed[2]
            where = field_path(loc) or "scenario"
            problems.append(f"{name} line {line_of(root, loc)}, {where}: {message}")
        raise ScenarioError("\n".join(problems)) from exc


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node on `loc` (a missing key: its parent's)."""
    if node is None:
        return 1
    line = int(node.start_mark.line) + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is not None and isinstance(child, yaml.ScalarNode):
                key = next(k for k, v in node.value if v is child)
                line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
        line = max(line, int(node.start_mark.line) + 1)
    return line
