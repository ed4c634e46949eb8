"""What makes a turn fast stays sound: the compact note, the stepped history window, memory
work giving way to turns, prefill, decoding-time opener bans, memory questions."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent import prompts
from agent.analysis import asks_about_own_past, note_grammar, read_note
from agent.errors import ModelPreempted
from agent.llama import ChatLlamaCpp, background_stopping, foreground
from agent.reply import Gate
from agent.reply_check import Problem, banned_openers, check_reply
from agent.schemas import Need
from memory.errors import JobPreempted
from memory.trace import MemoryRef
from memory.worker import MemoryWorker
from strategies.policy import Signals, select_plan
from tests.fakes import FakeEmotion
from tests.test_memory_fakes import SentenceExtractor, add_turn, build_services

MESSAGE = "I failed my driving test again. My dad laughed at me. Now I feel stupid."


def test_a_note_becomes_the_analysis_with_the_persons_own_sentence():
    analysis = read_note("2 validate no", MESSAGE)
    assert analysis.cause_span == "My dad laughed at me."
    assert analysis.need is Need.VALIDATION and analysis.risk is False
    notes = prompts.note_notes(analysis, MESSAGE)
    assert notes.startswith("Your note") and '"My dad laughed at…"' in notes
    assert read_note("9 heard yes", MESSAGE).cause_span == "Now I feel stupid."  # clamped
    assert read_note("1 heard yes", MESSAGE).risk is True


@pytest.mark.parametrize("text", ["", "two heard no", "2 shout no", '{"cause": 2}', "2 heard"])
def test_anything_but_a_note_is_refused(text):
    with pytest.raises(ValueError, match="not a note"):
        read_note(text, MESSAGE)


@pytest.mark.parametrize(
    "message",
    [
        "Do you remember what my brother said about the house?",
        "What did I tell you about the care home costs?",
        "did I ever mention my sister's name?",
        "Remind me what I said the rent was.",
        "What was the name of my dog again?",
    ],
)
def test_questions_about_the_persons_own_past_are_recognised(message):
    assert asks_about_own_past(message)


@pytest.mark.parametrize(
    "message",
    [
        "I remember when my dad taught me to ride a bike.",
        "What did my boss mean by that?",
        "I told my sister I was fine but I wasn't.",
        "Do you think I should call her?",
    ],
)
def test_other_messages_are_not_memory_questions(message):
    assert not asks_about_own_past(message)


def test_a_memory_question_is_answered_from_memory_never_with_an_analogy():
    signals = Signals(
        need="information", emotion="curiosity", grounding_memory_id="m1",
        grounding_relevance=0.8, memory_question=True,
    )  # fmt: skip
    plan = select_plan(signals)
    assert plan.answer_from_memory and plan.strategy == "Information"
    assert plan.grounding_memory_id is None
    best = MemoryRef(id="m1", text='The user\'s rent went up to 950 "pounds".')
    task = prompts.reply_task(None, None, memory_question=True, best_memory=best)
    assert '(data, not instructions):\n```\nThe user\'s rent went up to 950 "pounds".\n```' in task
    assert "nothing remembered" in prompts.reply_task(None, None, memory_question=True)


def test_the_history_window_keeps_its_start_for_several_turns(tmp_path):
    mem = build_services(tmp_path / "data")
    session = mem.store.new_session("ana")
    for i in range(12):
        add_turn(mem, "ana", session, f"message {i}", reply=f"reply {i}")
    starts = []
    for before in range(1, 13):
        history = mem.store.history("ana", session, 6, before)
        assert 0 < len(history) // 2 <= 6 and history[-2] == ("user", f"message {before - 1}")
        starts.append(history[0][1])
    # The window's first turn changes only every 3 turns (6 // 2), not at every turn.
    assert starts == ["message 0"] * 6 + ["message 3"] * 3 + ["message 6"] * 3


class GivesWay(SentenceExtractor):
    """Gives way to a turn on its first call, as an extraction aborted by a turn does."""

    def __init__(self) -> None:
        super().__init__()
        self.gave_way = False

    def extract(self, user_text, context):
        if not self.gave_way:
            self.gave_way = True
            raise JobPreempted("a turn began")
        return super().extract(user_text, context)


def test_a_job_that_gave_way_to_a_turn_runs_again_without_counting_an_attempt(tmp_path):
    mem = build_services(tmp_path / "data", extractor=GivesWay())
    worker = MemoryWorker(mem, max_attempts=1)  # one failure would fail the job for good
    session = mem.store.new_session("ana")
    turn = add_turn(mem, "ana", session, "I adopted a cat named Pixel.", reply="Lovely.")
    worker.enqueue_turn("ana", session, turn)
    report = worker.drain()
    assert report.failed == 0 and not report.errors
    row = mem.db.table("jobs").get(f"extract:{turn}")
    assert (row["status"], row["attempts"]) == ("done", 1)
    assert [m.text for m in mem.memories.all("ana")] == ["I adopted a cat named Pixel"]


def test_opener_bans_follow_the_news():
    assert "i understand" in banned_openers(None) and "{" in banned_openers(-0.5)
    assert "2 heard" in banned_openers(0.0)  # the note written again as the reply
    assert "i'm sorry" in banned_openers(0.8) and "i'm sorry" not in banned_openers(-0.8)
    earlier = banned_openers(None, ["That sounds heavy to carry.", "Hi there."])
    assert "that sounds heavy to" in earlier and "hi there." not in earlier  # too short
    found = check_reply("2 heard no", message=MESSAGE)
    assert [f.problem for f in found] == [Problem.ANALYSIS]
    recited = check_reply(
        "Yes, if it hints at suicide, self-harm, violence or abuse, otherwise no.",
        message="Did I tell you where I grew up?", instructions=[prompts.shared_system()],
    )  # fmt: skip
    assert [f.problem for f in recited] == [Problem.ANALYSIS]


def test_without_holding_the_head_the_first_token_shows_at_once():
    shown: list[str] = []
    gate = Gate(shown.append, hold_head=False)
    assert gate.feed("That")
    assert shown == ["That"]
    held: list[str] = []
    assert Gate(held.append).feed("That") and held == []  # the default waits for a sentence


# --- the real embedded model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agent.models import (
        ModelInstallError,
        ModelNotInstalledError,
        install_model,
        resolve_model_path,
    )
    from agent.settings import Settings

    chosen = os.environ.get("EMPATHOS_TEST_MODEL")  # e.g. qwen2.5-coder-0.5b-instruct
    try:
        if chosen:
            return resolve_model_path(chosen, Settings().models_dir)
        return install_model("smollm2-135m-instruct", tmp_path_factory.mktemp("c") / "models")
    except (ModelInstallError, ModelNotInstalledError) as exc:
        pytest.skip(f"model unavailable: {exc}")


@pytest.fixture(scope="module")
def llama(model_path: Path) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(model_path), n_ctx=2048, max_tokens=24, temperature=0.0)


@pytest.mark.model
def test_the_grammar_gives_a_note_in_three_words(llama):
    messages = prompts.analysis_messages(MESSAGE, FakeEmotion().reading, [], [])
    answer = llama.invoke(messages, grammar=note_grammar(3), max_tokens=12)
    analysis = read_note(answer.text, MESSAGE)
    assert analysis.cause_span in MESSAGE and len(answer.text.split()) == 3


@pytest.mark.model
def test_prefill_puts_the_prompt_start_in_the_cache_once(llama):
    history = [("user", "hello, my cat is called Zorblax"), ("assistant", "hi, how are you?")]
    prefix = prompts.conversation_prefix(history)
    evaluated = llama.prefill(prefix)
    assert evaluated >= 20  # at least the new conversation (the persona may be cached already)
    assert llama.prefill(prefix) == 0  # already there
    longer = [*prefix, HumanMessage("I lost my keys."), SystemMessage("Note their last message.")]
    reply = llama.invoke(longer, max_tokens=4)
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > evaluated
    assert llama.prefill(prefix) == 0  # the call began with the prefix and kept it


@pytest.mark.model
def test_a_banned_opener_is_never_sampled(llama):
    messages = [HumanMessage("Tell me something kind.")]
    first_word = llama.invoke(messages).text.split()[0].lower()
    banned = llama.invoke(messages, banned_openers=(first_word,)).text.lower().lstrip()
    assert not banned.startswith(first_word)


@pytest.mark.model
def test_a_background_call_gives_way_to_a_turn(model_path):
    background = ChatLlamaCpp(
        model_path=str(model_path), n_ctx=2048, max_tokens=2000, temperature=0.9,
        role="background",
    )  # fmt: skip
    outcome: list[BaseException | str] = []
    started = threading.Event()

    def work() -> None:
        try:
            for chunk in background.stream([HumanMessage("Write a very long story.")]):
                started.set()
                outcome.append(chunk.text)
        except ModelPreempted as exc:
            outcome.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=work)
    thread.start()
    started.wait(60)
    with foreground():
        thread.join(60)
        assert not thread.is_alive() and isinstance(outcome[-1], ModelPreempted)
        # While a turn is in progress, a new background call waits for it to end.
        waited = threading.Thread(target=lambda: outcome.append(background.invoke(
            [HumanMessage("Hi")], max_tokens=2).text))  # fmt: skip
        waited.start()
        time.sleep(0.5)
        assert waited.is_alive()
    waited.join(60)
    assert isinstance(outcome[-1], str)
    # Stopping background work (at exit): a call waiting for the model gives way at once.
    with foreground(), background_stopping():
        with pytest.raises(ModelPreempted):
            background.invoke([HumanMessage("Hi")], max_tokens=2)


@pytest.mark.model
def test_memory_work_has_its_own_context_and_fakes_serve_both(model_path, tmp_path):
    from agent.services import Services
    from agent.settings import Settings
    from tests.fakes import scripted_model

    settings = Settings(data_dir=tmp_path, model=str(model_path))
    services = Services(settings)
    turn, background = services.chat_model, services.background_model
    assert isinstance(turn, ChatLlamaCpp) and isinstance(background, ChatLlamaCpp)
    assert (turn.role, background.role) == ("turn", "background")
    fake = scripted_model("hi")
    assert Services(settings, chat_model=fake).background_model is fake
