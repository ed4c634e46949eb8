"""The LLM judge and `judge-check`, on fake chat models (no model file, no network)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr, ValidationError

from eval.errors import JudgeError, NoVerdictError
from eval.offline.importers import DISAGREE, NO_LEVEL_LEFT, REPEATED, import_epitome
from eval.offline.judge import Judge
from eval.offline.judge_check import (
    MAX_FAILURES_IN_A_ROW,
    JudgeCheckError,
    read_rated,
    run_judge_check,
    sample,
)
from eval.offline.rubrics import (
    RUBRICS,
    EpitomeVerdict,
    LikertVerdict,
    PairVerdict,
    parse_rubrics,
    rubric_names,
)

CRITERIA = ["It names the loss and the loneliness."]
HEADER = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"


class JudgeFake(BaseChatModel):
    """Answers by the schema title (as tests/sim_fakes.py's SchemaRouterModel does): a fixed
    verdict per rubric; pairwise, prefers position "A" or the reply containing `favourite`."""

    prefer: str = "A"  # "A": always position A; "text": the reply holding `favourite`
    favourite: str = "walk"
    junk: bool = False
    scores: dict[str, int] = {}
    _calls: list[str] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "judge-fake"

    @property
    def calls(self) -> list[str]:
        return list(self._calls)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        title = kwargs["response_format"]["schema"]["title"]
        with self._lock:
            self._calls.append(title)
        prompt = str(messages[-1].content)
        content = "no json here, sorry" if self.junk else json.dumps(self.answer(title, prompt))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])

    def answer(self, title: str, prompt: str) -> dict[str, Any]:
        if title == "PairVerdict":
            if self.prefer == "A":
                return {"criteria": CRITERIA, "better": "A"}
            a = prompt.split("<reply_a>")[1].split("</reply_a>")[0]
            return {"criteria": CRITERIA, "better": "A" if self.favourite in a else "B"}
        schema = next(r.schema for r in RUBRICS.values() if r.schema.__name__ == title)
        fields = [f for f in schema.model_fields if f != "criteria"]
        return {"criteria": CRITERIA, **{f: self.scores.get(f, 1) for f in fields}}


def judge(**kw: Any) -> tuple[Judge, JudgeFake]:
    fake = JudgeFake(**kw)
    return Judge(fake, "json_schema_text", name="fake-judge"), fake


# --- schemas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["likert", "epitome", "personaemp"])
def test_criteria_come_first_and_strings_are_bounded(name):
    schema = RUBRICS[name].schema.model_json_schema()
    assert next(iter(schema["properties"])) == "criteria"
    criteria = schema["properties"]["criteria"]
    assert criteria["maxItems"] == 4 and criteria["items"]["maxLength"] == 160
    assert all("enum" in p for k, p in schema["properties"].items() if k != "criteria")
    assert next(iter(PairVerdict.model_json_schema()["properties"])) == "criteria"


def test_out_of_range_scores_and_long_criteria_are_rejected():
    with pytest.raises(ValidationError):
        LikertVerdict(criteria=CRITERIA, affective=6, cognitive=3, overall=3)
    with pytest.raises(ValidationError):
        EpitomeVerdict(criteria=CRITERIA, emotional_reactions=3, interpretations=0, explorations=0)
    with pytest.raises(ValidationError):
        EpitomeVerdict(criteria=["x" * 161], emotional_reactions=1, interpretations=0,
                       explorations=0)  # fmt: skip
    with pytest.raises(ValidationError):
        EpitomeVerdict(criteria=[], emotional_reactions=1, interpretations=0, explorations=0)


def test_rubrics_are_named_and_unknown_ones_listed():
    assert rubric_names() == ["likert", "epitome", "personaemp"]
    assert [r.name for r in parse_rubrics("likert, epitome,likert")] == ["likert", "epitome"]
    with pytest.raises(JudgeError, match="likert, epitome, personaemp"):
        parse_rubrics("likert,warmth")


# --- score and compare -----------------------------------------------------------------------
def test_score_returns_the_verdict_and_the_prompt_is_blind():
    the_judge, fake = judge(scores={"affective": 4, "cognitive": 3, "overall": 4})
    verdict = the_judge.score("likert", context="My dog died.", response="I'm so sorry.",
                              persona="Ana, 34, wants to be heard.")  # fmt: skip
    assert verdict.rubric == "likert" and verdict.criteria == CRITERIA
    assert verdict.scores == {"affective": 4, "cognitive": 3, "overall": 4}
    assert len(verdict.calls) == 1 and verdict.calls[0].node == "judge"
    human = str(
        the_judge.prompt(RUBRICS["likert"], context="c", response="r", persona="p")[1].content
    )
    assert human.index("Who this person is") < human.index("<reply>") < human.index("JSON")
    assert "full" not in human and "system" not in human.lower()


def test_junk_twice_is_a_judge_error_naming_the_model():
    the_judge, fake = judge(junk=True)
    with pytest.raises(NoVerdictError, match="fake-judge.*--judge-model"):
        the_judge.score("epitome", context="c", response="r")
    assert fake.calls == ["EpitomeVerdict", "EpitomeVerdict"]


def test_a_judge_that_follows_the_position_is_inconsistent_and_a_tie():
    the_judge, _ = judge(prefer="A")
    found = the_judge.compare(context="I feel stuck.", first="Go for a walk.", second="Hm.")
    assert found.picks == ("first", "second")
    assert not found.consistent and found.outcome == "tie"
    assert len(found.calls) == 2


@pytest.mark.parametrize(("first", "second", "outcome"), [
    ("Shall we take a walk together?", "Hm.", "win"),
    ("Hm.", "Shall we take a walk together?", "loss"),
])  # fmt: skip
def test_a_judge_that_prefers_the_same_reply_is_consistent(first, second, outcome):
    the_judge, _ = judge(prefer="text")
    found = the_judge.compare(context="I feel stuck.", first=first, second=second)
    assert found.consistent and found.outcome == outcome


# --- reading rated data ----------------------------------------------------------------------
def epitome_dir(folder: Path, n: int = 6, bad: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, shift in (("emotional-reactions", 0), ("interpretations", 1), ("explorations", 2)):
        rows = [f's{i},r{i},"seeker post {i}, with a comma","reply {i}",{(i + shift) % 3},\n'
                for i in range(n)]  # fmt: skip
        if bad and name == "interpretations":
            rows.insert(2, 'sx,rx,"a post","a reply",7,\n')  # line 4: level out of range
        (folder / f"{name}.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    return folder


def test_read_rated_joins_epitome_files_and_names_a_bad_row(tmp_path):
    rated = read_rated(epitome_dir(tmp_path / "epitome"))
    assert len(rated.pairs) == 6
    first = next(p for p in rated.pairs if p.id == "epitome-s1-r1")
    assert first.context == "seeker post 1, with a comma" and first.response == "reply 1"
    assert first.levels == {"emotional_reactions": 1, "interpretations": 2, "explorations": 0}
    assert rated.problems == ["interpretations.csv line 4: level '7' is not 0, 1 or 2."]


def test_one_epitome_file_gives_its_dimension_and_repeats_are_tallied(tmp_path):
    file = tmp_path / "explorations.csv"
    file.write_text(HEADER + 'a,b,"post","reply",2,\na,b,"post","reply",2,\nc,d,"p","r",1,\n'
                    'c,d,"p","r",0,\n', encoding="utf-8")  # fmt: skip
    rated = read_rated(file)
    assert [(p.id, p.levels) for p in rated.pairs] == [("epitome-a-b", {"explorations": 2})]
    assert rated.tally == {REPEATED: 1, DISAGREE: 1, NO_LEVEL_LEFT: 1} and not rated.problems


def test_read_rated_and_the_importer_agree_on_epitome(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=4)
    explorations = data / "explorations.csv"
    longer = '"seeker  post 2, with a comma, on reddit"'
    explorations.write_text(
        explorations.read_text().replace('"seeker post 2, with a comma"', longer)
        + 's1,r1,"seeker post 1, with a comma","reply 1",2,\n',  # 0 before: they disagree
        encoding="utf-8",
    )
    rated, converted = read_rated(data), import_epitome(data)
    assert [(p.id, p.context, p.response, p.levels) for p in rated.pairs] == [
        (item.id, item.context, item.response, {r.dimension: r.value for r in item.ratings})
        for item in converted.items
        if item.task == "rating"
    ]
    by_id = {p.id: p for p in rated.pairs}
    assert "explorations" not in by_id["epitome-s1-r1"].levels  # the humans disagree
    assert by_id["epitome-s2-r2"].levels["explorations"] == 1
    assert by_id["epitome-s2-r2"].context.endswith("on reddit")  # the longer text is kept
    assert rated.tally == dict(converted.tally) and rated.problems == converted.problems


def test_read_rated_takes_a_generic_csv(tmp_path):
    file = tmp_path / "mine.csv"
    file.write_text(
        "context,response,emotional_reactions,explorations\n"
        "I lost my job.,That sounds frightening. What happened?,2,2\n"
        "I passed!,Nice.,1,\n"
        "No level here,Reply,,\n"
        "Bad,Reply,high,0\n"
        "I lost my job.,That sounds frightening. What happened?,2,1\n", encoding="utf-8",
    )  # fmt: skip
    rated = read_rated(file)
    assert [p.levels for p in rated.pairs] == [
        {"emotional_reactions": 2},  # the explorations levels disagree
        {"emotional_reactions": 1},
    ]
    assert rated.tally == {REPEATED: 1, DISAGREE: 1}
    assert rated.problems[0].startswith("mine.csv line 4: row: value error, no level")
    assert rated.problems[1].startswith("mine.csv line 5: emotional_reactions")
    (tmp_path / "other.csv").write_text("text,score\nx,1\n", encoding="utf-8")
    with pytest.raises(JudgeCheckError, match="context,response"):
        read_rated(tmp_path / "other.csv")


def test_a_larger_sample_extends_a_smaller_one(tmp_path):
    pairs = read_rated(epitome_dir(tmp_path / "e", n=30, bad=False)).pairs
    small, large = sample(pairs, 9, seed=3), sample(pairs, 15, seed=3)
    assert [p.id for p in large[:9]] == [p.id for p in small]
    assert sorted(p.levels["emotional_reactions"] for p in small) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


# --- judge-check end to end ------------------------------------------------------------------
def check(data: Path, report: Path, the_judge: Judge, sha: str = "sha-1", **kw: Any) -> dict:
    options = {"judge_name": "fake-judge", "judge_sha": sha, "limit": None, "seed": 1,
               "resume": False, "on_progress": None, **kw}  # fmt: skip
    return run_judge_check(data, the_judge, report, **options)


def test_judge_check_writes_alignment_report_and_plots(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=12)
    the_judge, fake = judge(scores={"emotional_reactions": 1, "interpretations": 2})
    seen: list[tuple[int, int]] = []
    result = check(
        data, tmp_path / "report", the_judge, on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (12, 12) and len(fake.calls) == 12
    saved = json.loads((tmp_path / "report" / "judge_check.json").read_text())
    assert saved["n"] == 12 and saved["problems"]["count"] == 1
    for dim in ("emotional_reactions", "interpretations", "explorations"):
        found = saved["dimensions"][dim]
        assert found["alignment"]["all"]["n"] == 12 and found["n"] == 12
        assert set(found["alignment"]) == {"all", "0", "1", "2"}
        assert sum(map(sum, found["confusion"])) == 12
        for plot in found["plots"].values():
            assert (tmp_path / "report" / plot).stat().st_size > 1000
    assert saved["dimensions"]["emotional_reactions"]["exact_agreement"] == pytest.approx(4 / 12)
    html = (tmp_path / "report" / "report.html").read_text()
    assert all(w in html for w in ("emotional reactions", "interpretations", "explorations"))
    assert "data:image/png;base64," in html and "0.25" in html
    assert result["judge_sha"] == "sha-1"


def test_resume_judges_only_the_missing_pairs(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=10, bad=False)
    the_judge, fake = judge()
    check(data, tmp_path / "report", the_judge, limit=4)
    assert len(fake.calls) == 4
    with pytest.raises(JudgeCheckError, match="--resume"):
        check(data, tmp_path / "report", the_judge, limit=10)
    result = check(data, tmp_path / "report", the_judge, limit=10, resume=True)
    assert len(fake.calls) == 10 and result["n"] == 10
    records = (tmp_path / "report" / "records.jsonl").read_text().splitlines()
    assert len(records) == 1 + 10


def test_a_report_dir_of_another_judge_or_data_is_refused(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=4, bad=False)
    the_judge, fake = judge()
    check(data, tmp_path / "report", the_judge)
    with pytest.raises(JudgeCheckError, match="another judge"):
        check(data, tmp_path / "report", the_judge, sha="sha-2", resume=True)
    other = epitome_dir(tmp_path / "other", n=5, bad=False)
    with pytest.raises(JudgeCheckError, match="another data"):
        check(other, tmp_path / "report", the_judge, resume=True)
    assert len(fake.calls) == 4


def test_a_pair_without_a_valid_verdict_is_journalled_and_retried_on_resume(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=3, bad=False)
    broken, _ = judge(junk=True)
    result = check(data, tmp_path / "report", broken)
    assert result["n"] == 0 and len(result["failed"]) == 3
    the_judge, fake = judge()
    assert check(data, tmp_path / "report", the_judge, resume=True)["n"] == 3
    assert len(fake.calls) == 3


def test_a_judge_that_never_gives_a_verdict_stops_the_run(tmp_path):
    data = epitome_dir(tmp_path / "epitome", n=8, bad=False)
    broken, fake = judge(junk=True)
    with pytest.raises(JudgeError, match="5 pairs in a row.*fake-judge"):
        check(data, tmp_path / "report", broken)
    assert len(fake.calls) == 2 * MAX_FAILURES_IN_A_ROW
    records = (tmp_path / "report" / "records.jsonl").read_text().splitlines()
    assert sum('"failed"' in r for r in records) == MAX_FAILURES_IN_A_ROW


def test_blank_criteria_are_dropped_and_one_real_one_is_needed() -> None:
    from pydantic import ValidationError

    from eval.offline.rubrics import PairVerdict

    kept = PairVerdict.model_validate(
        {"criteria": ["A names her feeling", " ", " "], "better": "A"}
    )
    assert kept.criteria == ["A names her feeling"]
    with pytest.raises(ValidationError):
        PairVerdict.model_validate({"criteria": [" ", " "], "better": "A"})
