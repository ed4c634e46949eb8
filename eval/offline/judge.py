"""The LLM judge: rates a reply on an empathy rubric, or compares two replies, blind to the system.

The judge is a model of its own (an OpenAI-compatible endpoint or an embedded GGUF in the
`judge` llama.cpp context), never the agent under test. Each rubric is a pydantic schema whose
first field is `criteria` (what the judge checked and saw), so the scores come after the
evidence (`eval.offline.rubrics`).

Rubrics:
- `likert`: persona-conditioned Likert 1-5 for affective, cognitive and overall empathy, the
  scales of Roshanaei et al.'s study of human and GPT-4o empathy ratings.
- `epitome`: EPITOME (Sharma et al., EMNLP 2020): emotional reactions, interpretations and
  explorations, each 0 none / 1 weak / 2 strong.
- `personaemp`: resonation, expression and reception 1-5, after PersonaEmp (arXiv 2606.00728).
  We could not read that paper's own definitions; these are our reading of the names.

`Judge.compare` asks twice with the two replies' positions swapped. An inconsistent pair (the
answer follows the position, not the reply) counts as a tie: position bias is not a preference.

Exceptions (`eval.errors`): `JudgeError` (an `EvalError`) when the judge's model cannot be
built or run; `NoVerdictError` (a `JudgeError`) when it gives no valid verdict twice. Messages
name the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, SecretStr

from agent.errors import LLMError, StructuredOutputError
from agent.llm import (
    StructuredMethod,
    build_chat_model,
    invoke_structured,
    model_label,
    structured_method,
)
from agent.schemas import LLMCall
from eval.errors import JudgeError, NoVerdictError
from eval.offline.rubrics import (
    NO_PERSONA,
    PAIR,
    PAIR_TASK,
    RATER,
    PairVerdict,
    Rubric,
    get_rubric,
)

if TYPE_CHECKING:
    from agent.settings import Settings

NODE = "judge"
MAX_TOKENS = 400  # 4 criteria of 160 characters and the scores fit in ~250 tokens
CONTEXT_CHARS, RESPONSE_CHARS, PERSONA_CHARS = 3000, 2000, 1200  # fit a 4096-token context
T = TypeVar("T", bound=BaseModel)


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
