"""`empathos eval run`: items through several real configurations of the graph on fakes (every
output file, the judge, pairwise, resume, failures), and one tiny run on the embedded model."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.settings import Settings
from agent.variants import UnknownVariantError
from eval.offline.items import load_items
from eval.offline.judge import Judge
from eval.offline.run import Evaluation, EvaluationError
from eval.simulate.files import read_journal
from tests.fakes import FakeEmotion, FakeSafety
from tests.sim_fakes import SchemaRouterModel, WordsEmbedder
from tui.cli import cli

ITEMS: list[dict[str, Any]] = [
    {
        "task": "reply",
        "id": "r1",
        "user": "ana",
        "history": [
            {
                "role": "user",
                "text": "my brother Tomas moved to Lisbon last spring",
                "session": "s1",
            },
            {"role": "assistant", "text": "That is a big change.", "session": "s1"},
            {"role": "user", "text": "he said he would call every sunday", "session": "s1"},
            {"role": "user", "text": "Tomas called today, it was lovely", "session": "s2"},
        ],
        "message": "Tomas did not call again this sunday and I feel forgotten",
        "persona": {
            "traits": {"neuroticism": 0.7},
            "preferred": ["Reflection of feelings"],
            "disliked": ["Providing Suggestions"],
        },
        "gold": {
            "emotions": ["sadness"],
            "cause_span": "Tomas did not call again",
            "acceptable": ["Reflection of feelings"],
            "memory_words": ["Lisbon"],
        },
    },
    {
        "task": "reply",
        "id": "r2",
        "user": "bo",
        "message": "my exam is tomorrow and I have not started",
        "context": [
            {"role": "user", "text": "I am so stressed"},
            {"role": "assistant", "text": "What is stressing you?"},
        ],
        "gold": {
            "emotions": ["nervousness"],
            "cause_span": "exam is tomorrow",
            "memory_words": ["aldol"],
        },
    },
    {
        "task": "strategy",
        "id": "s1",
        "context": [
            {"role": "user", "text": "hi"},
            {"role": "assistant", "text": "hello, how are you?"},
        ],
        "message": "not great, I lost my job",
        "gold": "Question",
    },
    {
        "task": "strategy",
        "id": "s2",
        "message": "I keep failing my driving test",
        "gold": "Affirmation and Reassurance",
    },
    {"task": "emotion", "id": "e1", "text": "I am so happy today", "labels": ["joy"]},
    {"task": "emotion", "id": "e2", "text": "this is sad", "labels": ["sadness", "grief"]},
    {
        "task": "memory",
        "id": "m1",
        "user": "cy",
        "history": [
            {"role": "user", "text": "my cat Pepper is twelve years old"},
            {"role": "assistant", "text": "Twelve, wow."},
            {"role": "user", "text": "she loves the garden"},
        ],
        "question": "what is my cat called?",
        "answer": ["Pepper"],
        "evidence": [0],
    },
    {
        "task": "rating",
        "id": "x1",
        "context": "I feel alone",
        "response": "I am sorry you feel alone, what happened?",
        "ratings": [
            {"dimension": "emotional_reactions", "value": 1},
            {"dimension": "explorations", "value": 2},
        ],
    },
    {
        "task": "rating",
        "id": "x2",
        "context": "I failed again",
        "response": "Try harder.",
        "ratings": [
            {"dimension": "emotional_reactions", "value": 0},
            {"dimension": "explorations", "value": 0},
        ],
    },
]
BROKEN = '{"task": "reply", "id": "broken"'  # line 10: not JSON
BENCH = "".join(json.dumps(item) + "\n" for item in ITEMS) + BROKEN + "\n"
SYSTEMS = ["full", "no-memory", "no-ebg", "single-call"]
VERDICTS = {
    "LikertVerdict": {"criteria": ["warm"], "affective": 4, "cognitive": 3, "overall": 4},
    "EpitomeVerdict": {"criteria": ["kind"], "emotional_reactions": 1, "interpretations": 1,
                       "explorations": 0},
    "PersonaEmpVerdict": {"criteria": ["fits"], "resonation": 4, "expression": 3, "reception": 5},
    "PairVerdict": {"criteria": ["first is better"], "better": "A"},
}  # fmt: skip


class FakeJudgeModel(BaseChatModel):
    """Answers each judge schema with a fixed verdict; counts calls. `better` "A" always picks
    the first position (so a swap makes it inconsistent)."""

    _calls: dict[str, int] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "judge-fake"

    @property
    def calls(self) -> int:
        return sum(self._calls.values())

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        title = ((kwargs.get("response_format") or {}).get("schema") or {}).get("title", "")
        with self._lock:
            self._calls[title] = self._calls.get(title, 0) + 1
        content = json.dumps(VERDICTS[title])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])


class DownForTomas(SchemaRouterModel):
    """A model whose replies fail for messages about Tomas (a server error mid-run)."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if not kwargs.get("response_format") and "Tomas did not call" in str(messages[-1].content):
            raise ConnectionError("the server went away")
        return super()._generate(messages, *args, **kwargs)


def bench(tmp_path: Path, text: str = BENCH) -> Path:
    path = tmp_path / "bench.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def evaluation(
    tmp_path: Path, *, model: BaseChatModel | None = None, judge: BaseChatModel | None = None,
    systems: list[str] = SYSTEMS, resume: bool = False, text: str = BENCH, **kw: Any,
) -> Evaluation:  # fmt: skip
    given = {
        "chat_model": model or SchemaRouterModel(), "structured_method": "json_schema_text",
        "embedder": WordsEmbedder(), "emotion": FakeEmotion(), "safety": FakeSafety(),
    }  # fmt: skip
    return Evaluation(
        load_items([bench(tmp_path, text)]),
        Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c", seed=3),
        tmp_path / "report", systems=systems,
        judge=Judge(judge, "json_schema_text", name="fake-judge") if judge else None,
        judge_name="fake-judge" if judge else "", resume=resume, given=given, **kw,
    )  # fmt: skip


def rows(results: dict[str, Any], task: str, metric: str) -> dict[str, dict[str, Any]]:
    return {
        r["system"]: r for r in results["metrics"] if r["task"] == task and r["metric"] == metric
    }


def test_an_evaluation_writes_every_output_with_the_systems_side_by_side(tmp_path: Path) -> None:
    judge = FakeJudgeModel()
    results = evaluation(tmp_path, judge=judge, pairwise=True).run()
    report = tmp_path / "report"
    assert results["tasks"] == {"reply": 2, "strategy": 2, "emotion": 2, "memory": 1, "rating": 2}
    assert results["failures"] == []
    assert (
        len(results["skipped_lines"]) == 1 and "bench.jsonl line 10" in results["skipped_lines"][0]
    )
    # every system answered every turn item; the variants did what they say
    records = read_journal(report / "records.jsonl")
    outputs = {(r["item"], r["system"]): r for r in records if r["type"] == "output"}
    for item in ("r1", "r2", "s1", "s2", "m1"):
        for system in SYSTEMS:
            assert outputs[(item, system)]["reply"], (item, system)
    assert outputs[("r1", "full")]["strategy"] and outputs[("r1", "full")]["cause_span"]
    # no cause analysis: the stand-in (the whole message) is not scored as a cause found
    assert outputs[("r1", "no-ebg")]["cause_span"] is None
    assert outputs[("r1", "no-ebg")]["llm_calls"] < outputs[("r1", "full")]["llm_calls"]
    assert "no-ebg" not in rows(results, "reply", "cause-span F1")
    assert outputs[("r1", "single-call")]["strategy"] is None
    assert outputs[("m1", "full")]["memories"] and outputs[("m1", "no-memory")]["memories"] == []
    assert all(not r["leaks"] for r in outputs.values() if "leaks" in r)
    # metrics only where gold and output exist; full has no p-value against itself
    strategy = rows(results, "strategy", "strategy macro-F1 (Q)")
    assert set(strategy) == {"full", "no-memory", "no-ebg"}  # single-call chooses no strategy
    assert strategy["full"]["n"] == 2 and strategy["full"]["p_vs_full"] is None
    assert strategy["no-memory"]["p_vs_full"] is not None
    recalled = rows(results, "memory", "answer among recalled memories")
    assert recalled["full"]["value"] == 1.0 and recalled["no-memory"]["value"] == 0.0
    assert rows(results, "emotion", "emotion accuracy")["emotion-plugin"]["value"] == 0.5
    assert rows(results, "reply", "emotion accuracy")["full"]["value"] == 0.5  # sadness only
    # the judge: every rubric on every reply, pairwise both orders (always "A": ties)
    overall = rows(results, "reply", "judge likert: overall")
    assert set(overall) == set(SYSTEMS) and overall["full"]["value"] == 4.0
    assert (
        overall["full"]["ci"] == [4.0, 4.0] or overall["full"]["ci"][0] != overall["full"]["ci"][0]
    )
    pairs = results["pairwise"]
    assert set(pairs) == {"no-memory", "no-ebg", "single-call"}
    assert all(p["tie"] == 2 and p["swap_consistency"] == 0.0 for p in pairs.values())
    alignment = results["judge_alignment"]
    assert set(alignment) == {"emotional_reactions", "explorations"}
    assert alignment["emotional_reactions"]["n"] == 2
    assert results["trait_curve"] and results["trait_curve"][0]["session"] == 1
    assert len(results["trait_curve"]) == 2  # two history sessions of r1
    # the files a reader opens
    saved = json.loads((report / "results.json").read_text())
    assert saved["run"]["systems"] == SYSTEMS and saved["run"]["judge"] == "fake-judge"
    assert saved["run"]["model_sha256"]
    html = (report / "report.html").read_text()
    for text in ("reply items", "strategy items", "memory items", "emotion items", "no-ebg",
                 "Pairwise against full", "The judge against human ratings",
                 "trait error over history sessions", "Skipped benchmark lines (1)"):  # fmt: skip
        assert text in html, text
    images = re.findall(r'src="([^"]+)"', html)
    assert len(images) >= 8 and all((report / src).stat().st_size > 1000 for src in images)
    assert not (report / "work").exists()  # the per-system stores are removed at the end


def test_resume_reuses_finished_steps_and_retries_failed_ones(tmp_path: Path) -> None:
    first = evaluation(tmp_path, model=DownForTomas(), systems=["full", "single-call"]).run()
    failed = {(f["item"], f["system"]) for f in first["failures"]}
    assert failed == {("r1", "full"), ("r1", "single-call")}
    assert "server went away" in first["failures"][0]["error"]
    assert "r1" in (tmp_path / "report" / "report.html").read_text()  # listed for the reader
    with pytest.raises(EvaluationError, match="--resume"):
        evaluation(tmp_path, systems=["full", "single-call"]).run()
    model, judge = SchemaRouterModel(), FakeJudgeModel()
    second = evaluation(tmp_path, model=model, judge=judge, systems=["full", "single-call"],
                        resume=True).run()  # fmt: skip
    assert second["failures"] == []
    assert model.calls.get("reply", 0) <= len(failed)  # only the failed turns ran again
    calls = judge.calls
    evaluation(tmp_path, model=SchemaRouterModel(), judge=judge, systems=["full", "single-call"],
               resume=True).run()  # fmt: skip
    assert judge.calls == calls  # nothing left to judge: every verdict was journalled


def test_a_run_stopped_before_its_first_step_resumes(tmp_path: Path) -> None:
    stopped = evaluation(tmp_path, systems=["single-call"])
    stopped.prepare()  # run.json written; killed before any step was journalled
    assert (tmp_path / "report" / "run.json").exists()
    stale = tmp_path / "report" / "work" / "999999999-dead"  # a killed run's stores
    stale.mkdir(parents=True)
    results = evaluation(tmp_path, systems=["single-call"], resume=True).run()
    assert results["tasks"]["reply"] == 2 and results["failures"] == []
    assert not (tmp_path / "report" / "work").exists()


def test_resume_refuses_another_file_under_the_same_model_name(tmp_path: Path) -> None:
    evaluation(tmp_path, systems=["single-call"]).prepare()
    run_file = tmp_path / "report" / "run.json"
    run = json.loads(run_file.read_text())
    assert run["model_sha256"]
    run_file.write_text(json.dumps({**run, "model_sha256": "0" * 64}))
    with pytest.raises(EvaluationError, match="another file for the model"):
        evaluation(tmp_path, systems=["single-call"], resume=True).prepare()


def test_gold_changes_rescore_without_running_again(tmp_path: Path) -> None:
    """Outputs are keyed by what the system is given: corrected gold re-scores the cached
    turns, and the report reads only this run's records."""
    evaluation(tmp_path, systems=["full"]).run()
    before = evaluation(tmp_path, systems=["full"], resume=True).run()["strategy"]["full"]
    corrected = BENCH.replace('"gold": "Question"', '"gold": "Information"')
    assert corrected != BENCH
    model = SchemaRouterModel()
    again = evaluation(tmp_path, model=model, systems=["full"], resume=True, text=corrected).run()
    assert model.calls.get("reply", 0) == 0 and model.calls.get("CauseAnalysis", 0) == 0
    after = again["strategy"]["full"]
    assert after["n"] == 2 and after["confusion"] != before["confusion"]  # the new gold
    changed = json.loads(json.dumps(ITEMS))
    changed[2]["message"] = "not great, I lost my job and my flat"
    text = "".join(json.dumps(i) + "\n" for i in changed)
    model = SchemaRouterModel()
    evaluation(tmp_path, model=model, systems=["full"], resume=True, text=text).run()
    assert model.calls.get("reply", 0) == 1, model.calls  # only the changed item ran again


def test_the_report_draws_intervals_that_do_not_contain_the_value(tmp_path: Path) -> None:
    """Varied replies: distinct-n gets no interval (resampling repeats replies), and bars with
    an interval beside the value still draw."""
    from eval.offline.report import bars

    results = evaluation(tmp_path, systems=["full", "single-call"]).run()
    distinct = rows(results, "reply", "distinct-2")["full"]
    assert distinct["ci"][0] != distinct["ci"][0]  # NaN: no interval
    odd = [{"metric": "m", "system": "a", "value": 0.8, "ci": [0.2, 0.5], "higher_is_better": True}]
    assert bars(tmp_path / "odd.png", "reply", odd) == "odd.png"


def test_bad_systems_and_limits_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(UnknownVariantError, match="no-such"):
        evaluation(tmp_path, systems=["full", "no-such"])
    with pytest.raises(EvaluationError, match="at least one system"):
        evaluation(tmp_path, systems=[])
    with pytest.raises(EvaluationError, match="add full"):
        evaluation(tmp_path, systems=["no-memory"], pairwise=True)
    ran = evaluation(tmp_path, systems=["single-call"], limit=1)
    assert [i.task for i in ran.items] == ["reply", "strategy", "emotion", "memory", "rating"]


def test_the_cli_names_bad_input(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["eval", "run", str(tmp_path / "none.jsonl"), "--report",
                                       str(tmp_path / "r")])  # fmt: skip
    assert missing.exit_code == 1 and "none.jsonl: no such file" in missing.output
    path = bench(tmp_path)
    rubric = CliRunner().invoke(cli, ["eval", "run", str(path), "--report", str(tmp_path / "r"),
                                      "--rubrics", "likert,vibes"])  # fmt: skip
    assert rubric.exit_code == 2 and "vibes" in rubric.output


@pytest.mark.model
def test_a_tiny_evaluation_on_the_embedded_model(tmp_path: Path) -> None:
    """Real graph, stores, plug-ins and model, the real model as judge: two systems."""
    from agent.models import ModelNotInstalledError, resolve_model_path
    from tests.test_e2e import MODEL

    try:
        resolve_model_path(MODEL, Settings().models_dir)
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))
    lines = BENCH.splitlines()
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join([lines[1], lines[2], lines[4], lines[7]]) + "\n")
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, [
        "eval", "run", str(path), "--report", str(report), "--systems", "full,single-call",
        "--judge-model", MODEL, "--rubrics", "epitome", "--model", MODEL, "--max-tokens", "40",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "reply items" in result.output and "report.html" in result.output
    results = json.loads((report / "results.json").read_text())
    judged = rows(results, "reply", "judge epitome: emotional_reactions")
    assert set(judged) == {"full", "single-call"}
    assert all(0 <= r["value"] <= 2 for r in judged.values())
    assert rows(results, "emotion", "emotion accuracy")["emotion-plugin"]["n"] == 1
    assert (report / "report.html").stat().st_size > 2000
