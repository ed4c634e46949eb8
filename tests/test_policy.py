from dataclasses import dataclass

import pytest

from agent.analysis import STATED_CONFIDENCE, read_request
from agent.understanding import about_them, addressed, experience_query, read_understanding
from strategies.catalogue import load_catalogue, load_policy
from strategies.policy import Signals, select_plan


@dataclass
class T:
    value: float
    confidence: float = 1.0


def signals(**kw) -> Signals:
    base = dict(
        need="vent",
        emotion="sadness",
        emotion_probability=0.6,
        valence=-0.5,
        intensity=0.5,
        turn_index=2,
    )
    return Signals(**{**base, **kw})


def test_catalogue_has_esconv_strategies_and_four_lenses():
    catalogue = load_catalogue()
    names = {s.name for s in catalogue.strategy}
    assert {
        "Question",
        "Restatement or Paraphrasing",
        "Reflection of feelings",
        "Self-disclosure",
        "Affirmation and Reassurance",
        "Providing Suggestions",
        "Information",
        "Others",
        "Personal Analogy",
    } == names
    assert {lens.name for lens in catalogue.lens} == {"CBT", "DBT", "Person-centred", "Reality"}
    assert load_policy().analogy_bonus > 0


@pytest.mark.parametrize(
    ("need", "expected"),
    [
        ("vent", "Reflection of feelings"),
        ("get_advice", "Providing Suggestions"),
        ("information", "Information"),
        ("be_validated", "Affirmation and Reassurance"),
    ],
)
def test_need_drives_the_strategy(need, expected):
    assert select_plan(signals(need=need)).strategy == expected


def test_same_message_different_people_get_different_plans():
    advice_seeker = {"wants_advice": T(0.95, 0.9), "directness": T(0.9, 0.8)}
    listener = {"wants_to_be_heard": T(0.95, 0.9)}
    a = select_plan(signals(need="vent", intensity=0.3), advice_seeker)
    b = select_plan(signals(need="vent", intensity=0.3), listener)
    assert (a.strategy, a.lens) != (b.strategy, b.lens)
    assert a.traits_used and any("wants_advice" in reason for reason in a.why)


def test_analogy_needs_the_struggle_and_an_own_experience():
    openness = {"openness": T(1.0)}
    neither = select_plan(signals(), openness)
    memory_only = select_plan(signals(grounding_memory_id="m1", grounding_relevance=0.6), openness)
    struggle_only = select_plan(signals(understanding_other=True, other_person="my sister"))
    for plan in (neither, memory_only, struggle_only):
        assert "Personal Analogy" not in plan.scores and plan.grounding_memory_id is None
    assert any("no related experience" in reason for reason in struggle_only.why)
    both = select_plan(signals(grounding_memory_id="m1", grounding_relevance=0.45,
                               understanding_other=True, other_person="my sister"))  # fmt: skip
    assert both.strategy == "Personal Analogy"
    assert both.grounding_memory_id == "m1" and both.other_person == "my sister"
    assert any("understand my sister's feelings" in reason for reason in both.why)


@pytest.mark.parametrize("need", ["vent", "be_validated", "get_advice", "information"])
@pytest.mark.parametrize("turn_index", [0, 3])
def test_analogy_wins_whenever_it_applies_without_traits(need, turn_index):
    plan = select_plan(signals(need=need, turn_index=turn_index, intensity=0.9,
                               grounding_memory_id="m1", grounding_relevance=0.38,
                               understanding_other=True))  # fmt: skip
    assert plan.strategy == "Personal Analogy"


def test_a_question_about_the_past_never_gets_an_analogy():
    plan = select_plan(signals(memory_question=True, grounding_memory_id="m1",
                               grounding_relevance=0.7, understanding_other=True))  # fmt: skip
    assert plan.answer_from_memory and plan.strategy != "Personal Analogy"
    assert plan.grounding_memory_id is None


def test_without_grounding_falls_back_and_forgets_the_other_person():
    plan = select_plan(signals(grounding_memory_id="m1", grounding_relevance=0.5,
                               understanding_other=True, other_person="my sister"))  # fmt: skip
    fallback = plan.without_grounding()
    assert fallback.strategy != "Personal Analogy"
    assert fallback.grounding_memory_id is None and fallback.other_person == ""


STRUGGLES = [
    ("I don't get why my sister is so upset about the move", "my sister"),
    ("why would he be angry at me for that?", "he"),
    ("I can't figure out what my mom is feeling", "my mom"),
    ("Why is my boyfriend so snappy with me lately? He has exams soon.", "my boyfriend"),
    ("My friend is mad that we went without her and I don't get why.", "my friend"),
    ("My dad goes quiet every March. I can't figure out what he's feeling.", "my dad"),
    ("Why would Sam be hurt that I didn't tell him?", "Sam"),
    ("I have no idea what my brother is going through since the breakup", "my brother"),
    # told over two sentences, or asked without "why"
    ("My aunt has been so miserable since the wedding. I just don't understand it.", "my aunt"),
    ("my flatmate slammed every door today. no clue what that was about", "my flatmate"),
    ("Priya got really prickly when I mentioned the budget. What am I missing?", "Priya"),
    ("My nephew cried for an hour over a lost sock. Is that normal at six?", "my nephew"),
]
NOT_STRUGGLES = [
    "Do you remember what I said about Leeds?",
    "I was stuck in traffic for two hours and I'm so annoyed.",
    "I don't understand why I'm so upset about the move.",
    "Why am I so scared of starting my new job?",
    "I don't know what to do about my sister.",
    "My sister is upset about the move.",
    "That's why she's crying.",
    "A friend told me he's depressed and he has no idea why.",
    "I have no idea what they were thinking with that ending.",
    "Why would my sister's move make me so sad?",
    "I don't get why people are so rude.",
    "Hi! How are you today?",
    "Everything is so sad lately and I don't get it.",
    "I don't get why Christmas is always so emotional.",
    "My friend is depressed. I want to help him but I don't know how.",
    "My mum is stressed about the move and I'm not sure what to say to her.",
    "Recently got together with someone and not sure if it's a smart move.",
    "My brother is angry at our dad. I don't get why I feel guilty about it.",
]


@pytest.mark.parametrize(("message", "other"), STRUGGLES)
def test_detector_reads_a_struggle_to_understand_someone(message, other):
    reading = read_understanding(message)
    assert reading.struggling and reading.other == other


@pytest.mark.parametrize("message", NOT_STRUGGLES)
def test_detector_ignores_own_feelings_questions_and_plain_news(message):
    assert not read_understanding(message).struggling


def test_the_situation_is_the_message_without_the_puzzlement():
    reading = read_understanding(
        "I don't get why my sister is so upset about the move. It's just a new city."
    )
    assert reading.situation == "my sister is so upset about the move. It's just a new city."
    assert experience_query(reading).startswith("the user is so upset about the move")
    short = read_understanding("My wife keeps crying since the birth and I don't know what "
                               "she's feeling.")  # fmt: skip
    assert short.other == "my wife" and "keeps crying since the birth" in short.situation
    assert "don't know" not in short.situation


def test_memories_about_the_other_person_are_not_own_experiences():
    assert about_them("The user's sister Maya is moving to Berlin.", "my sister")
    assert about_them("The user's mom Linda retired in June.", "my mom")
    assert not about_them("The user felt left out when their friends went to Spain.", "my friend")
    assert not about_them("The user felt lost after moving to Leeds.", "she")
    assert addressed("my sister") == "your sister" and addressed("he") == "the other person"


def test_low_confidence_traits_barely_move_the_choice():
    weak = {"wants_advice": T(1.0, 0.05)}
    assert select_plan(signals(), weak).strategy == select_plan(signals()).strategy


def test_evidence_can_overturn_the_prior():
    plan = select_plan(signals(), evidence={"Question": 2.0})
    assert plan.strategy == "Question"
    assert any("worked for this person" in reason for reason in plan.why)


def test_trait_scores_replay_the_choice_without_traits():
    people = {"wants_advice": T(0.95, 0.9), "wants_to_be_heard": T(0.1, 0.9)}
    for need in ("vent", "get_advice", "be_validated", "information"):
        with_traits = select_plan(signals(need=need), people)
        alone = select_plan(signals(need=need))
        strategies = {s.name for s in load_catalogue().strategy}
        base = {
            n: with_traits.scores[n] - with_traits.trait_scores[n]
            for n in strategies
            if n in with_traits.scores
        }
        assert max(base, key=lambda n: (base[n], n)) == alone.strategy
        assert alone.trait_scores and not any(alone.trait_scores.values())
    assert any(select_plan(signals(need="vent"), people).trait_scores.values())


def test_a_stated_preference_counts_as_said_not_as_a_trait():
    said = {"wants_advice": T(0.85, 0.8)}
    plan = select_plan(signals(need="get_advice", need_said=True), stated=said)
    assert plan.strategy == "Providing Suggestions"
    assert any("(they said so)" in reason for reason in plan.why)
    assert any("said wants_advice=0.85" in reason for reason in plan.why)
    assert not any(plan.trait_scores.values()) and plan.traits_used == []


def test_what_they_say_now_outweighs_an_inferred_trait_the_other_way():
    listener = {"wants_to_be_heard": T(0.7, 0.6), "wants_advice": T(0.35, 0.6)}
    assert select_plan(signals(), listener).strategy == "Reflection of feelings"
    asked = select_plan(signals(need="get_advice", need_said=True), listener,
                        stated={"wants_advice": T(0.85, 0.8)})  # fmt: skip
    assert asked.strategy == "Providing Suggestions"


@pytest.mark.parametrize(
    "message, need",
    [
        ("I feel so behind at work. What should I do?", "get_advice"),
        ("I just need to vent about my day.", "vent"),
        ("I'm not looking for advice, it was a hard day.", "vent"),
        ("Some easy, warm company would be nice tonight.", "distraction"),
        ("I don't want solutions, I want company.", "distraction"),
        ("Don't give me a plan, please.", "vent"),
        ("My sister didn't call back again.", None),
    ],
)
def test_the_need_a_message_states_is_read(message, need):
    request = read_request(message)
    assert (request.need.value if request.need else None) == need
    assert all(t.source == "said" and t.confidence == STATED_CONFIDENCE
               for t in request.traits.values())  # fmt: skip
    assert bool(request.traits) == (need is not None)
