"""Notice when the person struggles to understand someone else's feelings or reactions.

"I don't get why my sister is so upset about the move", "why would he be angry at me for
that?", "I can't figure out what my mom is feeling": that is when a personal analogy helps
(EmoSync): a time the person felt something like it themselves makes the other's feeling
relatable. A plain question about the past, venting about one's own feelings, or puzzling over
one's own reaction ("I don't get why I'm so upset") is not it.

The reading is patterns over one sentence (no model, on the reply's critical path): a
puzzlement ("I don't get why", "can't figure out", "no idea what", a "why would/is …"
question) about *another person* ("my sister", "he", "Sam") who *feels or reacts* ("upset",
"so cold", "snapped", "what she's feeling"), with no "I/me" as the one who feels in between.
It also returns who the other person is and their situation: the message with the puzzlement
removed, which is what the person's own related experience is searched with (the words of
the wrapper, "I don't understand why", would only find memories of being confused).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from agent.analogy_judge import RelationJudge
from agent.analysis import asks_about_own_past, sentences
from memory.recall import Recall
from memory.trace import MemoryRef
from strategies.policy import (
    ANALOGY_JUDGE_MIN,
    ANALOGY_JUDGED_MIN_RELEVANCE,
    ANALOGY_MIN_RELEVANCE,
    GROUNDING_MAX_RELEVANCE,
)

ROLE = (
    r"(?:little |big |older |younger |elder |best |new |old |ex[- ]|teenage |own |step[- ]?)?"
    r"(?:sister|brother|sibling|mom|mum|mommy|mummy|mother|dad|daddy|father|parents?|son|"
    r"daughter|kids?|child|children|toddler|teen(?:ager)?|baby|husband|wife|spouse|partner|"
    r"boyfriend|girlfriend|bf|gf|fianc[eé]e?|friends?|mate|buddy|roommate|flatmate|housemate|"
    r"co-?workers?|colleagues?|boss|manager|supervisor|team ?mates?|teacher|students?|"
    r"classmates?|intern|employees?|clients?|neighbou?rs?|grandma|grandmother|gran|nan|nana|"
    r"grandpa|grandfather|grandad|aunt|auntie|uncle|cousin|niece|nephew|in-laws?|"
    r"(?:mother|father|sister|brother)-in-law|stepson|stepdaughter|stepmom|stepmum|stepdad|"
    r"family|ex|date|crush|landlord|landlady)"
)
OTHER = (
    rf"(?P<other>(?:my|our|his|her|their) {ROLE}(?:'s|s'|s)?\b|"
    r"(?:he|she|they)(?:'s|'d|'re|'ll)?|him|her|them|"
    r"(?-i:[A-Z][a-z]{2,})(?='s|\s+(?:is|was|be|got|gets|has|had|seems|keeps|'s)\b))"
)
FEELING = (
    r"(?P<feeling>upset|angry|mad|furious|annoyed|irritated|irritable|hurt|sad|unhappy|"
    r"miserable|gutted|crushed|mop(?:e|es|ed|ing|ey)|tense|on edge|snippy|curt|cranky|prickly|"
    r"sulky|clingy|shaken|"
    r"(?:so|really|very|feeling|been|seems?|is|was|always) down|"
    r"depressed|jealous|envious|bitter|resentful|cold|distant|quiet|withdrawn|defensive|"
    r"offended|insulted|touchy|sensitive|moody|grumpy|snappy|short with|scared|afraid|"
    r"frightened|terrified|nervous|anxious|worried|stressed|crying|cries|cry|cried|in tears|"
    r"sulk(?:ing|s)?|frustrated|disappointed|hostile|rude|mean|cross|pissed|agitated|"
    r"heartbroken|devastated|lonely|homesick|embarrassed|ashamed|guilty|emotional|"
    r"act(?:s|ing|ed)? (?:out|up|weird|strange|like (?:that|this)|this way|that way|so)|"
    r"react(?:s|ed|ing|ion)?|"
    r"overreact(?:s|ed|ing)?|feel(?:s|ing|ings)?|felt|mood|worked up|freak(?:s|ed|ing) out|"
    r"blew up|blow up|lash(?:es|ed)? out|snap(?:s|ped)?|yell(?:s|ed|ing)?|shout(?:s|ed|ing)?|"
    r"slam(?:s|med)?|ignor(?:e|es|ed|ing) (?:me|us|him|her|them)|silent treatment|"
    r"tak(?:e|es|ing) (?:it|this|that) (?:so )?(?:hard|badly|personally)|"
    r"t(?:ake|akes|aking|ook) offen[cs]e|"
    r"going through|thinking|hates? (?:me|us)|fell out|so (?:off|weird|strange|different))"
)
PUZZLED = (
    r"(?:i|we)(?: just| really| honestly| still| genuinely| truly| simply)? "
    r"(?:don'?t|do not|can'?t|cannot|couldn'?t|could not|didn'?t|did not|never)"
    r"(?: quite| really| fully| even)? "
    r"(?:get|understand|see|figure out|work out|make sense of|grasp|tell|wrap my head around|"
    r"read|know)"
    r"|(?:i (?:have|had) |i'?ve (?:got )?)(?:no idea|no clue)"
    r"|(?<!has )(?<!have )(?<!had )(?:no idea|no clue)"
    r"|(?:i'?m |i am )?(?<!he's )(?<!she's )(?<!they're )not sure"
    r"|(?:i'?m|i am) (?:so |really |totally )?(?:confused|baffled|puzzled|lost|clueless)"
    r"(?: about| by| as to| why)?"
    r"|it'?s beyond me|makes? no sense|(?:baffles|puzzles|confuses) me"
    r"|(?:i )?(?:'ve )?(?:always )?(?:wonder|wondered|wondering)"
)
WH = r"(?:why|what|how come|how|whether|if)"
FIRST_PERSON = re.compile(r"\b(i|i'm|i am|me|myself)\b", re.I)
GAP = r"(?:[\w'’,-]+\s+){0,8}?"

# A puzzlement, then (after "why/what…") another person, then a feeling or reaction.
AFTER_CUE = re.compile(
    rf"(?P<cue>\b(?:{PUZZLED})\s+(?:{WH}\s+)?(?:(?:on earth|exactly|the hell|really)\s+)?)"
    rf"(?P<rest>\b{OTHER}\s*{GAP}\b{FEELING}\b.*)",
    re.I,
)
# "Why would / is / does my sister … upset …?" — a question about someone else's feeling.
WHY_QUESTION = re.compile(
    r"(?P<cue>\b(?:why|how come|how can|how could|what makes|what made)\s+"
    r"(?P<aux>(?:would|is|was|does|did|are|were|has|had|do|can'?t|won'?t|doesn'?t|isn'?t|"
    r"should|'?s|could|can)\s+)?)"
    rf"(?P<rest>\b{OTHER}\s*{GAP}\b{FEELING}\b.*)",
    re.I,
)
# "What's going on with my brother?", "what is she feeling?"
WHAT_FEELING = re.compile(
    r"(?P<cue>\bwhat(?:'s| is| was| are)?\s+(?:going on with|up with)\s+|"
    r"\bwhat\s+(?:is|was|are|'s)\s+(?=\S+(?:\s\S+)?\s+(?:feeling|thinking|going through)))"
    rf"(?P<rest>{OTHER}.*)",
    re.I,
)
# "My friend is mad at me … and I don't get why." — the feeling first, the puzzlement after.
OTHER_FEELS = re.compile(rf"\b{OTHER}\s*{GAP}\b{FEELING}\b", re.I)
TRAILING_CUE = re.compile(
    rf",?\s*(?:and|but|so)?\s*\b(?:{PUZZLED})\b(?:\s+(?:{WH}|it|that|this|her|him|them))?"
    r"(?:\s+(?:at all|anymore|any more))?[\s.!?]*$|"
    rf",?\s*(?:and|but|so)?\s*\b(?:{PUZZLED})\s+(?:why|how come|what (?:he|she|they))\b"
    r"(?!\s+(?:i|i'?m|i am|i feel|i felt|me|my|we)\b).*$",
    re.I,
)
NOT_ANOTHER = re.compile(
    r"^(?:people|everyone|everybody|anyone|someone|somebody|"
    # capitalised words that are not a person ("Everything is so sad", "Christmas is emotional")
    r"everything|nothing|something|anything|this|that|life|work|school|home|today|tonight|"
    r"tomorrow|recently|lately|just|but|and|so|then|also|still|maybe|honestly|now|anyway|well|"
    r"yesterday|christmas|easter|ramadan|diwali|thanksgiving|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|january|february|march|april|june|july|august|september|"
    r"october|november|december|god|covid|money)\b",
    re.I,
)
# "that's why she's crying" explains, it does not ask.
EXPLAINS = re.compile(r"(?:that'?s|that is|this is|which is|the reason|is|explains)\s*$", re.I)
PUZZLED_BEFORE = re.compile(rf"\b(?:{PUZZLED})\b", re.I)
# A puzzlement that names no feeling itself, read beside the sentences around it: "She's been
# crying all week. I honestly don't get why.", "What am I missing here?", "Is it normal for
# him to be this upset?". Not "I don't know what to do" (what to do, not what they feel), nor
# a puzzlement about oneself ("I don't get why I'm so upset").
STRUGGLE_CUE = re.compile(
    rf"\b(?:{PUZZLED})\b(?!\s+(?:what|how|where|when|who|whether|if)\s+to\b)(?!\s+how\b)"
    r"(?!\s+(?:why|how|what|if|whether|where)\s+"
    r"(?:i|i'?m|i am|i'?ve|i'?d|i feel|i felt|me|my|we)\b)"
    r"|\bcan'?t (?:relate|see why|see what)\b|\bwhat am i missing\b"
    r"|\bis (?:it|this|that) (?:normal|reasonable|rational)\b"
    r"|\bwhat'?s (?:his|her|their) (?:problem|deal|issue)\b"
    r"|\bwhat (?:is|'s) (?:he|she|they) so (?:[\w-]+ ){1,3}(?:about|over)\b",
    re.I,
)
NEARBY = (0, -1, -2, 1)  # the feeling in the puzzlement's sentence, one or two before, one after


@dataclass(frozen=True)
class Understanding:
    """The reading: whether they struggle to understand someone, who, the words that say so,
    and the other person's situation (the message without those words)."""

    struggling: bool
    other: str = ""
    cue: str = ""
    situation: str = ""


NOT_STRUGGLING = Understanding(False)


def _feels_is_theirs(rest: str) -> re.Match[str] | None:
    """The other person and the first feeling after them, if it is theirs (no "I" or "me"
    feels it in between, and the other is a person, not "people")."""
    match = OTHER_FEELS.search(rest)
    if match is None or NOT_ANOTHER.match(match.group("other")):
        return None
    between = rest[match.end("other") : match.start("feeling")]
    return None if FIRST_PERSON.search(between) else match


def _cue_span(sentence: str, following: str) -> tuple[str, tuple[int, int]] | None:
    """(who, the puzzlement's span in `sentence`) if the sentence reads as a struggle to
    understand someone; the span is empty when the puzzlement is the next sentence."""
    asks = sentence.rstrip().endswith("?")
    for pattern in (AFTER_CUE, WHY_QUESTION):
        for match in pattern.finditer(sentence):
            if pattern is WHY_QUESTION and (
                EXPLAINS.search(sentence[: match.start()]) or not (match.group("aux") or asks)
            ):
                continue
            feels = _feels_is_theirs(match.group("rest"))
            if feels is not None:
                return feels.group("other"), match.span("cue")
    what = WHAT_FEELING.search(sentence)
    if what is not None and (PUZZLED_BEFORE.search(sentence[: what.start()]) or asks):
        return what.group("other"), what.span("cue")
    feels = OTHER_FEELS.search(sentence)
    if feels is None or _feels_is_theirs(sentence[feels.start() :]) is None:
        return None
    trailing = TRAILING_CUE.search(sentence, feels.end())
    if trailing is not None:
        return feels.group("other"), trailing.span()
    if TRAILING_CUE.fullmatch(following.strip()):
        return feels.group("other"), (len(sentence), len(sentence))
    return None


HEAD_PATH = Path(__file__).with_name("analogy_head.npz")
MENTION = re.compile(rf"\b{OTHER}", re.I)  # who the head's struggle is about: the first named
PUZZLED_ANYWHERE = re.compile(rf"\b(?:{PUZZLED})\b", re.I)
ASKS_WHY = re.compile(
    r"\b(?:why|how come|what gives|what(?:'s| is) (?:up|going on)|is it (?:me|normal))\b", re.I
)
OWN_FEELING = re.compile(r"\b(?:why (?:am|do|did) i|i feel|i'?m so|i am so)\b", re.I)
CUES: tuple[Callable[[str], object], ...] = (
    STRUGGLE_CUE.search,  # a puzzlement that is not "what to do" nor about oneself
    PUZZLED_ANYWHERE.search,  # any puzzlement ("I don't get", "no idea", "baffles me")
    lambda message: "?" in message,
    MENTION.search,  # someone else is named
    OTHER_FEELS.search,  # someone else feels or reacts
    ASKS_WHY.search,
    OWN_FEELING.search,  # their own feeling (weighs against)
)


def cue_features(message: str) -> NDArray[np.float32]:
    """The sentence cues the learnt head reads beside the vector, one 0/1 flag each (CUES):
    they carry what a mean sentence vector blurs, whether the message asks and about whom."""
    return np.array([bool(cue(message)) for cue in CUES], dtype=np.float32)


@dataclass(frozen=True)
class StruggleHead:
    """The learnt half of the reading (eval/train_analogy_detector.py): P(struggle) from the
    message's vector and its cue flags (`cue_features`), a logistic regression, and the
    threshold set on real messages."""

    weights: NDArray[np.float32]
    bias: float
    threshold: float

    def struggles(self, vector: NDArray[np.float32], message: str) -> bool:
        features = np.concatenate([vector, cue_features(message)])
        logit = float(np.dot(self.weights, features)) + self.bias
        return bool(1.0 / (1.0 + np.exp(-logit)) >= self.threshold)


@cache
def struggle_head(path: Path = HEAD_PATH) -> StruggleHead | None:
    """The trained head, or None when it was not built (the patterns alone then)."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        return StruggleHead(
            data["weights"].astype(np.float32), float(data["bias"]), float(data["threshold"])
        )


def read_understanding(message: str, vector: NDArray[np.float32] | None = None) -> Understanding:
    """Whether the person struggles to understand someone else's feelings or reactions: the
    sentence patterns, else (given the message's vector) the learnt head, when the message
    names the other person."""
    reading = _read_patterns(message)
    if reading.struggling or vector is None:
        return reading
    head = struggle_head()
    if head is None or not head.struggles(vector, message):
        return reading
    for found in MENTION.finditer(message):
        other = found.group("other")
        if not (NOT_ANOTHER.match(other) or (THEY.match(other) and not NAMED.search(message))):
            return Understanding(True, _who(other, message), "", _tidy(message))
    return reading


def _read_patterns(message: str) -> Understanding:
    parts = sentences(message)
    for i, sentence in enumerate(parts):
        following = parts[i + 1] if i + 1 < len(parts) else ""
        found = _cue_span(sentence, following)
        if found is None or (THEY.match(found[0]) and not NAMED.search(message)):
            continue  # "they" with nobody named is as often a company or people in general
        other, (start, end) = found
        cue = sentence[start:end].strip() or following.strip()
        said = sentence[:start] + " " + sentence[end:]
        rest = [p for j, p in enumerate(parts) if j != i and not TRAILING_CUE.fullmatch(p)]
        return Understanding(True, _who(other, message), cue, _tidy(" ".join([said, *rest])))
    return _across_sentences(parts, message)


def _across_sentences(parts: list[str], message: str) -> Understanding:
    """A puzzlement (STRUGGLE_CUE) with another person's feeling in its sentence or next to
    it: the struggle told over two or three sentences."""
    for i, sentence in enumerate(parts):
        cue = STRUGGLE_CUE.search(sentence)
        if cue is None:
            continue
        for j in (i + offset for offset in NEARBY):
            if not 0 <= j < len(parts):
                continue
            feels = OTHER_FEELS.search(parts[j])
            theirs = feels and _feels_is_theirs(parts[j][feels.start() :])
            if not theirs or (THEY.match(theirs.group("other")) and not NAMED.search(message)):
                continue
            said = sentence[: cue.start()] + " " + sentence[cue.end() :]
            rest = [p if k != i else said for k, p in enumerate(parts)]
            who = _who(theirs.group("other"), message)
            return Understanding(True, who, cue.group(0), _tidy(" ".join(rest)))
    return NOT_STRUGGLING


NAMED = re.compile(rf"\b(?:my|our) {ROLE}\b", re.I)
PRONOUN = re.compile(r"^(?:he|she|they|him|her|them)\b", re.I)
THEY = re.compile(r"^(?:they|them)\b", re.I)


def _who(other: str, message: str) -> str:
    """Who the other person is: "my sister", or for "she" the person the message named."""
    other = re.sub(r"'(?:s|d|re|ll)$", "", other)
    if PRONOUN.match(other):
        named = NAMED.findall(message)
        return named[0].lower() if named else other.lower()
    return other[0].lower() + other[1:] if other.lower().startswith(("my ", "our ")) else other


def _tidy(text: str) -> str:
    text = re.sub(r"\s+(?:and|but|so)\s*([.!?,]|$)", r"\1", text.strip())
    text = re.sub(r"\s+([.,!?])", r"\1", re.sub(r"\s+", " ", text))
    return text.strip(" ,")


def experience_query(reading: Understanding) -> str:
    """The other person's situation worded as memories are ("The user felt lost when they
    moved to Leeds"): the other person becomes "the user". With MiniLM this lifts the related
    experience well above unrelated ones (e.g. 0.08 -> 0.34 for "my sister is so upset about
    the move" against the Leeds memory; eval/bench_analogy.py)."""
    query = reading.situation
    if reading.other:
        query = re.sub(rf"\b{re.escape(reading.other)}(?:'s)?\b", "the user", query, flags=re.I)
    return re.sub(r"\b(?:he|she)(?:'s|'d)?\b", "the user", query, flags=re.I)


def about_them(memory: str, other: str) -> bool:
    """Whether a memory is about the other person themselves ("The user's sister Maya is
    moving to Berlin" for "my sister"): their situation, not the user's own experience. One
    that only involves such people ("when their friends went to Spain without them") is the
    user's own."""
    word = re.sub(r"^(?:my|our|his|her|their)\s+", "", other.lower()).strip()
    word = re.sub(r"^(?:little|big|older|younger|elder|best|new|old|teenage|own)\s+", "", word)
    if not word or PRONOUN.match(word):
        return False
    stem = re.escape(word.rstrip("s'").removesuffix("'"))
    subject = rf"^\s*the user'?s (?:[\w-]+ ){{0,2}}?{stem}s?\b"
    return re.search(subject, memory, re.I) is not None


@runtime_checkable
class ExperienceSource(Protocol):
    """A recall source that can look up the user's own experiences (memory.recall.Recaller)."""

    def experiences(
        self, user_id: str, text: str, vector: NDArray[np.float32] | None = None, k: int = 3,
    ) -> list[MemoryRef]: ...  # fmt: skip

    def verify_memory(self, user_id: str, memory_id: str) -> bool: ...


def related_experience(
    source: ExperienceSource, user_id: str, reading: Understanding,
    embed: Callable[[str], NDArray[np.float32]], judge: RelationJudge | None = None,
    message: str = "",
) -> tuple[MemoryRef, float | None] | None:  # fmt: skip
    """The user's own experience that can ground an analogy for the other person's feelings,
    and the judge's margin when it was asked (None otherwise): the most similar one to their
    situation, not about that person, not a restatement, and confirmed as this user's current
    memory; at least ANALOGY_MIN_RELEVANCE similar, or (the best such one only) at least
    ANALOGY_JUDGED_MIN_RELEVANCE and judged related by the model."""
    query = experience_query(reading)
    for memory in source.experiences(user_id, query, embed(query)):
        if memory.relevance < ANALOGY_JUDGED_MIN_RELEVANCE:
            return None
        restates = memory.relevance >= GROUNDING_MAX_RELEVANCE
        mine = not restates and not about_them(memory.text, reading.other)
        if not mine or not source.verify_memory(user_id, memory.id):
            continue
        if memory.relevance >= ANALOGY_MIN_RELEVANCE:
            return memory, None
        if judge is None:
            return None
        who = addressed(reading.other).replace("your ", "their ", 1)
        related = judge.relates(message, who, memory.text)
        return (memory, related) if related is not None and related >= ANALOGY_JUDGE_MIN else None
    return None


def with_analogy(
    source: object, embed: Callable[[str], NDArray[np.float32]], user_id: str, message: str,
    found: Recall, vector: NDArray[np.float32] | None = None, judge: RelationJudge | None = None,
) -> Recall:  # fmt: skip
    """When they struggle to understand someone else's feelings, add their own experience most
    like that person's situation (a personal analogy's grounding) to what was recalled, if one
    relates: at recall, before the analysis call, so the reply call's prompt (which repeats it)
    stays in the model's cache. Never for a question about the past (answered from memory).
    With a `judge`, an experience in the grey band below the similarity floor is put to it."""
    if asks_about_own_past(message) or not isinstance(source, ExperienceSource):
        return found
    reading = read_understanding(message, vector)
    if not reading.struggling:
        return found
    related = related_experience(source, user_id, reading, embed, judge, message)
    if related is None:
        return found
    memory, judged = related
    memories = [m for m in found.memories if m.id != memory.id] + [memory]
    return found.model_copy(update={"analogy": memory, "memories": memories,
                                    "analogy_judged": judged})  # fmt: skip


def addressed(other: str) -> str:
    """The other person as the reply names them to the user: "my sister" -> "your sister";
    "the other person" when only a pronoun says who."""
    if not other or PRONOUN.match(other):
        return "the other person"
    return re.sub(r"^(?:my|our)\b", "your", other, flags=re.I)
