"""The user simulator's notes on its person, in words a model acts on: who they are and how
each Big Five score shows in behaviour (`behaviour`), how they like to be supported (what raises
and lowers their emotion), and today's situation and goal.
"""

from __future__ import annotations

from datetime import date

from eval.simulate.scenario import Card, Support
from strategies.catalogue import load_catalogue

ALWAYS_DOWN = "gives a generic or cold reply, ignores what you said or gets your life wrong"

DEGREES = ((0.2, "very"), (0.35, "quite"), (0.5, "slightly"), (0.65, "slightly"), (0.8, "quite"),
           (1.0, "very"))  # fmt: skip
BEHAVIOUR = {  # trait -> (high pole, low pole), as behaviour, after the IPIP/BFI item content
    "openness": (
        "curious and imaginative: you bring in ideas, comparisons, books, music or art, and "
        "like new places and new ways of doing things",
        "practical and conventional: you keep to concrete facts, familiar routines and the "
        "way things have always been done, and find abstract talk pointless",
    ),
    "conscientiousness": (
        "organised and dutiful: you plan, make lists, keep schedules and finish what you "
        "start; loose ends bother you",
        "disorganised and easy-going: you put things off, lose track, forget appointments "
        "and improvise at the last minute",
    ),
    "extraversion": (
        "outgoing and talkative: you mention friends, going out and people you met, and "
        "write with energy",
        "reserved and quiet: you keep to yourself, recharge alone, avoid crowds and write "
        "briefly and calmly",
    ),
    "agreeableness": (
        "warm and trusting: you see the other person's side, soften criticism, forgive "
        "easily and worry about others' feelings",
        "blunt and sceptical: you criticise, blame others, hold grudges and put your own "
        "interests first",
    ),
    "neuroticism": (
        "anxious and moody: you worry, expect the worst, get upset and stressed easily, and "
        "your mood swings",
        "calm and even-tempered: you rarely worry, take setbacks in your stride and stay "
        "relaxed under pressure",
    ),
}
LEANINGS = {  # (support score, low or high): what raises the person's emotion, what lowers it
    ("wants_to_be_heard", "low"): ("gets to the point", "dwells on your feelings"),
    ("wants_to_be_heard", "high"): (
        "listens and shows it understood you", "rushes past how you feel",
    ),
    ("wants_advice", "low"): (
        "lets you talk without trying to fix anything", "gives advice or tells you what to do",
    ),
    ("wants_advice", "high"): ("gives practical advice", "only talks about feelings"),
    ("humour", "low"): ("stays serious", "jokes or makes light of it"),
    ("humour", "high"): ("keeps a light, humorous touch", "is heavy and solemn"),
    ("directness", "low"): ("is soft and gentle", "is blunt"),
    ("directness", "high"): ("is plain and direct", "is vague or beats around the bush"),
}  # fmt: skip


def describe_person(card: Card, name: str = "", today: date | None = None) -> str:
    """The card as readable notes: who they are, their people, life, values and personality."""
    lines = [f"You are {name}. {card.background}" if name else f"Who you are: {card.background}"]
    if card.style:
        lines.append(f"How you write: {card.style}")
    if card.people:
        lines.append("People in your life:")
        lines += [
            f"- {p.name} ({p.relation}){': ' + p.notes if p.notes else ''}" for p in card.people
        ]
    if card.events:
        lines.append(
            f"Your life events (today is {today:%Y-%m-%d}):" if today else "Your life events:"
        )
        lines += [f"- {e.date:%Y-%m-%d}{when(e.date, today)}: {e.what}" for e in card.events]
    if card.values:
        lines.append(f"What you value: {', '.join(card.values)}.")
    lines.append("Your personality (let it show, never name it):")
    lines += [f"- {behaviour(t, v)}" for t, v in card.big_five.model_dump().items()]
    return "\n".join(lines)


def describe_support(support: Support) -> str:
    """How they like to be supported, as what raises and lowers their emotion: heard or
    advised, humour, directness, and the kinds of reply they like and dislike."""
    scores = support.model_dump()
    ups, downs = [], []
    for (key, side), (up, down) in LEANINGS.items():
        if side == leaning(scores[key]):
            ups.append(up)
            downs.append(down)
    ups += [reply_kind(name) for name in support.preferred_strategies]
    downs += [reply_kind(name) for name in support.disliked_strategies]
    downs.append(ALWAYS_DOWN)
    return "\n".join([
        "Your emotion goes up when the companion:", *(f"- {u}" for u in ups),
        "It goes down when the companion:", *(f"- {d}" for d in downs),
    ])  # fmt: skip


def describe_today(goal: str, situation: str | None, emotion: int | None) -> str:
    lines = [f"Today: {situation}"] if situation else []
    if goal:
        lines.append(f"Your goal today: {goal}")
    if emotion is not None:
        lines.append(f"How you feel right now: {emotion} of 100 (0 is your worst, 100 your best).")
    return "\n".join(lines)


def behaviour(trait: str, score: float) -> str:
    """How a Big Five score shows in what a person does and writes ("quite organised and
    dutiful: you plan, make lists, ..."): the pole the score leans to, and by how much. A
    1.5b simulator given "high conscientiousness" alone showed none of it in its messages."""
    high, low = BEHAVIOUR[trait]
    degree = next(word for bound, word in DEGREES if score <= bound)
    return f"{degree} {high if score >= 0.5 else low}"


def leaning(score: float) -> str | None:
    return "low" if score < 0.35 else "high" if score > 0.65 else None


def reply_kind(strategy: str) -> str:
    """A kind of reply by its name and first example (the catalogue's definitions speak to the
    companion; its examples speak to the person, as the simulator does)."""
    found = load_catalogue().strategy_named(strategy)
    return f'{found.name.lower()}, like "{found.exemplars[0]}"'


def when(day: date, today: date | None) -> str:
    """How long ago (or ahead) `day` is, for a model that cannot subtract dates."""
    if today is None:
        return ""
    days = (today - day).days
    if days == 0:
        return " (today)"
    count, unit = next(
        (abs(days) // size, unit)
        for size, unit in ((365, "year"), (30, "month"), (7, "week"), (1, "day"))
        if abs(days) >= size
    )
    span = f"{count} {unit}{'s' if count > 1 else ''}"
    return f" ({span} ago)" if days > 0 else f" (in {span})"
