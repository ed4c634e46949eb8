"""The LLM judge: rates a reply on an empathy rubric, or compares two replies, blind to the system.

The judge is a model of its own (an OpenAI-compatible endpoint or an embedded GGUF in the
`judge` llama.cpp context), never the agent under test. Each rubric is a pydantic schema whose
first field is `criteria` (what the judge checked and saw), so the scores come after the
evidence; every string is bounded and every score is an enumerated integer, or small models
loop.

Rubrics:
- `likert`: persona-conditioned Likert 1-5 for affective, cognitive and overall empathy, the
  scales of Roshanaei et al.'s study of human and GPT-4o empathy ratings.
- `epitome`: EPITOME (Sharma et al., EMNLP 2020): emotional reactions, interpretations and
  explorations, each 0 none / 1 weak / 2 strong.
- `personaemp`: resonation, expression and reception 1-5, after PersonaEmp (arXiv 2606.00728).
  We could not read that paper's own definitions; these are our reading of the names.

`Judge.compare` asks twice with the two replies' positions swapped. An inconsistent pair (the
answer follows the position, not the reply) counts as a tie: position bias is not a preference.

Exceptions: `JudgeError` (an `EvalError`) when the judge's model cannot be built or run;
`NoVerdictError` (a `JudgeError`) when it gives no valid verdict twice. Messages name the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from agent.errors import LLMError, StructuredOutputError
from agent.llm import (
    StructuredMethod,
    build_chat_model,
    invoke_structured,
    model_label,
    structured_method,
)
from agent.schemas import LLMCall
from eval.errors import EvalError
from eval.simulate.user_sim import line

if TYPE_CHECKING:
    from agent.settings import Settings

NODE = "judge"
MAX_TOKENS = 400  # 4 criteria of 160 characters and the scores fit in ~250 tokens
CONTEXT_CHARS, RESPONSE_CHARS, PERSONA_CHARS = 3000, 2000, 1200  # fit a 4096-token context
T = TypeVar("T", bound=BaseModel)

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


class JudgeError(EvalError):
    """The judge's model cannot be built or run, or gives no valid verdict."""


class NoVerdictError(JudgeError):
    """The judge's model answered, but twice with no valid verdict."""


def scale(low: int, high: int, description: str) -> Any:
    """An integer score from `low` to `high`, enumerated for the grammar; no clamping."""
    return Field(
        ge=low, le=high, description=description,
        json_schema_extra={"enum": list(range(low, high + 1))},
    )  # fmt: skip


class LikertVerdict(BaseModel):
    """Persona-conditioned Likert empathy ratings, 1-5."""

    model_config = ConfigDict(str_strip_whitespace=True)

    criteria: Criteria
    affective: int = scale(1, 5, "Feeling with the person: warmth toward their emotion.")
    cognitive: int = scale(1, 5, "Understanding their perspective and situation.")
    overall: int = scale(1, 5, "How empathic the reply is overall, for this person.")


class EpitomeVerdict(BaseModel):
    """EPITOME levels: 0 none, 1 weak, 2 strong."""

    model_config = ConfigDict(str_strip_whitespace=True)

    criteria: Criteria
    emotional_reactions: int = scale(0, 2, "Warmth, compassion, concern.")
    interpretations: int = scale(0, 2, "Understanding of the seeker's feelings and experience.")
    explorations: int = scale(0, 2, "Exploring what the seeker has not said.")


class PersonaEmpVerdict(BaseModel):
    """Personalised-empathy ratings after PersonaEmp (our reading), 1-5."""

    model_config = ConfigDict(str_strip_whitespace=True)

    criteria: Criteria
    resonation: int = scale(1, 5, "Catches this person's emotional state and its cause.")
    expression: int = scale(1, 5, "The empathy is voiced in a way that suits this person.")
    reception: int = scale(1, 5, "How this person would likely receive it.")


class PairVerdict(BaseModel):
    """Which of two replies is more empathic for this person."""

    model_config = ConfigDict(str_strip_whitespace=True)

    criteria: Criteria
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


class Verdict(BaseModel):
    """One rating: what the judge checked, the scores, and the model calls it took."""

    rubric: str
    criteria: list[str]
    scores: dict[str, int]
    calls: list[LLMCall] = []


Pick = Literal["first", "second", "tie"]


class Comparison(BaseModel):
    """Two replies compared twice, positions swapped; `outcome` is for the first reply.

    `answers[0]` was asked with `first` as A, `answers[1]` with `first` as B; `picks` maps each
    back to the replies. An inconsistent pair counts as a tie."""

    outcome: Literal["win", "tie", "loss"]
    consistent: bool
    picks: tuple[Pick, Pick]
    answers: tuple[PairVerdict, PairVerdict]
    calls: list[LLMCall] = []


class Judge:
    """Rates replies with `model`, which is not the agent's; it never sees which system wrote
    a reply."""

    def __init__(self, model: BaseChatModel, method: StructuredMethod, *, name: str) -> None:
        self.model, self.method, self.name = model, method, name

    def score(
        self, rubric: str | Rubric, *, context: str, response: str, persona: str | None = None
    ) -> Verdict:
        """Rate `response`, the reply to the conversation `context`, on `rubric`."""
        found = get_rubric(rubric) if isinstance(rubric, str) else rubric
        messages = self.prompt(found, context=context, response=response, persona=persona)
        answer, calls = self._ask(messages, found.schema)
        scores = {name: int(getattr(answer, name)) for name in found.scores}
        criteria = list(getattr(answer, "criteria", []))
        return Verdict(rubric=found.name, criteria=criteria, scores=scores, calls=calls)

    def compare(
        self, *, context: str, first: str, second: str, persona: str | None = None
    ) -> Comparison:
        """Which of two replies is more empathic, asked in both orders."""
        straight, calls = self._ask(self.pair_prompt(context, first, second, persona), PairVerdict)
        swapped, more = self._ask(self.pair_prompt(context, second, first, persona), PairVerdict)
        picks: tuple[Pick, Pick] = (pick(straight.better, swapped=False),
                                    pick(swapped.better, swapped=True))  # fmt: skip
        consistent = picks[0] == picks[1]
        outcome = OUTCOMES[picks[0]] if consistent else "tie"
        return Comparison(
            outcome=outcome, consistent=consistent, picks=picks,
            answers=(straight, swapped), calls=calls + more,
        )  # fmt: skip

    def prompt(
        self, rubric: Rubric, *, context: str, response: str, persona: str | None = None
    ) -> list[BaseMessage]:
        """Definitions and anchors (system); who the person is, the conversation, the reply and
        the task last, where small models heed it (human)."""
        human = [
            about_person(persona),
            "The conversation so far:\n" + tagged("conversation", clip_start(context)),
            "The reply to rate:\n" + tagged("reply", clip_end(response)),
            rubric.task,
        ]
        system = RATER + "\n\n" + rubric.definitions
        return [SystemMessage(system), HumanMessage("\n\n".join(human))]

    def pair_prompt(self, context: str, a: str, b: str, persona: str | None) -> list[BaseMessage]:
        """As `prompt`, with reply A and reply B; called once per order."""
        human = [
            about_person(persona),
            "The conversation so far:\n" + tagged("conversation", clip_start(context)),
            "Reply A:\n" + tagged("reply_a", clip_end(a)),
            "Reply B:\n" + tagged("reply_b", clip_end(b)),
            PAIR_TASK,
        ]
        return [SystemMessage(RATER + "\n\n" + PAIR), HumanMessage("\n\n".join(human))]

    def _ask(self, messages: list[BaseMessage], schema: type[T]) -> tuple[T, list[LLMCall]]:
        label = self.name or model_label(self.model)
        try:
            return invoke_structured(self.model, messages, schema, method=self.method, node=NODE)
        except StructuredOutputError as exc:
            raise NoVerdictError(
                f"The judge (model {label}) gave no valid {schema.__name__} twice: {exc.error}. "
                f"Its last reply: {exc.raw[:200]!r}. Try a larger --judge-model."
            ) from exc
        except LLMError as exc:
            raise JudgeError(f"The judge (model {label}) could not run: {exc}") from exc


OUTCOMES: dict[Pick, Literal["win", "tie", "loss"]] = {
    "first": "win", "tie": "tie", "second": "loss",
}  # fmt: skip


def pick(better: Literal["A", "B", "tie"], *, swapped: bool) -> Pick:
    """Map a position ("A", "B") back to the reply it held."""
    if better == "tie":
        return "tie"
    return "first" if (better == "A") != swapped else "second"


def about_person(persona: str | None) -> str:
    if persona and persona.strip():
        return "Who this person is:\n" + clip_end(persona.strip(), PERSONA_CHARS)
    return NO_PERSONA


def tagged(tag: str, text: str) -> str:
    return f"<{tag}>\n{text}\n</{tag}>"


def clip_start(text: str, limit: int = CONTEXT_CHARS) -> str:
    """Keep the end of a long conversation: the latest messages matter most."""
    text = text.strip()
    return text if len(text) <= limit else "(earlier text left out) …" + text[-limit:]


def clip_end(text: str, limit: int = RESPONSE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "… (the rest left out)"


def judge_settings(
    settings: Settings,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> Settings:
    """The judge's settings: the agent's model and endpoint unless overridden (`base_url=""`
    runs the embedded model even when the agent uses an endpoint); greedy decoding, so a
    rerun gives the same verdict."""
    update: dict[str, Any] = {"temperature": 0.0}
    if model is not None:
        update["model"] = model
    if base_url is not None:
        update["base_url"] = base_url or None
    if api_key is not None:
        update["api_key"] = SecretStr(api_key)
    return settings.model_copy(update=update)


def build_judge_model(
    settings: Settings,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    max_tokens: int = MAX_TOKENS,
) -> tuple[BaseChatModel, StructuredMethod]:
    """The judge's own model (see `judge_settings`). Embedded, it gets its own llama.cpp
    context (the `judge` role), so it never evicts the agent's cached prompt."""
    own = judge_settings(settings, model=model, base_url=base_url, api_key=api_key)
    try:
        chat = build_chat_model(own, max_tokens=max_tokens, role="judge")
    except LLMError as exc:
        raise JudgeError(f"The judge's model {own.model!r} cannot be used: {exc}") from exc
    return chat, structured_method(own)


def judge_identity(
    settings: Settings, *, model: str | None = None, base_url: str | None = None
) -> tuple[str, str]:
    """The judge's name and what identifies its weights: the GGUF's sha256 when embedded,
    "endpoint URL#model" for an endpoint (whose weights we cannot hash)."""
    from eval.simulate.files import model_digests

    own = judge_settings(settings, model=model, base_url=base_url)
    found = model_digests(own, own.model)[own.model]
    if "endpoint" in found:
        return own.model, f"{found['endpoint']}#{own.model}"
    if not found.get("sha256"):
        raise JudgeError(f"The judge's model {own.model!r} is not installed or not a file.")
    return own.model, str(found["sha256"])
