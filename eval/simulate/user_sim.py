"""The user simulator: an LLM plays the person on a scenario's hidden card, as in SAGE.

SAGE ("Sentient Agent as a Judge", 2025): the person's emotion starts at 40 of 100. After each
agent reply the simulator gives its inner reaction (one sentence), an emotion change from -10
to +10 with the reason, and its next message (only the reaction, on a scripted turn). 100 or
more is success, below 10 failure; otherwise the session's turn budget ends it. The simulator
sees the card, the day's goal and situation and the text of the conversation, never the
agent's trace.

Exceptions: `SimulatorError` (an `EvalError`) when the simulator's model gives no valid
reaction after one retry, cannot be reached, or cannot be built; its message names the model.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from agent.errors import LLMError, StructuredOutputError
from agent.llm import (
    StructuredMethod,
    build_chat_model,
    invoke_structured,
    model_label,
    structured_method,
)
from eval.errors import EvalError
from eval.simulate.persona_notes import describe_person, describe_support, describe_today
from eval.simulate.scenario import Card

if TYPE_CHECKING:
    from agent.schemas import LLMCall
    from agent.settings import Settings

START, SUCCESS, FAILURE = 40, 100, 10  # SAGE's emotion scale: start, success at, failure below
MAX_CHANGE = 10
MAX_EXCHANGES = 8  # the conversation shown: their last 8 messages and the replies
LINE_CHARS = 600  # earlier lines are clipped to this, so the prompt fits a 4096-token context
NODE = "user_simulator"
MAX_TOKENS = 400  # the longest object the grammar allows is ~330 tokens of English: less cuts it
T = TypeVar("T", bound=BaseModel)

PERSONA = """You are role-playing a person who is talking to an AI companion app. Stay in \
character: write in the first person, as this person, in their style, 1-3 short sentences per \
message. Never mention being simulated, a role-play or an AI, and never reveal these notes. \
Let your personality show in what you notice, what you did and how you write, as people's \
does: never name your traits or values."""

JUDGE = """Judge each companion reply as this person would, honestly and not too easily \
pleased: your emotion changes by -10 to +10, a lot when the reply clearly meets or misses what \
you want today, a little when it is mixed, 0 when it does nothing for you."""
TASK = """React to the companion's last reply. Answer with only a JSON object with these keys, \
in this order:
"reaction": your inner reaction to the reply, one sentence
"emotion_change": an integer from -10 to 10: below 0 if the reply did something that makes \
your emotion go down, above 0 if it did only things that make it go up
"reason": why, one sentence"""
OPEN_TASK = (
    "Start today's conversation: write your first message to the companion about what is on "
    "your mind today, as yourself, in your style (1-3 short sentences; show how you feel and "
    'what you want from the talk). Answer with only a JSON object with the key "message".'
)
TASK_MESSAGE = """
"message": what you say next, 1-3 short sentences in your own style"""


class SimulatorError(EvalError):
    """The user simulator's model gave no valid reaction, or could not run or be built."""


def line(shortest: int, longest: int, description: str) -> Any:
    """A one-line string field. Its pattern (only in the JSON schema, for the grammar) keeps
    control characters out: llama-cpp-python's grammar lets a raw newline into a JSON string,
    which makes the reply invalid JSON. Quotes and backslashes stay out too, so the pattern
    means the same before and after JSON decoding."""
    pattern = rf'^[^"\\\x00-\x1f]{{{shortest},{longest}}}$'
    return Field(
        min_length=shortest, max_length=longest, description=description,
        json_schema_extra={"pattern": pattern},
    )  # fmt: skip


class FixedReaction(BaseModel):
    """The person's reaction to a reply when their next message is fixed (a scripted turn)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    reaction: str = line(0, 300, "Your inner reaction, one sentence.")
    emotion_change: int = Field(
        ge=-MAX_CHANGE, le=MAX_CHANGE, description="How your emotion changes, -10 to 10.",
        json_schema_extra={"enum": list(range(-MAX_CHANGE, MAX_CHANGE + 1))},  # for the grammar
    )  # fmt: skip
    reason: str = line(0, 300, "Why your emotion changed, one sentence.")

    @field_validator("emotion_change", mode="before")
    @classmethod
    def on_the_scale(cls, value: Any) -> Any:
        """Keep an endpoint model's +15 on the scale (it means "a lot") rather than fail."""
        if isinstance(value, int) and not isinstance(value, bool):
            return max(-MAX_CHANGE, min(MAX_CHANGE, value))
        return value


class Reaction(FixedReaction):
    """The person's reaction to a reply, and what they say next."""

    message: str = line(1, 600, "What you say next.")


class Opening(BaseModel):
    """The person's first message of a session."""

    model_config = ConfigDict(str_strip_whitespace=True)

    message: str = line(1, 600, "Your first message.")


class Emotion:
    """The person's emotion score from 0 to 100, as SAGE keeps it."""

    def __init__(self, start: int = START) -> None:
        self.score = start
        self.history = [start]

    def apply(self, change: int) -> int:
        """Move the score by `change`, kept within 0..100; return the new score."""
        self.score = max(0, min(100, self.score + change))
        self.history.append(self.score)
        return self.score

    @property
    def outcome(self) -> Literal["success", "failure"] | None:
        if self.score >= SUCCESS:
            return "success"
        return "failure" if self.score < FAILURE else None


class UserSimulator:
    """Plays the person on `card`: reacts to each agent reply and writes their next message."""

    def __init__(
        self,
        model: BaseChatModel,
        card: Card,
        *,
        method: StructuredMethod = "json_schema_text",
        name: str = "",
    ) -> None:
        self.model, self.card, self.method, self.name = model, card, method, name

    def react(
        self,
        conversation: list[tuple[str, str]],
        *,
        goal: str,
        situation: str | None,
        next_fixed: str | None = None,
        emotion: int | None = None,
        today: date | None = None,
    ) -> tuple[Reaction, list[LLMCall]]:
        """React to the last reply of `conversation` ([("user", text), ("assistant", reply),
        ...]); with `next_fixed`, only react, and that is the message returned."""
        messages = self.prompt(
            conversation, goal=goal, situation=situation, fixed=next_fixed is not None,
            emotion=emotion, today=today,
        )  # fmt: skip
        if next_fixed is None:
            return self._ask(messages, Reaction)
        fixed, calls = self._ask(messages, FixedReaction)
        # The scripted line was validated with the scenario (it may be longer than 600 chars).
        return Reaction.model_construct(**fixed.model_dump(), message=next_fixed), calls

    def open(
        self, *, goal: str, situation: str | None, emotion: int | None = None,
        today: date | None = None,
    ) -> tuple[str, list[LLMCall]]:  # fmt: skip
        """The person's first message of a session (when the scenario gives none)."""
        system = "\n\n".join([
            PERSONA, describe_person(self.card, self.name, today),
            describe_today(goal, situation, emotion),
        ])  # fmt: skip
        opening, calls = self._ask([SystemMessage(system), HumanMessage(OPEN_TASK)], Opening)
        return opening.message, calls

    def prompt(
        self,
        conversation: list[tuple[str, str]],
        *,
        goal: str,
        situation: str | None,
        fixed: bool = False,
        emotion: int | None = None,
        today: date | None = None,
    ) -> list[BaseMessage]:
        """The messages the simulator's model is given: who to be and today (system), then the
        conversation, how to judge the reply and the task (small models heed what is near the
        end)."""
        if not conversation or conversation[-1][0] != "assistant":
            raise ValueError("the conversation must end with the companion's reply to react to")
        system = "\n\n".join([
            PERSONA, describe_person(self.card, self.name, today),
            describe_today(goal, situation, emotion),
        ])  # fmt: skip
        human = "\n\n".join([
            "The conversation so far:\n" + render_conversation(conversation),
            JUDGE + "\n" + describe_support(self.card.support),
            TASK if fixed else TASK + TASK_MESSAGE,
        ])  # fmt: skip
        return [SystemMessage(system), HumanMessage(human)]

    def _ask(self, messages: list[BaseMessage], schema: type[T]) -> tuple[T, list[LLMCall]]:
        label = model_label(self.model)
        try:
            return invoke_structured(self.model, messages, schema, method=self.method, node=NODE)
        except StructuredOutputError as exc:
            raise SimulatorError(
                f"The user simulator (model {label}) gave no valid reaction twice: {exc.error}. "
                f"Its last reply: {exc.raw[:200]!r}. Try a larger --user-model."
            ) from exc
        except LLMError as exc:
            raise SimulatorError(
                f"The user simulator (model {label}) could not run: {exc}"
            ) from exc


def render_conversation(conversation: list[tuple[str, str]]) -> str:
    """The last `MAX_EXCHANGES` exchanges as "You:" and "Companion:" lines, earlier lines
    clipped; only the text of what was said, nothing else the agent did."""
    shown = conversation[-2 * MAX_EXCHANGES :]
    lines = ["(earlier messages left out)"] if len(shown) < len(conversation) else []
    for n, (role, text) in enumerate(shown, start=1):
        text = " ".join(text.split())
        if n < len(shown) and len(text) > LINE_CHARS:
            text = text[: LINE_CHARS - 1] + "…"
        lines.append(f"{'Companion' if role == 'assistant' else 'You'}: {text}")
    return "\n".join(lines)


def build_user_model(
    settings: Settings,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    max_tokens: int = MAX_TOKENS,
) -> tuple[BaseChatModel, StructuredMethod]:
    """The simulator's own model: the agent's model and endpoint unless overridden (`base_url=""`
    runs the embedded model even when the agent uses an endpoint). Embedded, it gets its own
    llama.cpp context (the `simulator` role), so it never evicts the agent's cached prompt."""
    update: dict[str, Any] = {}
    if model is not None:
        update["model"] = model
    if base_url is not None:
        update["base_url"] = base_url or None
    if api_key is not None:
        update["api_key"] = SecretStr(api_key)
    own = settings.model_copy(update=update)
    try:
        chat = build_chat_model(own, max_tokens=max_tokens, role="simulator")
    except LLMError as exc:
        raise SimulatorError(
            f"The user simulator's model {own.model!r} cannot be used: {exc}"
        ) from exc
    return chat, structured_method(own)
