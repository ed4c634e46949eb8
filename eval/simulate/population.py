"""A generated population: many different people, from a seed, for measuring the user model.

`generate_population(people=20, sessions=5, seed=0)` returns a `Scenario` whose hidden cards are
drawn, not hand-picked: Big Five values uniform in [0.1, 0.9] and independent; one of three ways
of wanting support, in equal shares (shuffled), with the matching preferences:
- heard:   wants to be heard (0.7-0.95), not advised (0.05-0.3); prefers reflection and
           restatement, dislikes suggestions and information;
- advice:  wants concrete next steps (0.7-0.95), little dwelling on feelings (0.1-0.35);
           prefers suggestions and information, dislikes reflection and restatement;
- company: wants quiet, light company (heard 0.1-0.35, advice 0.05-0.3); prefers affirmation
           and light talk ("Others"), dislikes questions and suggestions;
humour and directness uniform. Names, relations, jobs and the day's situations come from
small lists. The simulator's notes say how each Big Five score shows in behaviour
(`persona_notes.behaviour`), and each day's situation carries up to two events that show the
person's marked traits (`DETAILS`: "you forgot an appointment again"); a generated card has no
values, which the simulator used to recite. Every session is `simulate`d with no fixed opening,
so each message the agent reads is written by the user simulator playing the card — never by
this module. The same seed gives the same file; `dump_scenario` writes it as YAML that
`load_scenario` reads back.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from eval.simulate.scenario import BigFive, Scenario, ScenarioError

ARCHETYPES: dict[str, dict[str, Any]] = {
    "heard": {
        "wants_to_be_heard": (0.7, 0.95), "wants_advice": (0.05, 0.3),
        "preferred": ["Reflection of feelings", "Restatement or Paraphrasing"],
        "disliked": ["Providing Suggestions", "Information"],
        "goal": "to feel listened to and understood, without being told what to do",
    },
    "advice": {
        "wants_to_be_heard": (0.1, 0.35), "wants_advice": (0.7, 0.95),
        "preferred": ["Providing Suggestions", "Information"],
        "disliked": ["Reflection of feelings", "Restatement or Paraphrasing"],
        "goal": "to leave with one or two concrete next steps",
    },
    "company": {
        "wants_to_be_heard": (0.1, 0.35), "wants_advice": (0.05, 0.3),
        "preferred": ["Affirmation and Reassurance", "Others"],
        "disliked": ["Question", "Providing Suggestions"],
        "goal": "some easy, warm company; not to be questioned or fixed",
    },
}  # fmt: skip
FIRST_NAMES = [
    "Ada", "Bilal", "Carmen", "Dmitri", "Efua", "Finn", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Luca", "Mei", "Nikhil", "Olga", "Pablo", "Quinn", "Rania", "Sven", "Tamar",
    "Uma", "Viktor", "Wren", "Xavier", "Yara", "Zoltan", "Amara", "Bruno", "Chloe", "Dario",
    "Elif", "Farid", "Greta", "Hamza", "Isla", "Jun", "Kofi", "Lena", "Marek", "Noor",
]  # fmt: skip
OTHERS = ["Sam", "Alex", "Maya", "Tom", "Rosa", "Leo", "Nina", "Omar", "Priya", "Ben", "Ivy",
          "Karl", "Lucia", "Theo", "Hana", "Eli"]  # fmt: skip
RELATIONS = ["sister", "brother", "mother", "father", "partner", "best friend", "flatmate",
             "manager", "colleague", "son", "daughter", "grandmother"]  # fmt: skip
JOBS = ["nurse", "teacher", "software developer", "shop assistant", "accountant", "student",
        "electrician", "graphic designer", "chef", "bus driver", "lab technician", "retired "
        "postman", "call-centre worker", "architect", "carer", "journalist"]  # fmt: skip
CITIES = ["Leeds", "Lyon", "Porto", "Cork", "Graz", "Malmö", "Bristol", "Turin", "Utrecht",
          "Glasgow", "Ghent", "Bilbao"]  # fmt: skip
SITUATIONS = [
    "a tense week at work: {other} ({relation}) keeps adding tasks to your plate",
    "you had an argument with {other} ({relation}) and it is still on your mind",
    "you feel lonely this week; {other} ({relation}) has been busy",
    "money is tight this month and a big bill just arrived",
    "you slept badly for days worrying about a health check next week",
    "{other} ({relation}) said something hurtful about you and you keep replaying it",
    "you have a deadline on Friday and feel behind",
    "you are thinking about moving to a new city and cannot decide",
    "a small win: you finished something you had put off for months",
    "{other} ({relation}) is going through a hard time and you do not know how to help",
    "you got feedback at work that stung",
    "a quiet evening; you feel flat and a bit low without knowing why",
]  # fmt: skip
DETAILS = {  # trait -> (details of a day that show the high pole, the low pole)
    "openness": (
        ["on the way home you wandered into a small gallery you had never noticed",
         "you started reading a book about philosophy and could not put it down",
         "you signed up for a pottery class just to try something new",
         "you cooked a dish from a country you have never been to"],
        ["you ate at the same café as every week, which is how you like it",
         "you turned down a friend's idea to try a new climbing gym",
         "you rewatched an old favourite series rather than anything new",
         "a new system at work annoyed you: the old way worked fine"],
    ),
    "conscientiousness": (
        ["you made a to-do list for the week and ticked off half of it already",
         "you finished your part of the work a day early",
         "you tidied the flat and paid every bill on time",
         "you planned all your meals for the week"],
        ["you forgot an appointment again",
         "the washing-up has been piling up for three days",
         "you started something important at the last minute",
         "you lost your keys and were late"],
    ),
    "extraversion": (
        ["you spent the evening at a birthday party with lots of people",
         "you got chatting with a stranger on the bus",
         "you organised drinks for everyone at work",
         "you called three friends today just to catch up"],
        ["you cancelled on a party to stay home on your own",
         "you spent the evening alone with a book and felt recharged",
         "you dodged the small talk in the office kitchen",
         "a crowded shop drained you completely"],
    ),
    "agreeableness": (
        ["you helped a neighbour carry her shopping upstairs",
         "you let a colleague take the credit to keep the peace",
         "you forgave a friend who forgot your birthday",
         "you worried you might have upset someone with a joke"],
        ["you told a colleague their idea was useless",
         "you refused to lend a friend money; their problem, not yours",
         "you are still angry with someone who wronged you years ago",
         "you complained to a waiter and left no tip"],
    ),
    "neuroticism": (
        ["you lay awake worrying about small things",
         "you snapped at someone and then felt terrible for hours",
         "one small mistake ruined your whole day",
         "your heart raced before a routine meeting"],
        ["a delay that upset everyone else did not bother you",
         "you slept well despite the pressure",
         "you shrugged off a rude comment",
         "plans fell through and you stayed relaxed"],
    ),
}  # fmt: skip
MARKED = 0.15  # a trait this far from 0.5 shows in the day's details
SHOW_CHANCE = ((0.3, 0.8), (MARKED, 0.5))  # (distance from 0.5, chance a session shows it)
MAX_DETAILS = 2
DAYS_BETWEEN = 4


def generate_population(
    people: int = 20, sessions: int = 5, seed: int = 0, turns: int = 2, start: str = "2026-03-02"
) -> Scenario:
    """A scenario of `people` generated people with `sessions` simulated sessions each."""
    if not 1 <= people <= len(FIRST_NAMES):
        raise ScenarioError(f"--people must be between 1 and {len(FIRST_NAMES)}, not {people}.")
    if not 1 <= sessions <= 30:
        raise ScenarioError(f"--sessions must be between 1 and 30, not {sessions}.")
    rng = random.Random(seed)
    kinds = [list(ARCHETYPES)[k % len(ARCHETYPES)] for k in range(people)]
    rng.shuffle(kinds)
    names = rng.sample(FIRST_NAMES, people)
    return Scenario.model_validate({
        "name": f"population-{seed}",
        "description": f"{people} generated people x {sessions} sessions (seed {seed}); "
        "see eval/simulate/population.py",
        "start": start, "seed": seed,
        "people": [person(rng, name, kind, sessions, turns) for name, kind in zip(names, kinds,
                                                                                     strict=True)],
    })  # fmt: skip


def uniform(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def person(rng: random.Random, name: str, kind: str, sessions: int, turns: int) -> dict[str, Any]:
    archetype = ARCHETYPES[kind]
    big_five = {trait: uniform(rng, 0.1, 0.9) for trait in BigFive.model_fields}
    relations = [
        {"name": other, "relation": relation}
        for other, relation in zip(rng.sample(OTHERS, 2), rng.sample(RELATIONS, 2), strict=True)
    ]
    situations = rng.sample(SITUATIONS, min(sessions, len(SITUATIONS)))
    while len(situations) < sessions:
        situations.append(rng.choice(SITUATIONS))
    age = rng.randint(19, 71)
    return {
        "id": name.lower(),
        "card": {
            "background": f"{age}, {rng.choice(JOBS)} in {rng.choice(CITIES)}.",
            "people": relations,
            "big_five": big_five,
            "support": {
                "wants_to_be_heard": uniform(rng, *archetype["wants_to_be_heard"]),
                "wants_advice": uniform(rng, *archetype["wants_advice"]),
                "humour": uniform(rng, 0.1, 0.9),
                "directness": uniform(rng, 0.1, 0.9),
                "preferred_strategies": archetype["preferred"],
                "disliked_strategies": archetype["disliked"],
            },
        },
        "sessions": [
            {
                "day": DAYS_BETWEEN * n,
                "goal": archetype["goal"],
                "simulate": {
                    "situation": situation.format(**other_of(rng, relations))
                    + day_details(rng, big_five),
                    "turns": turns,
                },
            }  # fmt: skip
            for n, situation in enumerate(situations)
        ],
    }


def day_details(rng: random.Random, big_five: dict[str, float]) -> str:
    """What else happened that day, showing the person's marked traits: each trait at least
    `MARKED` from 0.5 shows with a chance that grows with how marked it is (at most
    `MAX_DETAILS` a day). Told only how their personality shows, the 1.5b simulator wrote the
    situation and the goal for everyone, or named its traits ("I'm quite disorganised and
    easy-going"); given a day's events, it tells them, as people do."""
    shown = []
    for trait, value in big_five.items():
        chance = next((c for distance, c in SHOW_CHANCE if abs(value - 0.5) > distance), 0.0)
        if rng.random() < chance:
            shown.append(rng.choice(DETAILS[trait][0 if value > 0.5 else 1]))
    rng.shuffle(shown)
    return "".join(f"; also, {detail}" for detail in shown[:MAX_DETAILS])


def other_of(rng: random.Random, relations: list[dict[str, str]]) -> dict[str, str]:
    chosen = rng.choice(relations)
    return {"other": chosen["name"], "relation": chosen["relation"]}


def dump_scenario(scenario: Scenario, path: Path) -> None:
    """Write the scenario as YAML (readable by `load_scenario`)."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    data["start"] = scenario.start.astimezone(UTC).isoformat()
    path.write_text(
        f"# Generated by `empathos simulate generate` on {datetime.now(UTC):%Y-%m-%d}.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
