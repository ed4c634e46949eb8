"""The reply check: catch a broken reply before it is kept, in code, without another model call.

Small models break replies in a few recurring ways; each is a `Problem` with a reason the
regeneration prompt can quote:

- empty: no words at all;
- json / analysis: the reply is the analysis JSON, or talks in its field names;
- loop: one sentence (or a 4-word phrase, three times) over and over;
- repeat: (nearly) word for word an earlier reply of the session;
- exemplar: a catalogue exemplar copied into the conversation;
- voice: the reply speaks as the person, in their own first-person words;
- opener: a stock opener the style rules forbid ("I understand", condolences on good news);
- valence: condolences on good news, or cheering on bad news.

`repair_opener` removes a forbidden stock opener when the rest of the reply stands on its own,
so the person gets the reply without a second call. Thresholds are in this module's constants.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from agent.analysis import NOTE_NEEDS

SAME_AS_EARLIER = 0.9  # difflib ratio at which a reply counts as a repeat of an earlier one
COPIED_EXEMPLAR = 0.85  # ... or as a copy of an exemplar sentence
VOICE_SPAN = 6  # words of the person's own first-person text that a reply may not echo
POSITIVE, NEGATIVE = 0.3, -0.3  # the message's valence beyond which stance must match

ANALYSIS_FIELDS = re.compile(r'"?\b(cause_span|situation|need|thoughts|risk)\b"?\s*:', re.I)
NOTE_LIKE = re.compile(
    rf"^\s*[1-9]\s+({'|'.join(NOTE_NEEDS)})\b", re.I
)  # the compact note written again as the reply
WORD = re.compile(r"[a-z0-9']+")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
FIRST_PERSON = {"i", "i'm", "im", "my", "me", "myself", "i've", "i'd", "i'll"}
STOCK_OPENERS = re.compile(
    r"^\s*(i\s+(?:completely\s+|totally\s+)?understand\b[^.!?,;]*[.!?,;]?)\s*", re.I
)
CONDOLENCE = re.compile(
    r"\b(sorry to hear|sorry that|so sorry|i'm sorry|i am sorry|that must be (?:hard|tough|"
    r"difficult|painful)|your frustration|how frustrating|that sounds (?:hard|tough|painful|"
    r"difficult)|condolences)\b",
    re.I,
)
CONDOLENCE_OPENER = re.compile(r"^\s*(i'?m|i am)\s+(so\s+)?sorry[^.!?]*[.!?]\s*", re.I)
CHEER = re.compile(
    r"\b(congratulations|congrats|that's (?:great|wonderful|amazing|fantastic) news|how "
    r"exciting|what great news|so happy for you)\b",
    re.I,
)


STOCK_OPENING_PHRASES = (
    "i understand", "i completely understand", "i totally understand", "i can understand",
    "sorry to hear", "i'm sorry to hear", "i'm so sorry to hear", "i am sorry to hear",
    "{", "[", "`", "json",
)  # fmt: skip
CONDOLENCE_OPENING_PHRASES = (
    "i'm sorry", "i am sorry", "i'm so sorry", "sorry", "that must be", "how frustrating",
    "i know how hard", "that sounds hard", "that sounds tough", "that sounds difficult",
)  # fmt: skip


REPEAT_OPENING_WORDS = 4  # an earlier reply's first words a new reply may not open with


def banned_openers(valence: float | None, earlier_replies: Sequence[str] = ()) -> tuple[str, ...]:
    """The phrases a reply may not open with, for decoding-time bans (lower case): stock
    openers, JSON and the compact note always; condolences when the news is good; and the
    opening words of every earlier reply of the session (a verbatim repeat cannot start)."""
    notes = tuple(f"{d} {word}" for d in "123456789" for word in NOTE_NEEDS)
    positive = valence is not None and valence >= POSITIVE
    earlier = tuple(p for p in (opening(r) for r in earlier_replies) if p)
    return (
        STOCK_OPENING_PHRASES + notes + (CONDOLENCE_OPENING_PHRASES if positive else ()) + earlier
    )


def opening(reply: str, count: int = REPEAT_OPENING_WORDS) -> str:
    """A reply's first `count` words as written (lower case), or "" if it is shorter."""
    parts = reply.replace("\u2019", "'").lower().split()
    return " ".join(parts[:count]) if len(parts) > count else ""


class Problem(StrEnum):
    EMPTY = "empty"
    JSON = "json"
    ANALYSIS = "analysis"
    LOOP = "loop"
    REPEAT = "repeat"
    EXEMPLAR = "exemplar"
    VOICE = "voice"
    OPENER = "opener"
    VALENCE = "valence"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    reason: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.reason}"


def words(text: str) -> list[str]:
    return WORD.findall(text.lower().replace("’", "'"))


def normal(text: str) -> str:
    return " ".join(words(text))


def sentences(text: str) -> list[str]:
    return [s for s in (normal(m.group(0)) for m in SENTENCE.finditer(text)) if s]


def looks_like_json(text: str) -> bool:
    stripped = text.strip().strip("`").strip()
    if stripped.lower().startswith("json"):
        stripped = stripped[4:].lstrip()
    if not stripped.startswith(("{", "[")):
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return stripped.count('":') >= 1 or stripped.count('": ') >= 1
    return True


def loop_of(text: str) -> str | None:
    """Return the repeated sentence or phrase if the text loops, else None."""
    counts = Counter(sentences(text))
    repeated = [s for s, n in counts.items() if n >= 2 and len(s.split()) >= 2]
    if repeated:
        return repeated[0]
    tokens = words(text)
    grams = Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))
    looping = [g for g, n in grams.most_common(1) if n >= 3]
    return " ".join(looping[0]) if looping else None


def echoed_voice(reply: str, message: str) -> str | None:
    """Return a first-person span of the person's message the reply repeats as its own."""
    said, answer = words(message), " " + normal(reply) + " "
    for start in range(len(said) - VOICE_SPAN + 1):
        span = said[start : start + VOICE_SPAN]
        if FIRST_PERSON & set(span) and f" {' '.join(span)} " in answer:
            return " ".join(span)
    return None


def closest(text: str, candidates: Sequence[str]) -> tuple[float, str]:
    best = (0.0, "")
    for candidate in candidates:
        ratio = difflib.SequenceMatcher(None, text, candidate, autojunk=False).ratio()
        best = max(best, (ratio, candidate))
    return best


RECITED_WORDS = 8  # words in a row from the instructions that make a reply a recital


@lru_cache(maxsize=8)
def word_runs(text: str, size: int = RECITED_WORDS) -> frozenset[tuple[str, ...]]:
    """Every run of `size` words of a text (cached: the instructions rarely change)."""
    found = words(text)
    return frozenset(tuple(found[i : i + size]) for i in range(len(found) - size + 1))


def recited_instruction(reply_sentences: Sequence[str], instructions: Sequence[str]) -> str | None:
    """Return a sentence of the reply that recites the instructions (shares a run of
    `RECITED_WORDS` words with them), if any."""
    runs = [word_runs(text) for text in instructions]
    for sentence in reply_sentences:
        found = words(sentence)
        mine = {tuple(found[i : i + RECITED_WORDS]) for i in range(len(found) - RECITED_WORDS + 1)}
        if any(mine & theirs for theirs in runs):
            return sentence
    return None


def check_reply(
    reply: str,
    *,
    message: str,
    earlier_replies: Sequence[str] = (),
    exemplars: Sequence[str] = (),
    valence: float | None = None,
    instructions: Sequence[str] = (),
) -> list[Finding]:
    """Return what is wrong with `reply` (an empty list: nothing)."""
    if not words(reply):
        return [Finding(Problem.EMPTY, "the reply has no words")]
    found: list[Finding] = []
    if looks_like_json(reply):
        found.append(Finding(Problem.JSON, "the reply is JSON, not a message to the person"))
    elif ANALYSIS_FIELDS.search(reply) or NOTE_LIKE.match(reply):
        found.append(Finding(Problem.ANALYSIS, "the reply repeats the analysis' field names"))
    if (looped := loop_of(reply)) is not None:
        found.append(Finding(Problem.LOOP, f"the reply repeats {looped!r}"))
    text = normal(reply)
    ratio, earlier = closest(text, [normal(r) for r in earlier_replies if r])
    if ratio >= SAME_AS_EARLIER:
        found.append(Finding(Problem.REPEAT, f"the reply repeats an earlier one ({earlier!r})"))
    copied = [s for s in sentences(reply) if len(s.split()) >= 4]
    for sentence in copied:
        ratio, exemplar = closest(sentence, [normal(e) for e in exemplars])
        if ratio >= COPIED_EXEMPLAR:
            found.append(Finding(Problem.EXEMPLAR, f"the reply copies the example {exemplar!r}"))
            break
    if (recited := recited_instruction(copied, instructions)) is not None:
        found.append(Finding(Problem.ANALYSIS, f"the reply recites its instructions ({recited!r})"))
    if (span := echoed_voice(reply, message)) is not None:
        found.append(Finding(Problem.VOICE, f"the reply speaks as the person ({span!r})"))
    if STOCK_OPENERS.match(reply):
        found.append(Finding(Problem.OPENER, 'the reply opens with "I understand"'))
    if valence is not None and valence >= POSITIVE and CONDOLENCE.search(reply):
        found.append(Finding(Problem.VALENCE, "good news met with condolences or frustration"))
    elif valence is not None and valence <= NEGATIVE and CHEER.search(reply):
        found.append(Finding(Problem.VALENCE, "bad news met with congratulations"))
    return found


def repair_opener(reply: str, valence: float | None = None) -> str:
    """Drop a forbidden stock opener ("I understand …," or, on good news, "I'm sorry …") when
    the rest of the reply still says something; otherwise return the reply unchanged."""
    pattern = STOCK_OPENERS
    if valence is not None and valence >= POSITIVE and CONDOLENCE_OPENER.match(reply):
        pattern = CONDOLENCE_OPENER
    match = pattern.match(reply)
    if match is None or not match.group(0).rstrip().endswith((".", "!", "?")):
        return reply  # only a whole opening sentence goes; a clause would leave "and …"
    rest = reply[match.end() :].lstrip(" ,;:-—")
    if len(words(rest)) < 4:
        return reply
    return rest[0].upper() + rest[1:]
