"""`judge-check`: how well the judge's EPITOME levels agree with trained humans'.

Input: EPITOME's CSVs (a directory holding `emotional-reactions.csv`, `interpretations.csv`,
`explorations.csv`, or one file whose name says its mechanism), read by
`importers.import_epitome` as `eval import epitome` reads them, so both see the same pairs,
levels and texts; or a generic CSV with `context,response`, an optional `id`, and one or more
of `emotional_reactions,interpretations,explorations` (0-2). One rule for both: a bad row is
skipped and reported by file and line, never dropped silently; a pair rated twice with the
same level keeps one; with different levels the humans disagree, so that dimension is left out
for the pair, and a pair with no level left is left out (tallied by reason, as the importer
does). Of two versions of a pair's texts the longer is kept.

Sampling: with `limit`, the pairs are stratified by their human ER level and taken
proportionally (a systematic sample: each stratum shuffled with `seed`, interleaved by rank
fraction), so a larger limit with the same seed extends a smaller one and `--resume` reuses it.

REPORT_DIR/records.jsonl   the run's identity, then one verdict per pair, appended and synced
REPORT_DIR/judge_check.json  per dimension: alignment overall and by human level, agreement
REPORT_DIR/report.html     the same for people (`judge_check.html.j2`), plots inline;
                           REPORT_DIR/plots/*.png (`eval.offline.plots`)

Exceptions: `JudgeCheckError` (an `EvalError`) for unreadable data or a report dir that
belongs to another run; the judge's own `JudgeError`s pass through.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from eval.errors import EvalError, JudgeError, NoVerdictError
from eval.offline.importers import (
    DISAGREE,
    DISPUTED_AGAIN,
    NO_LEVEL_LEFT,
    REPEATED,
    Converted,
    SourceError,
    epitome_dimension,
    epitome_files,
    import_epitome,
)
from eval.offline.items import RatingItem
from eval.offline.judge import Judge
from eval.offline.plots import confusion_png, scatter_png
from eval.simulate.files import Journal, clean, write_json
from eval.simulate.tables import fmt

DIMENSIONS = ("emotional_reactions", "interpretations", "explorations")
SHORT = {"emotional_reactions": "ER", "interpretations": "IP", "explorations": "EX"}
LEVELS = (0, 1, 2)
RECORDS, RESULT, REPORT, PLOTS = "records.jsonl", "judge_check.json", "report.html", "plots"
TEMPLATE = "judge_check.html.j2"  # beside this module
MAX_FAILURES_IN_A_ROW = 5
GPT4O_R = 0.25  # Roshanaei et al.: GPT-4o's empathy ratings against trained humans'
SAMPLING = (
    "stratified by the human ER level, proportionally (systematic: each stratum shuffled "
    "with the seed, interleaved by rank fraction)"
)

Level = Annotated[int, Field(ge=0, le=2)]


class JudgeCheckError(EvalError):
    """Rated data that cannot be read, or a report dir that belongs to another run."""


class GenericRow(BaseModel):
    id: str | None = None
    context: str = Field(min_length=1)
    response: str = Field(min_length=1)
    emotional_reactions: Level | None = None
    interpretations: Level | None = None
    explorations: Level | None = None

    @field_validator("id", *DIMENSIONS, mode="before")
    @classmethod
    def blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def some_level(self) -> GenericRow:
        if all(getattr(self, d) is None for d in DIMENSIONS):
            raise ValueError(f"no level in any of {', '.join(DIMENSIONS)}")
        return self

    def rated(self) -> tuple[str, str, str, dict[str, int]]:
        """(pair id: the `id` column or a digest of the texts, context, response, levels)."""
        digest = hashlib.sha256(f"{self.context}\0{self.response}".encode()).hexdigest()[:16]
        levels = {d: level for d in DIMENSIONS if (level := getattr(self, d)) is not None}
        return self.id or digest, self.context, self.response, levels


@dataclass
class RatedPair:
    """A seeker's post (or a conversation) and a reply, with the humans' levels."""

    id: str
    context: str
    response: str
    levels: dict[str, int]
    source: str  # where it was read ("file line N", or the data set), for messages


@dataclass
class RatedSet:
    path: Path
    pairs: list[RatedPair]
    problems: list[str]
    tally: dict[str, int]  # rows left out or changed on purpose, by reason
    digest: str  # sha256 of the files read, so a resumed run knows its data


@dataclass
class _Reading:
    problems: list[str] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    pairs: dict[str, RatedPair] = field(default_factory=dict)
    disputed: set[tuple[str, str]] = field(default_factory=set)


def read_rated(path: Path) -> RatedSet:
    """Read EPITOME's CSVs (a dir, or a file whose name says a mechanism) or a generic rated
    CSV; see the module doc."""
    path = Path(path)
    if path.is_dir() or (path.is_file() and epitome_dimension(path)):
        return read_epitome(path)
    if not path.is_file():
        raise JudgeCheckError(f"No rated data at {path}: give a directory or a CSV file.")
    reading = _Reading()
    read_generic(path, reading)
    pairs = [pair for pair in reading.pairs.values() if pair.levels]
    reading.tally[NO_LEVEL_LEFT] += len(reading.pairs) - len(pairs)
    digest = hashlib.sha256(path.name.encode() + b"\0" + path.read_bytes()).hexdigest()
    return RatedSet(path, pairs, reading.problems, +reading.tally, digest)


def read_epitome(path: Path) -> RatedSet:
    """EPITOME's pairs as `import_epitome` makes its `rating` items, as `RatedPair`s."""
    try:
        files = [file for _, file in epitome_files(path, Converted())]
        converted = import_epitome(path)
    except SourceError as exc:
        raise JudgeCheckError(str(exc)) from exc
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    pairs = [
        RatedPair(item.id, item.context, item.response,
                  {r.dimension: int(r.value) for r in item.ratings}, item.source)
        for item in converted.items if isinstance(item, RatingItem)
    ]  # fmt: skip
    return RatedSet(path, pairs, converted.problems, dict(converted.tally), digest.hexdigest())


def read_generic(file: Path, reading: _Reading) -> None:
    """A generic rated CSV: context, response, an optional id and a level per dimension."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.DictReader(handle)
            rows.fieldnames = header = [h.strip() for h in rows.fieldnames or []]
            if not ({"context", "response"} <= set(header) and set(DIMENSIONS) & set(header)):
                raise JudgeCheckError(
                    f"{file} is neither one of EPITOME's files (a name with emotional, "
                    "interpretation or exploration) nor a rated CSV with columns "
                    f"context,response and one or more of {', '.join(DIMENSIONS)}."
                )
            start = rows.line_num + 1
            try:
                for row in rows:
                    add_row(reading, f"{file.name} line {start}", row)
                    start = rows.line_num + 1
            except csv.Error as exc:
                reading.problems.append(f"{file.name} line {start}: {exc}; the rest of the "
                                        "file is not read")  # fmt: skip
    except UnicodeDecodeError as exc:
        raise JudgeCheckError(f"{file} is not UTF-8 text ({exc}).") from exc


def add_row(reading: _Reading, source: str, row: dict[str | None, Any]) -> None:
    """Validate one row and join its levels into its pair; a bad row is a problem."""
    if None in row or None in row.values():
        width = len(row) - (None in row)
        reading.problems.append(f"{source}: the wrong number of fields (the header has "
                                f"{width}); row skipped")  # fmt: skip
        return
    try:
        found = GenericRow.model_validate(row)
    except ValidationError as exc:
        why = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg'].lower()}"
            + (f" (got {str(e['input'])[:40]!r})" if e["loc"] else "")
            for e in exc.errors()
        )
        reading.problems.append(f"{source}: {why}; row skipped")
        return
    pair_id, context, response, levels = found.rated()
    pair = reading.pairs.setdefault(pair_id, RatedPair(pair_id, context, response, {}, source))
    if squeeze(pair.context, pair.response) != squeeze(context, response):
        reading.problems.append(f"{source}: pair {pair_id}'s texts differ from "
                                f"{pair.source} beyond spacing; the longer kept")  # fmt: skip
    pair.context = max(pair.context, context, key=len)
    pair.response = max(pair.response, response, key=len)
    for rated in levels.items():
        add_level(reading, pair, rated)


def add_level(reading: _Reading, pair: RatedPair, rated: tuple[str, int]) -> None:
    """Join one human level into its pair, by the importer's rule for repeats and disputes."""
    dimension, level = rated
    if (pair.id, dimension) in reading.disputed:
        reading.tally[DISPUTED_AGAIN] += 1
    elif dimension not in pair.levels:
        pair.levels[dimension] = level
    elif pair.levels[dimension] == level:
        reading.tally[REPEATED] += 1
    else:
        reading.tally[DISAGREE] += 1
        reading.disputed.add((pair.id, dimension))
        del pair.levels[dimension]


def squeeze(*texts: str) -> tuple[str, ...]:
    """Texts with runs of white space as one space: EPITOME's files space some posts apart."""
    return tuple(" ".join(text.split()) for text in texts)


def sample(pairs: Sequence[RatedPair], limit: int | None, seed: int) -> list[RatedPair]:
    """`limit` pairs, stratified by human ER level (see the module doc); all without one."""
    rng, strata = random.Random(seed), dict[str, list[RatedPair]]()
    for pair in sorted(pairs, key=lambda p: p.id):
        strata.setdefault(str(pair.levels.get(DIMENSIONS[0], "none")), []).append(pair)
    ranked: list[tuple[float, str, RatedPair]] = []
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        offset = rng.random()
        ranked += [((i + offset) / len(members), p.id, p) for i, p in enumerate(members)]
    ordered = [pair for *_, pair in sorted(ranked, key=lambda r: (r[0], r[1]))]
    return ordered if limit is None else ordered[: max(0, limit)]


def open_journal(report_dir: Path, identity: dict[str, Any], resume: bool) -> Journal:
    """The run's records.jsonl: new, or (with `resume`) the same judge's on the same data."""
    path = report_dir / RECORDS
    if report_dir.exists() and any(report_dir.iterdir()):
        if not resume:
            raise JudgeCheckError(f"{report_dir} is not empty: pass --resume to go on with the "
                                  "run there, or give a new report dir.")  # fmt: skip
        if not path.is_file():
            raise JudgeCheckError(f"{report_dir} holds no {RECORDS}: it is not a judge-check "
                                  "report dir, so it cannot be resumed.")  # fmt: skip
    report_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(path)
    run = next((r for r in journal.records if r.get("type") == "run"), None)
    if run is None:
        journal.append({"type": "run", **identity})
        return journal
    for key, what in (("judge_sha", "judge"), ("data_sha", "data")):
        if run.get(key) != identity[key]:
            raise JudgeCheckError(
                f"{report_dir} was made with another {what}: {run.get(what)!r} ({key} "
                f"{str(run.get(key))[:16]}…), not {identity[what]!r} ({identity[key][:16]}…). "
                "Give a new report dir."
            )
    return journal


def run_judge_check(
    path: Path,
    judge: Judge,
    report_dir: Path,
    *,
    judge_name: str,
    judge_sha: str,
    limit: int | None,
    seed: int,
    resume: bool,
    on_progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Judge a sample of rated pairs with the `epitome` rubric, journalled as it goes, then
    measure the judge against the humans per dimension; write the JSON and HTML reports."""
    rated = read_rated(Path(path))
    if not rated.pairs:
        first = rated.problems[0] if rated.problems else "none"
        raise JudgeCheckError(f"{path} holds no usable rated pair ({len(rated.problems)} "
                              f"problems; the first: {first}).")  # fmt: skip
    chosen = sample(rated.pairs, limit, seed)
    identity = {"judge": judge_name, "judge_sha": judge_sha, "data": str(path),
                "data_sha": rated.digest, "rubric": "epitome"}  # fmt: skip
    journal = open_journal(Path(report_dir), identity, resume)
    judge_pairs(judge, journal, chosen, judge_sha, on_progress)
    verdicts = {r["pair"]: r for r in journal.records
                if r.get("type") == "verdict" and r.get("judge_sha") == judge_sha}  # fmt: skip
    result: dict[str, Any] = clean({
        **identity, "seed": seed, "limit": limit, "sampling": SAMPLING,
        "pairs_in_data": len(rated.pairs), "n": sum(p.id in verdicts for p in chosen),
        "failed": [p.id for p in chosen if p.id not in verdicts],
        "problems": {"count": len(rated.problems), "messages": rated.problems},
        "tally": rated.tally,
        "dimensions": dimension_results(chosen, verdicts, Path(report_dir) / PLOTS),
    })  # fmt: skip
    write_json(Path(report_dir) / RESULT, result)
    (Path(report_dir) / REPORT).write_text(render_html(result, Path(report_dir)), "utf-8")
    return result


def judge_pairs(
    judge: Judge, journal: Journal, pairs: Sequence[RatedPair], judge_sha: str,
    on_progress: Callable[[int, int], None] | None,
) -> None:  # fmt: skip
    """Judge each pair not judged yet; a pair with no valid verdict is journalled as failed
    (retried on resume), and `MAX_FAILURES_IN_A_ROW` of them stop the run."""
    done = {(r["pair"], r["judge_sha"]) for r in journal.records if r.get("type") == "verdict"}
    failures = 0
    for n, pair in enumerate(pairs):
        if on_progress:
            on_progress(n, len(pairs))
        if (pair.id, judge_sha) in done:
            continue
        base = {"pair": pair.id, "judge_sha": judge_sha, "human": pair.levels}
        try:
            verdict = judge.score("epitome", context=pair.context, response=pair.response)
        except NoVerdictError as exc:
            journal.append({"type": "failed", **base, "error": str(exc)})
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise JudgeError(f"{failures} pairs in a row got no valid verdict; the last: "
                                 f"{exc}") from exc  # fmt: skip
            continue
        failures = 0
        journal.append({"type": "verdict", **base, "scores": verdict.scores,
                        "criteria": verdict.criteria,
                        "calls": [c.model_dump(mode="json") for c in verdict.calls]})  # fmt: skip
    if on_progress:
        on_progress(len(pairs), len(pairs))


def dimension_results(
    pairs: Sequence[RatedPair], verdicts: dict[str, dict[str, Any]], plots: Path
) -> dict[str, Any]:
    """Per dimension: alignment overall and by human level, exact agreement, the confusion
    (rows human level, columns judge level) and its plots."""
    from eval.offline.stats import alignment_by_level

    found: dict[str, Any] = {}
    for dim in DIMENSIONS:
        both = [(verdicts[p.id]["scores"][dim], p.levels[dim])
                for p in pairs if p.id in verdicts and dim in p.levels]  # fmt: skip
        if not both:
            continue
        judged, human = [j for j, _ in both], [h for _, h in both]
        matrix = [[sum(1 for j, h in both if (h, j) == (row, col)) for col in LEVELS]
                  for row in LEVELS]  # fmt: skip
        plots.mkdir(parents=True, exist_ok=True)
        name = SHORT[dim]
        scatter = scatter_png(
            judged, human, plots / f"scatter-{name}.png", f"{name}: judge vs humans"
        )
        confusion = confusion_png(matrix, [str(v) for v in LEVELS], plots / f"confusion-{name}.png",
                                  f"{name}: human level (rows) × judge level (columns)",
                                  xlabel="judge level", ylabel="human level")  # fmt: skip
        found[dim] = {
            "short": name, "n": len(both),
            "exact_agreement": sum(j == h for j, h in both) / len(both),
            "alignment": {k: a.as_dict() for k, a in alignment_by_level(judged, human).items()},
            "labels": [str(v) for v in LEVELS], "confusion": matrix,
            "plots": {kind: f"{PLOTS}/{png.name}"
                      for kind, png in (("scatter", scatter), ("confusion", confusion))},
        }  # fmt: skip
    return found


# --- the HTML report --------------------------------------------------------------------------
def render_html(result: dict[str, Any], report_dir: Path) -> str:
    """The report for people: what was measured, the statistics, the plots inline."""
    import jinja2

    images = {
        f"{dim}-{kind}": base64.b64encode((report_dir / rel).read_bytes()).decode()
        for dim, found in result["dimensions"].items() for kind, rel in found["plots"].items()
    }  # fmt: skip
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("eval.offline", "."), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )  # fmt: skip
    return env.get_template(TEMPLATE).render(r=result, images=images, gpt4o=GPT4O_R, fmt=fmt)
