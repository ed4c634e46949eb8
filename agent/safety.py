"""The crisis screen: patterns, an embedding classifier and, at most, one LLM signal.

A crisis disclosure must never get an ordinary reply, and small LLMs alone miss many and flag
most figurative speech, so the screen needs no LLM:

1. Patterns (`safety_data/patterns.toml`) for explicit statements, means and plans, matched per
   clause. Guards drop a hit when it is negated ("I'd never hurt myself"), past and resolved
   ("years ago", "clean for six years"), about a third party or a topic ("an essay on
   self-harm"), or a medical-information question; they soften it when it is figurative ("lol",
   "of embarrassment") or conditional ("if").
2. A multinomial logistic regression over all-MiniLM-L6-v2 sentence embeddings (plus hashed
   word unigrams and bigrams, which add a few points of recall), trained on the examples in
   `safety_data/train.jsonl` and on real ordinary messages (and sentences of them) by
   `python -m eval.train_safety`, which writes `safety_data/head.npz`. At run time it is
   numpy only. Every sentence of a longer message is also read alone (and two at a time), so
   one crisis sentence is not diluted by the rest; the thresholds are calibrated on exactly
   that statistic, so an ordinary short sentence alone is not enough.

Bands: "crisis" when an explicit pattern survives its guards, the classifier is above `t_hi`,
or an indirect pattern has the classifier above `t_lo` (or a second indirect rule) behind it;
"uncertain" when only one weaker signal is present; "clear" otherwise. Both thresholds are
calibrated on real messages (GoEmotions, ESConv) to a false-alarm budget by
`python -m eval.train_safety`. The LLM is one signal at most: `combine` lets it upgrade an
"uncertain" that an indirect pattern raised to "crisis", never downgrade a crisis.

Exceptions: `SafetyError` > `SafetyDataError` (a file under agent/safety_data/ is missing or
malformed).
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from agent.errors import AgentError
from agent.schemas import CrisisCategory, SafetyAssessment
from memory.embeddings import Embedder, default_embedder

DATA_DIR = Path(__file__).parent / "safety_data"
HEAD_PATH = DATA_DIR / "head.npz"
CATEGORIES: tuple[str, ...] = tuple(c for c in get_args(CrisisCategory) if c != "none")
PRIORITY = ("medical_emergency", "suicide", "harm_to_others", "abuse", "self_harm")
MAX_SENTENCES = 80  # a 4,000-character message has ~40; beyond this the tail is scored as one

Strength = Literal["explicit", "indirect", "discounted"]
Vector = npt.NDArray[np.float32]


class SafetyError(AgentError):
    """Base class for crisis-screen errors."""


class SafetyDataError(SafetyError):
    """A data file of the screen is missing or malformed."""


@cache
def _read_toml(name: str) -> dict[str, Any]:
    path = DATA_DIR / name
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SafetyDataError(f"Cannot read {path}: {exc}. Restore it from git.") from exc


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_CLAUSE_BREAK = re.compile(r"[.!?;\n]+|,?\s+\b(?:but|though|although|however|whereas)\b", re.I)


def normalise(text: str) -> str:
    """Straighten quotes and collapse whitespace so the patterns see one spelling."""
    return re.sub(r"[ \t]+", " ", text.translate(_QUOTES)).strip()


def sentence_windows(text: str, size: int = 2) -> list[str]:
    """Return every sentence of a multi-sentence message, then every run of `size` sentences.

    One crisis sentence after ordinary ones must not be diluted by them, so each sentence is
    scored on its own and no sentence is ever skipped (the embedding is batched: ~15 ms for a
    few sentences on 2 cores).
    """
    found = [m.group(0).strip() for m in _SENTENCE.finditer(normalise(text)) if m.group(0).strip()]
    if len(found) > MAX_SENTENCES:
        found = [*found[: MAX_SENTENCES - 1], " ".join(found[MAX_SENTENCES - 1 :])]
    if len(found) <= 1:
        return []
    runs = [" ".join(found[i : i + size]) for i in range(len(found) - size + 1)]
    return found + (runs if len(found) > size else [])


def split_clauses(text: str) -> list[str]:
    """Cut a message at sentence ends and contrastive conjunctions."""
    return [part.strip() for part in _CLAUSE_BREAK.split(text) if part and part.strip()]


@dataclass(frozen=True)
class Guard:
    name: str
    effect: Literal["discount", "soften"]
    scope: Literal["prefix", "clause", "message"]
    regex: re.Pattern[str]
    exception: re.Pattern[str] | None


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    kind: Literal["explicit", "indirect"]
    signal: str
    regex: re.Pattern[str]
    unless: re.Pattern[str] | None
    trigger: re.Pattern[str] | None
    guards: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    rule: Rule
    strength: Strength
    note: str = ""


_FIRST_PERSON = re.compile(r"(?:i|i'm|im|i've|i'll|i'd)\b", re.I)
_I_ANYWHERE = re.compile(r"\bi\b|\bi'|\bim\b", re.I)


def _compile(pattern: str, macros: dict[str, str]) -> re.Pattern[str]:
    for _ in range(2):
        for key, value in macros.items():
            pattern = pattern.replace(f"%{key}%", value)
    return re.compile(pattern, re.I)


def _optional(spec: dict[str, Any], key: str, macros: dict[str, str]) -> re.Pattern[str] | None:
    return _compile(spec[key], macros) if key in spec else None


class PatternSet:
    """The explicit/indirect crisis rules and the guards that discount or soften them."""

    def __init__(self, rules: list[Rule], guards: dict[str, Guard]) -> None:
        self.rules = rules
        self.guards = guards

    @classmethod
    def load(cls) -> PatternSet:
        """Compile `safety_data/patterns.toml`."""
        data = _read_toml("patterns.toml")
        macros: dict[str, str] = data.get("macros", {})
        try:
            guards = {
                name: Guard(
                    name,
                    g["effect"],
                    g["scope"],
                    _compile(g["regex"], macros),
                    _optional(g, "except", macros),
                )
                for name, g in data["guards"].items()
            }
            rules = [cls._rule(spec, macros, data["guard_sets"]) for spec in data["rule"]]
        except (KeyError, re.error) as exc:
            raise SafetyDataError(f"Bad rule or guard in patterns.toml: {exc!r}.") from exc
        return cls(rules, guards)

    @staticmethod
    def _rule(spec: dict[str, Any], macros: dict[str, str], sets: dict[str, list[str]]) -> Rule:
        fields: dict[str, Any] = {k: spec[k] for k in ("id", "category", "kind", "signal")}
        fields |= {k: _optional(spec, k, macros) for k in ("unless", "trigger")}
        fields["regex"] = _compile(spec["regex"], macros)
        return Rule(**fields, guards=tuple(spec.get("guards", sets[spec["category"]])))

    def match(self, text: str) -> list[Hit]:
        """Return one hit per rule that fires, the strongest reading of it first."""
        message = normalise(text)
        hits: dict[str, Hit] = {}
        rules = [rule for rule in self.rules if _active(rule, message)]
        for clause in split_clauses(message):
            for rule in rules:
                for found in rule.regex.finditer(clause):
                    hit = self._judge(rule, found, clause, message)
                    if rule.id not in hits or _rank(hit) < _rank(hits[rule.id]):
                        hits[rule.id] = hit
        return sorted(hits.values(), key=_rank)

    def _judge(self, rule: Rule, found: re.Match[str], clause: str, message: str) -> Hit:
        prefix = clause[: found.start()]
        soften = ""
        for name in rule.guards:
            guard = self.guards[name]
            if not self._applies(guard, found, prefix, clause, message):
                continue
            if guard.effect == "discount":
                return Hit(rule, "discounted", name)
            soften = soften or name
        if soften and rule.kind == "explicit":
            return Hit(rule, "indirect", soften)
        return Hit(rule, rule.kind, soften)

    @staticmethod
    def _applies(guard: Guard, found: re.Match[str], prefix: str, clause: str, msg: str) -> bool:
        scope = {"prefix": prefix, "clause": clause, "message": msg}[guard.scope]
        if guard.name == "third_party":
            return _third_party(guard.regex, found, prefix)
        if guard.exception is not None and guard.exception.search(scope):
            return False
        return guard.regex.search(scope) is not None


def _active(rule: Rule, message: str) -> bool:
    if rule.trigger is not None and not rule.trigger.search(message):
        return False
    return rule.unless is None or not rule.unless.search(message)


def _third_party(regex: re.Pattern[str], found: re.Match[str], prefix: str) -> bool:
    """Tell whether the hit's subject is someone else: a third party with no "I" after it."""
    if _FIRST_PERSON.match(found.group(0)):
        return False
    mentions = list(regex.finditer(prefix))
    return bool(mentions) and not _I_ANYWHERE.search(prefix[mentions[-1].end() :])


def _rank(hit: Hit) -> int:
    return ("explicit", "indirect", "discounted").index(hit.strength)


def lexical_indices(text: str, dimensions: int) -> list[int]:
    """Hash the message's words and word pairs into feature indices (no vocabulary to ship)."""
    words = re.findall(r"[a-z']+", normalise(text).lower())
    tokens = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return sorted({zlib.crc32(token.encode()) % dimensions for token in tokens})


@dataclass(frozen=True)
class Head:
    """A softmax over an embedding plus hashed n-grams; classes: "none" and the categories."""

    weights: npt.NDArray[np.float32]
    lexical: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    classes: tuple[str, ...]
    t_lo: float
    t_hi: float

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> Head:
        """Read the trained head; tell how to build it if it is missing."""
        try:
            with np.load(path, allow_pickle=False) as data:
                w, lex, b = (data[k].astype(np.float32) for k in ("weights", "lexical", "bias"))
                lo, hi = (float(x) for x in data["thresholds"])
                return cls(w, lex, b, tuple(str(c) for c in data["classes"]), lo, hi)
        except (OSError, KeyError, ValueError) as exc:
            raise SafetyDataError(
                f"Cannot load the crisis classifier from {path}: {exc}. "
                "Build it with `python -m eval.bench_safety --train`."
            ) from exc

    def read(self, vector: Vector, text: str) -> tuple[float, str]:
        """Return P(any crisis) and the most likely crisis category of one message."""
        logits = self.weights.astype(np.float64) @ vector.astype(np.float64) + self.bias
        index = lexical_indices(text, self.lexical.shape[1])
        if index:
            logits += self.lexical[:, index].sum(axis=1) / np.sqrt(len(index))
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        none = self.classes.index("none")
        crisis = [(float(p), c) for p, c in zip(probs, self.classes, strict=True) if c != "none"]
        return 1.0 - float(probs[none]), max(crisis)[1]


class SafetyScreen:
    """Fast, non-LLM crisis screen: patterns first, the embedding classifier beside them."""

    def __init__(self, patterns: PatternSet, head: Head, embedder: Embedder | None) -> None:
        self.patterns = patterns
        self.head = head
        self._embedder = embedder

    @classmethod
    def load(cls, embedder: Embedder | None = None) -> SafetyScreen:
        """Build the screen; the embedding model itself loads only when a text needs embedding."""
        return cls(PatternSet.load(), Head.load(), embedder)

    def screen(
        self, text: str, vector: Vector | None = None, windows_embedded: Any = None
    ) -> SafetyAssessment:
        """Assess one message; pass its embedding (and its sentence windows' embeddings, in
        `sentence_windows` order) when the caller already has them."""
        if not text.strip():
            return SafetyAssessment(crisis=False, risk=0.0, band="clear")
        embedder = self._embedder or default_embedder()
        vector = embedder.embed_one(text) if vector is None else vector
        p, guess = self.head.read(vector, text)
        hits = self.patterns.match(text)
        signals = [_describe(hit) for hit in hits]
        signals.append(f"classifier: {p:.2f} crisis-like (closest: {guess})")
        windows = sentence_windows(text)  # ordinary sentences must not dilute a crisis one
        rows = embedder.embed(windows) if windows_embedded is None else windows_embedded
        for window, row in zip(windows, rows, strict=True):
            p_window, guess_window = self.head.read(row, window)
            if p_window > p:
                p, guess = p_window, guess_window
                signals.append(f"classifier: {p:.2f} on the passage {window[:60]!r}")
        return self._decide(hits, p, guess, signals)

    def _decide(
        self, hits: list[Hit], p: float, guess: str, signals: list[str]
    ) -> SafetyAssessment:
        explicit = [h.rule.category for h in hits if h.strength == "explicit"]
        indirect = [h.rule.category for h in hits if h.strength == "indirect"]
        head = self.head
        if explicit:
            return _assess("crisis", min(explicit, key=PRIORITY.index), max(p, 0.95), signals)
        if p >= head.t_hi:
            return _assess("crisis", guess, p, signals)
        if indirect:
            category = guess if guess in indirect else min(indirect, key=PRIORITY.index)
            backed = p >= head.t_lo or indirect.count(category) >= 2
            band = "crisis" if backed else "uncertain"
            found = _assess(band, category, max(p, 0.8 if backed else 0.5), signals)
            return found.model_copy(update={"indirect_signal": True})
        if p >= head.t_lo:
            return _assess("uncertain", guess, p, signals)
        return _assess("clear", "none", p, signals)

    def combine(self, assessment: SafetyAssessment, llm_risk: bool | None) -> SafetyAssessment:
        """Add the LLM's risk flag: it may upgrade "uncertain" to crisis, never downgrade.

        The small LLMs flag most emotional messages, so their flag counts only as a second
        signal beside an indirect *pattern*; an "uncertain" that rests on the classifier alone
        stays uncertain (the ordinary reply plus a check-in line). `None` means the LLM could
        not give a reading (its analysis failed): an "uncertain" screen then errs on the side
        of safety and becomes a crisis.
        """
        update: dict[str, Any] = {"llm_flag": bool(llm_risk)}
        second_signal = llm_risk is None or (llm_risk and assessment.indirect_signal)
        if assessment.band == "uncertain" and second_signal:
            why = (
                "the language model also read a risk"
                if llm_risk
                else "the language model could not weigh in; erring on the side of safety"
            )
            risk = max(assessment.risk, 0.75)
            signals = [*assessment.signals, why]
            update |= {"crisis": True, "band": "crisis", "signals": signals, "risk": risk}
        return assessment.model_copy(update=update)


def _describe(hit: Hit) -> str:
    if hit.strength == "discounted":
        return f"ignored: {hit.rule.signal} ({hit.note.replace('_', ' ')})"
    note = f", {hit.note}" if hit.note else ""
    return f"{hit.rule.kind} pattern: {hit.rule.signal} ({hit.strength}{note})"


def _assess(band: str, category: str, risk: float, signals: list[str]) -> SafetyAssessment:
    return SafetyAssessment(
        crisis=band == "crisis",
        category=cast(CrisisCategory, category if band != "clear" else "none"),
        risk=min(1.0, max(0.0, risk)),
        band=cast(Literal["clear", "uncertain", "crisis"], band),
        signals=signals,
    )
