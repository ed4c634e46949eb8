"""The judge's rubrics: each a pydantic schema whose first field is `criteria` (what the judge
checked and saw), so the scores come after the evidence, with its definitions and anchors (the
system prompt) and its task. Every string is bounded and every score an enumerated integer, or
small models loop. `eval.offline.judge` asks them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from eval.errors import JudgeError
from eval.simulate.user_sim import line

RATER = """You judge how empathic replies in a support conversation are. You judge only the \
replies, never the person's message, and you do not know who or what wrote them. Be strict: \
generic phrases that would fit any message earn little; credit what is specific to this \
person and what they said."""

LIKERT = """Rate three scales from 1 to 5, for this particular person:
- affective: feeling with the person: warmth, care and emotional attunement toward what they \
feel.
- cognitive: understanding their perspective and situation: what happened, why it matters to \
them, how they see it.
- overall: how empathic the reply is as a whole, for this person.

Anchors, the same for each scale:
1 = none: dismissive, cold, off topic or wrong about them
2 = a little: generic or formulaic ("sorry to hear that", "I understand")
3 = some: fitting but partial or shallow
4 = clear: specific to what they said and felt
5 = exceptional: fully attuned to this person, nothing generic"""

EPITOME = """Rate EPITOME's three mechanisms (Sharma et al., 2020), each 0 none, 1 weak or \
2 strong:
- emotional_reactions: the reply expresses warmth, compassion or concern for the seeker.
  0: none. 1 weak: generic or only alluded to ("I'm sorry", "everything will be fine"). \
2 strong: specific, names the feeling the reply has for this seeker's situation ("I feel \
really sad that your dad didn't come").
- interpretations: the reply communicates an understanding of the seeker's feelings or \
experience.
  0: none. 1 weak: a generic "I understand" or "I know how you feel". 2 strong: a specific \
inference about their feelings or experience ("that must have felt like being abandoned \
again"), or a relatable experience of the replier's own ("I also lost my job last year").
- explorations: the reply explores what the seeker has not said, to understand them better.
  0: none. 1 weak: a generic question ("What happened?"). 2 strong: a specific question about \
their feelings or experience ("Are you feeling alone since the move?").
Advice, information and opinions alone earn 0 on all three."""

PERSONAEMP = """Rate personalised empathy on three scales from 1 to 5:
- resonation: the reply catches this person's emotional state and its cause.
- expression: the empathy is voiced in a way that suits this person: tone, length, \
directness, how much advice or feeling they want.
- reception: how this particular person, given their traits and preferences, would likely \
receive the reply.

Anchors, the same for each scale:
1 = misses: wrong about them, or would put this person off
2 = weak: generic, could be said to anyone
3 = adequate: fits in part
4 = good: clearly fitted to this person
5 = excellent: exactly what this person needs, in their way"""

PAIR = """You compare two replies to the same message and say which one is more empathic \
for this particular person: which one better feels with them (warmth toward their emotion), \
understands their perspective and situation, and would be better received by them. Length \
and polish are not empathy; the order in which the replies are shown means nothing. Say \
"tie" only when neither is better."""

NO_PERSONA = "No notes about this person are given: judge by what the conversation shows."

CRITERIA_TASK = """First list 1 to 4 criteria: each one short sentence in your own words \
(at most 160 characters; do not copy the texts) saying what you checked and what you saw in \
this reply, for this person. Then give the scores. Answer with only a JSON object with these \
keys, in this order:
"criteria": the list of short sentences"""

PAIR_TASK = """Compare reply A and reply B. First list 1 to 4 criteria: each one short \
sentence in your own words (at most 160 characters; do not copy the texts) saying what you \
compared and what you saw. Then say which \
reply is more empathic for this person. Answer with only a JSON object with these keys, in \
this order:
"criteria": the list of short sentences
"better": "A", "B" or "tie\""""

Criterion = Annotated[str, line(1, 160, "One thing checked and what was seen in this reply.")]


def drop_blank(value: Any) -> Any:
    """Blank criteria are dropped (the grammar allows " ", which stripping empties; a small
    model pads the list with them); at least one real one must remain."""
    return (
        [c for c in value if not isinstance(c, str) or c.strip()]
        if isinstance(value, list)
        else value
    )


Criteria = Annotated[
    list[Criterion], BeforeValidator(drop_blank), Field(min_length=1, max_length=4)
]


def scale(low: int, high: int, description: str) -> Any:
    """An integer score from `low` to `high`, enumerated for the grammar; no clamping."""
    return Field(
        ge=low, le=high, description=description,
        json_schema_extra={"enum": list(range(low, high + 1))},
    )  # fmt: skip


class Graded(BaseModel):
    """A verdict's first field: what the judge checked and saw, so the scores come after it."""

    model_config = ConfigDict(str_strip_whitespace=True)

    criteria: Criteria


class LikertVerdict(Graded):
    """Persona-conditioned Likert empathy ratings, 1-5."""

    affective: int = scale(1, 5, "Feeling with the person: warmth toward their emotion.")
    cognitive: int = scale(1, 5, "Understanding their perspective and situation.")
    overall: int = scale(1, 5, "How empathic the reply is overall, for this person.")


class EpitomeVerdict(Graded):
    """EPITOME levels: 0 none, 1 weak, 2 strong."""

    emotional_reactions: int = scale(0, 2, "Warmth, compassion, concern.")
    interpretations: int = scale(0, 2, "Understanding of the seeker's feelings and experience.")
    explorations: int = scale(0, 2, "Exploring what the seeker has not said.")


class PersonaEmpVerdict(Graded):
    """Personalised-empathy ratings after PersonaEmp (our reading), 1-5."""

    resonation: int = scale(1, 5, "Catches this person's emotional state and its cause.")
    expression: int = scale(1, 5, "The empathy is voiced in a way that suits this person.")
    reception: int = scale(1, 5, "How this person would likely receive it.")


class PairVerdict(Graded):
    """Which of two replies is more empathic for this person."""

    better: Literal["A", "B", "tie"]


@dataclass(frozen=True)
class Rubric:
    """A rubric: its schema, its definitions and anchors (system prompt) and the task."""

    name: str
    schema: type[BaseModel]
    definitions: str

    @property
    def scores(self) -> tuple[str, ...]:
        return tuple(name for name in self.schema.model_fields if name != "criteria")

    @property
    def task(self) -> str:
        """The task, ending with each key and its range, read from the schema."""
        keys = []
        for name in self.scores:
            enum = self.schema.model_json_schema()["properties"][name]["enum"]
            keys.append(f'"{name}": an integer from {min(enum)} to {max(enum)}')
        return "\n".join([CRITERIA_TASK, *keys])


RUBRICS: dict[str, Rubric] = {
    "likert": Rubric("likert", LikertVerdict, LIKERT),
    "epitome": Rubric("epitome", EpitomeVerdict, EPITOME),
    "personaemp": Rubric("personaemp", PersonaEmpVerdict, PERSONAEMP),
}


def rubric_names() -> list[str]:
    return list(RUBRICS)


def get_rubric(name: str) -> Rubric:
    """The rubric called `name`; an error listing the known ones if there is none."""
    try:
        return RUBRICS[name]
    except KeyError:
        known = ", ".join(RUBRICS)
        raise JudgeError(f"Unknown rubric {name!r}; the known rubrics are: {known}.") from None


def parse_rubrics(text: str) -> list[Rubric]:
    """Rubrics from a comma-separated list such as "likert,epitome" (for `--rubrics`)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise JudgeError(f"No rubric given; the known rubrics are: {', '.join(RUBRICS)}.")
    return [get_rubric(name) for name in dict.fromkeys(names)]
