"""`judge-check`: how well the judge's EPITOME levels agree with trained humans'.

Input: EPITOME's CSVs (a directory holding `emotional-reactions.csv`, `interpretations.csv`,
`explorations.csv`, or one of them; columns `sp_id,rp_id,seeker_post,response_post,level,
rationales`), joined on (sp_id, rp_id); or a generic CSV with `context,response`, an optional
`id`, and one or more of `emotional_reactions,interpretations,explorations` (0-2). A bad row is
skipped and reported by file and line, never dropped silently. A pair listed twice with the
same level keeps one; with different levels the humans disagree, so that dimension is left
out for the pair. The pair's text is the first file's: EPITOME's three files differ in spacing
and now and then in a word ("reddit" left out); a difference beyond spacing is reported.

Sampling: with `limit`, the pairs are stratified by their human ER level and taken
proportionally (a systematic sample: each stratum shuffled with `seed`, interleaved by rank
fraction), so a larger limit with the same seed extends a smaller one and `--resume` reuses it.

REPORT_DIR/records.jsonl   the run's identity, then one verdict per pair, appended and synced
REPORT_DIR/judge_check.json  per dimension: alignment overall and by human level, agreement
REPORT_DIR/report.html     the same for people, plots inline; REPORT_DIR/plots/*.png

Exceptions: `JudgeCheckError` (an `EvalError`) for unreadable data or a report dir that
belongs to another run; the judge's own `JudgeError`s pass through.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from eval.errors import EvalError
from eval.offline.judge import Judge, JudgeError, NoVerdictError
from eval.simulate.files import Journal, write_json

DIMENSIONS = ("emotional_reactions", "interpretations", "explorations")
SHORT = {"emotional_reactions": "ER", "interpretations": "IP", "explorations": "EX"}
FILES = {"emotional-reactions.csv": DIMENSIONS[0], "interpretations.csv": DIMENSIONS[1],
         "explorations.csv": DIMENSIONS[2]}  # fmt: skip
LEVELS = (0, 1, 2)
RECORDS, RESULT, REPORT, PLOTS = "records.jsonl", "judge_check.json", "report.html", "plots"
MAX_FAILURES_IN_A_ROW = 5
GPT4O_R = 0.25  # Roshanaei et al.: GPT-4o's empathy ratings against trained humans'
SAMPLING = (
    "stratified by the human ER level, proportionally (systematic: each stratum shuffled "
    "with the seed, interleaved by rank fraction)"
)

Level = Annotated[int, Field(ge=0, le=2)]
EPITOME_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level")


class JudgeCheckError(EvalError):
    """Rated data that cannot be read, or a report dir that belongs to another run."""


class EpitomeRow(BaseModel):
    sp_id: str = Field(min_length=1)
    rp_id: str = Field(min_length=1)
    seeker_post: str = Field(min_length=1)
    response_post: str = Field(min_length=1)
    level: Level
    rationales: str = ""

    def rated(self, dimension: str) -> tuple[str, str, str, dict[str, int]]:
        """(pair id, context, response, {dimension: level})."""
        pair_id = f"{self.sp_id}/{self.rp_id}"
        return pair_id, self.seeker_post, self.response_post, {dimension: self.level}


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

    def rated(self, _: str = "") -> tuple[str, str, str, dict[str, int]]:
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
    source: str  # "file line N", for messages


@dataclass
class RatedSet:
    path: Path
    pairs: list[RatedPair]
    problems: list[str]
    digest: str  # sha256 of the files read, so a resumed run knows its data


@dataclass
class _Reading:
    problems: list[str] = field(default_factory=list)
    pairs: dict[str, RatedPair] = field(default_factory=dict)
    seen: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # line, level
    disputed: set[tuple[str, str]] = field(default_factory=set)


def read_rated(path: Path) -> RatedSet:
    """Read EPITOME's CSVs (a dir or one file) or a generic rated CSV; see the module doc."""
    path = Path(path)
    if path.is_dir():
        files = [(path / name, dim) for name, dim in FILES.items() if (path / name).is_file()]
        if not files:
            raise JudgeCheckError(f"{path} holds none of EPITOME's files ({', '.join(FILES)}).")
    elif path.is_file():
        files = [(path, FILES.get(path.name, ""))]
    else:
        raise JudgeCheckError(f"No rated data at {path}: give a directory or a CSV file.")
    reading, digest = _Reading(), hashlib.sha256()
    for file, dimension in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
        read_csv(file, dimension, reading)
    pairs = []
    for pair in reading.pairs.values():
        if pair.levels:
            pairs.append(pair)
        else:
            reading.problems.append(f"{pair.source}: pair {pair.id} has no level left; skipped")
    return RatedSet(path, pairs, reading.problems, digest.hexdigest())


def csv_rows(file: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line, row by column) for each row; a row of the wrong width is a problem."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            yield 0, dict.fromkeys(header, "")  # the header, for the caller to check
            start = reader.line_num + 1
            try:
                for row in reader:
                    line, start = start, reader.line_num + 1
                    if not any(cell.strip() for cell in row):
                        continue
                    if len(row) != len(header):
                        problems.append(f"{file.name} line {line}: {len(row)} fields where the "
                                        f"header has {len(header)}; row skipped")  # fmt: skip
                        continue
                    yield line, dict(zip(header, row, strict=True))
            except csv.Error as exc:
                problems.append(f"{file.name} line {start}: {exc}; the rest of the file is "
                                "not read")  # fmt: skip
    except UnicodeDecodeError as exc:
        raise JudgeCheckError(f"{file} is not UTF-8 text ({exc}).") from exc


def validated(
    model: type[BaseModel], file: Path, line: int, row: dict[str, str], problems: list[str]
) -> Any:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        found = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg'].lower()}"
            + (f" (got {str(e['input'])[:40]!r})" if e["loc"] else "")
            for e in exc.errors()
        )
        problems.append(f"{file.name} line {line}: {found}; row skipped")
        return None


def read_csv(file: Path, dimension: str, reading: _Reading) -> None:
    """One CSV: EPITOME's, rated on `dimension`, or (no dimension) a generic rated one."""
    rows = csv_rows(file, reading.problems)
    _, header = next(rows)
    schema: type[EpitomeRow | GenericRow] = EpitomeRow if dimension else GenericRow
    if dimension and (missing := [c for c in EPITOME_COLUMNS if c not in header]):
        raise JudgeCheckError(f"{file} lacks the column(s) {', '.join(missing)}.")
    if not dimension and not (
        {"context", "response"} <= set(header) and set(DIMENSIONS) & set(header)
    ):
        raise JudgeCheckError(
            f"{file} is neither one of EPITOME's files ({', '.join(FILES)}) nor a rated CSV "
            f"with columns context,response and one or more of {', '.join(DIMENSIONS)}."
        )
    for line, row in rows:
        found = validated(schema, file, line, row, reading.problems)
        if found is not None:
            pair_id, context, response, levels = found.rated(dimension)
            for rated in levels.items():
                add_level(reading, pair_id, context, response, rated, (file.name, line))


def add_level(
    reading: _Reading, pair_id: str, context: str, response: str, rated: tuple[str, int],
    where: tuple[str, int],
) -> None:  # fmt: skip
    """Join one human level into its pair (see the module doc for repeats and disputes)."""
    (dimension, level), source = rated, f"{where[0]} line {where[1]}"
    pair = reading.pairs.setdefault(pair_id, RatedPair(pair_id, context, response, {}, source))
    if squeeze(pair.context, pair.response) != squeeze(context, response):
        reading.problems.append(f"{source}: pair {pair_id}'s texts differ from "
                                f"{pair.source} beyond spacing; the level is kept")  # fmt: skip
    key = (pair_id, dimension)
    if key in reading.disputed:
        reading.problems.append(f"{source}: pair {pair_id} is rated again; {dimension} stays out")
    elif key in reading.seen:
        line, before = reading.seen[key]
        if before == level:
            reading.problems.append(f"{source}: repeats pair {pair_id} ({dimension} {level}, "
                                    f"line {line}); skipped")  # fmt: skip
        else:
            reading.problems.append(
                f"{source}: pair {pair_id} was rated {dimension} {before} at line {line} and "
                f"{level} here; the humans disagree, so this pair has no {dimension} level"
            )
            reading.disputed.add(key)
            pair.levels.pop(dimension, None)
    else:
        reading.seen[key] = (where[1], level)
        pair.levels[dimension] = level


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
    result = {
        **identity, "data": str(path), "seed": seed, "limit": limit, "sampling": SAMPLING,
        "pairs_in_data": len(rated.pairs), "n": sum(p.id in verdicts for p in chosen),
        "failed": [p.id for p in chosen if p.id not in verdicts],
        "problems": {"count": len(rated.problems), "messages": rated.problems},
        "dimensions": dimension_results(chosen, verdicts, Path(report_dir) / PLOTS),
    }  # fmt: skip
    write_json(Path(report_dir) / RESULT, clean(result))
    (Path(report_dir) / REPORT).write_text(render_html(clean(result), Path(report_dir)), "utf-8")
    return clean(result)  # type: ignore[no-any-return]


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


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


# --- plots (reused by the main eval report) -------------------------------------------------
def scatter_png(
    judge: Sequence[float], human: Sequence[float], path: Path, title: str, *, seed: int = 0
) -> Path:
    """A jittered scatter of judge against human scores, the diagonal of agreement, and the
    judge's mean at each human level."""
    import numpy as np
    from matplotlib.figure import Figure

    judged, truth = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    rng = np.random.default_rng(seed)
    figure = Figure(figsize=(4.4, 4.0), dpi=110)
    ax = figure.add_subplot()
    if len(truth):
        ax.scatter(truth + rng.uniform(-0.15, 0.15, len(truth)),
                   judged + rng.uniform(-0.15, 0.15, len(judged)), s=12, alpha=0.4)  # fmt: skip
        values = np.concatenate([judged, truth])
        low, high = float(values.min()), float(values.max())
        ax.plot([low - 0.4, high + 0.4], [low - 0.4, high + 0.4], "--", color="grey", lw=1,
                label="judge = human")  # fmt: skip
        levels = sorted(set(truth.tolist()))
        means = [float(judged[truth == level].mean()) for level in levels]
        ax.plot(levels, means, "D-", color="C3", label="judge mean per human level")
        if np.all(values == np.round(values)):
            ax.set_xticks(range(int(low), int(high) + 1))
            ax.set_yticks(range(int(low), int(high) + 1))
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="human", ylabel="judge")
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return Path(path)


def confusion_png(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], path: Path, title: str, *,
    xlabel: str = "", ylabel: str = "",
) -> Path:  # fmt: skip
    """A heatmap of a square confusion matrix: colour is the share of the row (so rare rows
    show), the number is the count."""
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=float).reshape(len(labels), len(labels))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 2.6 + 0.45 * len(labels)
    figure = Figure(figsize=(size + 0.8, size), dpi=110)
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ticks, long = range(len(labels)), max(map(len, labels), default=0) > 3
    ax.set_xticks(ticks, labels, rotation=45 if long else 0, ha="right" if long else "center",
                  fontsize=8)  # fmt: skip
    ax.set_yticks(ticks, labels, fontsize=8)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, f"{count:g}", ha="center", va="center", fontsize=8,
                color="white" if shares[row, col] > 0.6 else "black")  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return Path(path)


# --- the HTML report --------------------------------------------------------------------------
def render_html(result: dict[str, Any], report_dir: Path) -> str:
    """The report for people: what was measured, the statistics, the plots inline."""
    from jinja2 import Environment

    images = {
        f"{dim}-{kind}": base64.b64encode((report_dir / rel).read_bytes()).decode()
        for dim, found in result["dimensions"].items() for kind, rel in found["plots"].items()
    }  # fmt: skip
    template = Environment(autoescape=True).from_string(HTML)
    return template.render(r=result, images=images, gpt4o=GPT4O_R, fmt=fmt, COLUMNS=COLUMNS)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 0.01 and value else f"{value:.{digits}f}"
    return str(value)


COLUMNS = [("n", "n"), ("judge_mean", "judge mean"), ("judge_std", "judge SD"),
           ("human_mean", "human mean"), ("human_std", "human SD"), ("pearson_r", "Pearson r"),
           ("pearson_p", "p"), ("spearman_rho", "Spearman ρ"), ("cohens_d", "Cohen's d"),
           ("wasserstein", "Wasserstein"), ("paired_t", "paired t"), ("paired_p", "p")]  # fmt: skip

HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>judge-check: {{ r.judge }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;
padding:.25rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
img{max-width:48%;vertical-align:top}code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1>judge-check: the judge against trained humans on EPITOME</h1>
<p>Judge <code>{{ r.judge }}</code> (<code>{{ r.judge_sha }}</code>) rated {{ r.n }} reply
pairs from <code>{{ r.data }}</code> ({{ r.pairs_in_data }} usable pairs; sample:
{{ r.sampling }}; seed {{ r.seed }}) on EPITOME's three mechanisms (Sharma et al., EMNLP 2020),
each 0 none, 1 weak, 2 strong: emotional reactions (ER), interpretations (IP) and explorations
(EX). Each row below sets the judge's levels beside the humans' on the same pairs, overall and
for the pairs the humans rated at each level (within a level the human side is constant, so
correlations there are undefined; the judge's mean says how it drifts).</p>
<p>For scale: in Roshanaei et al., GPT-4o's empathy ratings correlated with trained humans' at
about r ≈ {{ gpt4o }}, with less spread than the humans'. Here the judge's Pearson r is
{% for d in r.dimensions.values() %}{{ d.short }} {{ fmt(d.alignment.all.pearson_r) }}
{{- ", " if not loop.last }}{% endfor %}
(their ratings were on Likert scales, ours on EPITOME levels: a yardstick, not a like-for-like
comparison).</p>
{% if r.failed %}<p>{{ r.failed|length }} pairs got no valid verdict; they are left out.</p>
{% endif %}
{% for dim, d in r.dimensions.items() %}
<h2>{{ d.short }}: {{ dim.replace("_", " ") }}</h2>
<p>{{ d.n }} pairs; exact agreement {{ fmt(100 * d.exact_agreement, 1) }}%.</p>
<table><tr><th>human level</th>{% for key, label in COLUMNS %}<th>{{ label }}</th>{% endfor %}</tr>
{% for level, a in d.alignment.items() %}<tr><td>{{ level }}</td>
{% for key, label in COLUMNS %}<td>{{ fmt(a[key]) }}</td>{% endfor %}</tr>{% endfor %}</table>
<img alt="{{ d.short }} scatter" src="data:image/png;base64,{{ images[dim ~ '-scatter'] }}">
<img alt="{{ d.short }} confusion" src="data:image/png;base64,{{ images[dim ~ '-confusion'] }}">
{% endfor %}
<h2>Data problems ({{ r.problems.count }})</h2>
{% if r.problems.count %}<ul>{% for m in r.problems.messages[:200] %}<li>{{ m }}</li>{% endfor %}
</ul>{% if r.problems.count > 200 %}<p>… and {{ r.problems.count - 200 }} more in
judge_check.json.</p>{% endif %}{% else %}<p>None.</p>{% endif %}
</body></html>
"""
