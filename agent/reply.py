"""Stream a reply through the reply check, and account for the calls.

The model's tokens reach the person only through `Gate`:
- the head of the reply (its first sentence, or its first dozen words) is held back until it
  is known not to be JSON, the analysis, or a forbidden stock opener; a stock opener sentence
  is dropped and the rest shown;
- then tokens flow as they come; a reply that starts looping is stopped at the repeat (the
  generation ends there too, which saves the tokens a loop would burn).

After the stream, `check_reply` looks at the whole reply (a repeat of an earlier reply, a copied
exemplar, the person's own voice, a stance against the message's valence). A reply with a
problem is written again once, told why; if that fails too, a plain safe reply is used and the
turn says it was degraded. Front ends show the final reply when the turn ends, so a rewritten
reply replaces what was streamed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from agent.llama import ChatLlamaCpp
from agent.llm import model_call_errors
from agent.reply_check import (
    ANALYSIS_FIELDS,
    CONDOLENCE_OPENER,
    NOTE_LIKE,
    POSITIVE,
    STOCK_OPENERS,
    Finding,
    Problem,
    banned_openers,
    check_reply,
    loop_of,
    repair_opener,
    words,
)
from agent.schemas import LLMCall

Emit = Callable[[str], None]
HEAD_WORDS = 12
RETRY_TASK = """\
Your last reply could not be used ({reasons}). Write the reply to the person again: plain \
text, 2 to 4 short sentences in your own words, speaking to them (not as them), no JSON."""
FALLBACKS = {
    "positive": [
        "That sounds like something worth holding on to. What has it meant for you?",
        "That is lovely to hear. How are you marking it?",
        "It sounds like this matters to you. What made it possible?",
    ],
    "other": [
        "I'm here and listening. Could you tell me a little more about what's going on?",
        "That sounds like a lot to hold. What feels hardest about it right now?",
        "Thank you for telling me. What would help most at this moment?",
        "I'm with you in this. How long has it been weighing on you?",
    ],
}


@dataclass
class ReplyChecks:
    """What the check compares a reply with."""

    message: str
    earlier_replies: Sequence[str] = ()
    exemplars: Sequence[str] = ()
    instructions: Sequence[str] = ()  # the system prompt: a reply never recites it
    valence: float | None = None
    enabled: bool = True


@dataclass
class Gate:
    """Decide, token by token, what of a streaming reply the person sees."""

    emit: Emit | None
    valence: float | None = None
    checking: bool = True  # False: show everything as it comes (the single-call baseline)
    hold_head: bool = True  # False: the decoding already bans JSON and stock openers
    raw: str = ""
    kept: str = ""
    head_done: bool = False

    def __post_init__(self) -> None:
        self.head_done = self.checking and not self.hold_head

    found: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def feed(self, chunk: str) -> bool:
        """Take the next chunk; return False when generation should stop."""
        self.raw += chunk
        if not self.checking:
            self.kept += chunk
            self._show(chunk)
            return True
        if not self.head_done:
            return self._head(final=False)
        self.kept += chunk
        self._show(chunk)
        if chunk and any(mark in chunk for mark in ".!?\n") and (looped := loop_of(self.kept)):
            self._cut_loop(looped)
            return False
        return True

    def close(self) -> str:
        """The stream ended: settle a head still held back; return the reply to keep."""
        if self.checking and not self.head_done:
            self._head(final=True)
        return self.kept.strip()

    def _head(self, final: bool) -> bool:
        text = self.raw.lstrip()
        if (
            text.startswith(("{", "[", "```"))
            or ANALYSIS_FIELDS.search(text)
            or NOTE_LIKE.match(text)
        ):
            self.found.append(Finding(Problem.JSON, "the reply began as JSON or the analysis"))
            self.head_done = True
            return False
        if not final and not sentences_done(text) and len(words(text)) < HEAD_WORDS:
            return True  # still deciding
        repaired = repair_opener(text, self.valence)
        if not final and repaired == text and opens_with_stock(text, self.valence):
            return len(words(text)) < 2 * HEAD_WORDS  # wait for the words after the opener
        if repaired != text:
            self.notes.append("a stock opener was dropped")
        self.head_done, self.kept = True, repaired
        self._show(repaired)
        return True

    def _cut_loop(self, looped: str) -> None:
        kept: list[str] = []
        for sentence in split_sentences(self.kept):
            if " ".join(words(sentence)) in {" ".join(words(s)) for s in kept}:
                break
            kept.append(sentence)
        self.kept = "".join(kept).strip()
        self.notes.append(f"a loop was cut ({looped!r})")

    def _show(self, text: str) -> None:
        if self.emit is not None and text:
            self.emit(text)


def opens_with_stock(text: str, valence: float | None) -> bool:
    if STOCK_OPENERS.match(text):
        return True
    return valence is not None and valence >= POSITIVE and bool(CONDOLENCE_OPENER.match(text))


def sentences_done(text: str) -> bool:
    return any(mark in text for mark in ".!?\n") and len(words(text)) >= 3


def split_sentences(text: str) -> list[str]:
    """Sentences with their punctuation and spacing (joined, they give the text back)."""
    parts, start = [], 0
    for i, char in enumerate(text):
        if char in ".!?\n" and (i + 1 == len(text) or text[i + 1] in " \n\t\"'"):
            parts.append(text[start : i + 1])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return parts


def stream_reply(
    model: BaseChatModel, messages: Sequence[BaseMessage], *, node: str, model_name: str,
    emit: Emit | None = None, valence: float | None = None, checking: bool = True,
    earlier_replies: Sequence[str] = (),
) -> tuple[str, LLMCall, Gate]:  # fmt: skip
    """Stream the model's answer through a `Gate`; return the kept text, usage and the gate.

    On the embedded model, the decoding itself rules out JSON, the note and stock openers
    (`banned_openers`), so the gate shows the first token at once instead of holding the
    reply's first sentence back."""
    start = time.perf_counter()
    banning = checking and isinstance(model, ChatLlamaCpp)
    gate = Gate(emit, valence, checking, hold_head=not banning)
    prompt_tokens = completion_tokens = 0
    banned = banned_openers(valence, earlier_replies)
    bound = model.bind(banned_openers=banned) if banning else model
    quiet = bound.with_config(tags=[TAG_NOSTREAM])  # the gate decides what is shown
    with model_call_errors(model):  # an endpoint's failure says which endpoint and what to do
        for chunk in quiet.stream(list(messages)):
            usage = getattr(chunk, "usage_metadata", None)
            if usage:
                prompt_tokens += usage.get("input_tokens", 0)
                completion_tokens += usage.get("output_tokens", 0)
            if not gate.feed(chunk.text):
                break
    text = gate.close()
    call = LLMCall(
        node=node, model=model_name, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, seconds=time.perf_counter() - start,
    )  # fmt: skip
    return text, call, gate


def checked_reply(
    model: BaseChatModel, messages: Sequence[BaseMessage], checks: ReplyChecks, *, node: str,
    model_name: str, emit: Emit | None = None,
) -> tuple[str, list[LLMCall], list[str], list[str]]:  # fmt: skip
    """Stream a reply, check it, write it again once if needed, else fall back (with
    `checks.enabled` off: one plain streamed call, for measuring what the check catches).

    Returns (reply, calls, notes for the trace, degradations)."""
    text, call, gate = stream_reply(
        model, messages, node=node, model_name=model_name, emit=emit, valence=checks.valence,
        checking=checks.enabled, earlier_replies=checks.earlier_replies,
    )  # fmt: skip
    calls, notes = [call], list(gate.notes)
    if not checks.enabled:
        return text, calls, notes, []
    found = gate.found or check(text, checks)
    if not found:
        return text, calls, notes, []
    reasons = "; ".join(f.reason for f in found)
    notes.append(f"rewritten: {reasons}")
    retry = [*messages, SystemMessage(RETRY_TASK.format(reasons=reasons))]
    text, call, gate = stream_reply(
        model, retry, node=node, model_name=model_name, valence=checks.valence,
        earlier_replies=[*checks.earlier_replies, text],
    )  # fmt: skip
    calls.append(call)
    notes += gate.notes
    found = gate.found or check(text, checks)
    if not found:
        return text, calls, notes, []
    reasons = "; ".join(f.reason for f in found)
    return (
        fallback(checks),
        calls,
        notes,
        [f"reply check failed twice ({reasons}); a plain reply was used"],
    )


def check(text: str, checks: ReplyChecks) -> list[Finding]:
    return check_reply(
        text, message=checks.message, earlier_replies=checks.earlier_replies,
        exemplars=checks.exemplars, valence=checks.valence, instructions=checks.instructions,
    )  # fmt: skip


def fallback(checks: ReplyChecks) -> str:
    """A plain safe reply in the message's stance, not one the session has had already."""
    choices = FALLBACKS["positive" if (checks.valence or 0) >= POSITIVE else "other"]
    used = {" ".join(words(r)) for r in checks.earlier_replies}
    return next((c for c in choices if " ".join(words(c)) not in used), choices[-1])


def writer_emit(writer: Callable[[Any], None] | None) -> Emit | None:
    """Send shown text to the graph's custom stream (`{"token": text}`), if there is one."""
    if writer is None:
        return None
    return lambda text: writer({"token": text})
