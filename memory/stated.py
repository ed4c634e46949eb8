"""What a person says about how they want to be supported: "what should I do?", "I just need
to vent", "some easy company, not to be questioned".

`stated_support` reads it as evidence of the support preferences (`memory.traits`, weighted
`STATED_WEIGHT`) and `agent.analysis` as the turn's need; `states_support` marks the sentences
that are read for the support preferences only, never as personality. A request someone else
made ("my therapist said I need a plan") or one negated just before ("please don't give me
advice") is not theirs.
"""

from __future__ import annotations

import re

ASKS_ADVICE = re.compile(
    r"what (should|can|do) i do|what would you (do|suggest)|"
    r"any (advice|tips|ideas|suggestions)\b|"
    r"how (do|should|can) i (fix|handle|deal|cope|stop|tell|ask|start|prepare|manage|talk)\b|"
    r"(give|tell) me (some |a |any )?(advice|steps|options|plan|tips)\b|"
    r"(concrete|practical|clear|actionable) (next )?(steps|advice|help|tips|ideas)|"
    r"(want|need|like|leave with|get|have) (a |some |one or two |a few |the )?(concrete |"
    r"practical |clear )?next steps?|"
    r"\bi (need|want|'d like) (a |some )?(advice|plan)\b|help me (make|find) a plan",
    re.I,
)
NOT_ASKING = re.compile(
    r"(\b(don'?t|do not|didn'?t|never|no|not|stop)\b|n't)(\s+\w+){0,3}\s*$", re.I
)  # "please don't give me advice": a negation just before the request cancels it
REPORTED = re.compile(
    r"\b(said|says|told|tells|thinks|suggested|suggests|you think|you mean)\b(\s+\w+){0,3}\s*$",
    re.I,
)  # "my therapist said I need a plan", "so you think I just need to talk": not their request
NO_ADVICE = (
    r"(don'?t|do not) (want|need) (any |your )?(advice|solutions|to be fixed|tips|to be told)|"
    r"without (being told|telling me|advice|solutions)|not (looking|asking) for (advice|solutions)"
)  # refusing advice: read as not wanting advice and as wanting to be heard
REFUSES_ADVICE = re.compile(
    NO_ADVICE + r"|(don'?t|do not|never) (want|need) (any |your )?(a plan|fixing)|"
    r"never (want|need) (any |your )?(advice|solutions|to be fixed|tips|to be told)|"
    r"(don'?t|do not|never|no need to) (give|tell) me (any |some |a )?"
    r"(advice|tips|steps|plans?|solutions|what to do)|\bno (advice|tips|solutions)\b|"
    r"(just|only) (need|want)(ed)? (someone )?to (vent|listen)",
    re.I,
)
ASKS_TO_BE_HEARD = re.compile(
    r"(just|only) (need|want)(ed)? (someone )?to (vent|talk|listen|be heard|get (it|this) off)|"
    r"\blisten to (and understand )?me|(want|need)(ed)? to be heard|"
    r"(want|need|like|hoping) to feel (heard|understood|listened to)|"
    r"(want|need) (you|someone) to (just )?(listen|understand)|(can|could) you (just )?listen|"
    + NO_ADVICE,
    re.I,
)
ASKS_COMPANY = re.compile(
    r"\b(easy|warm|light|quiet|gentle|friendly|pleasant|cosy|cozy) company|keep me company|"
    r"\b(want|need|'d like|would like|could use|hoping for) (some )?company\b|"
    r"(not|without|n'?t want to) (to )?be(ing)? (questioned|quizzed|interrogated|analy[sz]ed)|"
    r"(want|need|like|fancy) (a |some )?(light|easy|casual) (chat|talk)|nothing (too )?heavy",
    re.I,
)
STATED_WEIGHT = 6.0
"""The weight of a person saying how they want to be supported ("what should I do?", "I just
need to vent", "some easy company, not to be questioned"): the most direct evidence of a support
preference there is, so one such statement outweighs the prior (2) three times over and the
next session already acts on it (one statement: 0.7 at confidence ~0.8). Real people rarely say
it: these fire on 52 of 3,123 distinct ESConv validation seeker messages (49 asking what to do,
3 to be heard), and where a seeker asked what to do, the human supporter's next move was a
suggestion or information 15 times in 39 (22% otherwise). A wrong reading is shown in `traits
show --evidence` and corrected with `traits set`."""
SUPPORT_MARKERS: list[tuple[re.Pattern[str], str, float]] = [
    (ASKS_ADVICE, "wants_advice", 0.85),
    (ASKS_ADVICE, "wants_to_be_heard", 0.3),  # the trait's low side: "don't just listen, help me"
    (REFUSES_ADVICE, "wants_advice", 0.1),
    (ASKS_TO_BE_HEARD, "wants_to_be_heard", 0.9),
    (ASKS_COMPANY, "wants_to_be_heard", 0.2),
    (ASKS_COMPANY, "wants_advice", 0.15),
]


def reported(before: str) -> bool:
    """Whether the words just before a request make it someone else's ("she said I need...")."""
    return REPORTED.search(before.rsplit(".", 1)[-1]) is not None


def states_support(text: str) -> bool:
    """Whether the text says how the person wants to be supported ("I want some easy company",
    "what should I do?"): evidence of a support preference, read by `stated_support`, and not
    of their personality. Such sentences were 27% of 40 simulated people's sentences; read as
    personality, "some warm company" looked extraverted and "concrete next steps" organised."""
    return any(pattern.search(text) for pattern, _, _ in SUPPORT_MARKERS)


def stated_support(text: str) -> dict[str, tuple[float, str]]:
    """What the message says about how they want to be supported: trait -> (value, the words).

    A trait said both ways in one message ("open to suggestions ... without being told what to
    do") is left out: the message does not settle it.
    """
    said: dict[str, list[tuple[float, str]]] = {}
    for pattern, name, value in SUPPORT_MARKERS:
        match = next((m for m in pattern.finditer(text) if not reported(text[:m.start()])
                      and (pattern is not ASKS_ADVICE or not NOT_ASKING.search(text[:m.start()]))),
                     None)  # fmt: skip
        if match is not None:
            said.setdefault(name, []).append((value, match.group(0)))
    return {name: found[0] for name, found in said.items()
            if len({value >= 0.5 for value, _ in found}) == 1}  # fmt: skip
