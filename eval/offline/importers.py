"""Public data sets → benchmark items: ESConv (strategy), EPITOME (rating), GoEmotions (emotion).

Each importer reads only the PATH it is given (the data sets' licences keep them out of the
repo) and returns a `Converted`: the items, one message per bad source row (file, line, what is
wrong; the row is skipped and counted, never silently dropped), and rows left out or changed on
purpose, tallied by reason. `CONVERTERS` maps the names of `empathos eval import NAME PATH` to them.

Exceptions: `SourceError` (a data set that cannot be read at all: missing, wrong layout, no
usable row). A bad row is never an exception, only a problem.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from eval.errors import EvalError
from eval.offline.items import (
    EMOTIONS,
    ESCONV_STRATEGIES,
    AnyItem,
    EmotionItem,
    Line,
    Rating,
    RatingItem,
    StrategyItem,
    describe,
    write_items,
)

SUPPORTER_AGAIN = "supporter speaks next again"
REPEATED = "row repeated in its file with the same level"
DISAGREE = "level dropped: the pair is rated again with another level (the humans disagree)"
DISPUTED_AGAIN = "row rating a pair again on a level already dropped for disagreement"
NO_LEVEL_LEFT = "pair left out: no level left once disagreements are dropped"
TEXTS_DIFFER = "texts differ between the files beyond spacing (the longer kept)"
ROLES: dict[str, Literal["user", "assistant"]] = {"seeker": "user", "supporter": "assistant"}
SPLITS = {"dev": "validation", "valid": "validation", "train": "train", "test": "test"}
ESCONV_SOURCE = "ESConv {split} (Liu et al. 2021), CC BY-NC 4.0"
EPITOME_SOURCE = "EPITOME Reddit (Sharma et al. 2020), academic research use"
EPITOME_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level")
EPITOME_DIMENSIONS = {  # a word of the file name -> the rubric dimension, in rating order
    "emotional": "emotional_reactions",
    "interpretation": "interpretations",
    "exploration": "explorations",
}
EPITOME_RATER = "EPITOME trained annotator"
Row = dict[Any, Any]  # a csv.DictReader row: extra cells under None, missing ones None
GOEMOTIONS_SOURCE = "GoEmotions {split} (Demszky et al. 2020), Apache-2.0"


class SourceError(EvalError, ValueError):
    """A source data set that cannot be read at all (missing, wrong layout, no usable row)."""


@dataclass
class Converted:
    """Items made from a source, the rows that were bad, and rows left out or changed on
    purpose (not problems: the source is as intended), counted by reason."""

    items: list[AnyItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)

    def write(self, path: Path) -> int:
        """Write the items as benchmark JSONL; return how many."""
        return write_items(self.items, path)

    def summary(self) -> str:
        """One line: items by task, rows tallied by reason, problems."""
        tasks = Counter(item.task for item in self.items)
        parts = [", ".join(f"{n} {task}" for task, n in tasks.items()) or "no items"]
        parts += [f"{n} × {why}" for why, n in self.tally.items()]
        parts.append(f"{len(self.problems)} problems")
        return "; ".join(parts)


def split_name(path: Path) -> str:
    return SPLITS.get(path.stem, path.stem)


def read_text(path: Path) -> str:
    """A source file's text; `SourceError` if it is missing or not UTF-8."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file.")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path} cannot be read as UTF-8 text: {exc}.") from None


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines with their 1-based numbers, split at newlines only (`splitlines`
    would also split inside a text at U+2028, U+0085 or a form feed)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line.removesuffix("\r")


def finish(converted: Converted, path: Path, what: str) -> Converted:
    """Return the conversion, or raise if not one row was usable."""
    if not converted.items and not converted.tally:
        first = f" First problem: {converted.problems[0]}" if converted.problems else ""
        raise SourceError(f"{path}: no usable {what} row.{first}")
    return converted


# --- ESConv -------------------------------------------------------------------------------------
def import_esconv(path: Path) -> Converted:
    """ESConv next-strategy rows (JSONL of context, strategy, response) → `strategy` items.

    Only rows whose context ends with the seeker become items: the seeker's last run of lines
    is the message to answer. A context ending with the supporter (who then speaks twice in a
    row) has no seeker message to answer last; it is skipped and tallied, not a problem."""
    converted = Converted()
    for number, text in numbered_lines(read_text(path)):
        try:
            item = esconv_item(json.loads(text), f"esconv-{path.stem}-{number}", path)
        except json.JSONDecodeError as exc:
            converted.problems.append(f"{path.name} line {number}: not valid JSON ({exc.msg}).")
        except ValueError as exc:
            converted.problems.append(f"{path.name} line {number}: {exc}")
        else:
            if item is None:
                converted.tally[SUPPORTER_AGAIN] += 1
            else:
                converted.items.append(item)
    return finish(converted, path, "ESConv")


def esconv_item(row: Any, item_id: str, path: Path) -> StrategyItem | None:
    """One row as an item (None: the context ends with the supporter); ValueError if bad."""
    if not isinstance(row, dict) or not isinstance(row.get("context"), list):
        raise ValueError('expected an object with a "context" list, "strategy" and "response".')
    if row.get("strategy") not in ESCONV_STRATEGIES:
        raise ValueError(
            f"strategy {row.get('strategy')!r} is not one of: {', '.join(ESCONV_STRATEGIES)}."
        )
    lines = [esconv_line(turn, n, item_id) for n, turn in enumerate(row["context"])]
    if not lines:
        raise ValueError("context is empty: there is no seeker message to answer.")
    if lines[-1].role == "assistant":
        return None
    start = len(lines)
    while start > 0 and lines[start - 1].role == "user":
        start -= 1
    response = row.get("response")
    try:
        return StrategyItem(
            task="strategy", id=item_id, source=ESCONV_SOURCE.format(split=split_name(path)),
            context=lines[:start], message=" ".join(line.text for line in lines[start:]),
            gold=row["strategy"],
            reference=response if isinstance(response, str) and response.strip() else None,
        )  # fmt: skip
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def esconv_line(turn: Any, index: int, session: str) -> Line:
    """One context line; ValueError naming context[index] if it is not one."""
    if (
        not isinstance(turn, dict)
        or turn.get("speaker") not in ROLES
        or not isinstance(turn.get("text"), str)
    ):
        raise ValueError(f'context[{index}]: expected "speaker" seeker or supporter and "text".')
    try:
        return Line(role=ROLES[turn["speaker"]], text=turn["text"], session=session)
    except ValidationError as exc:
        raise ValueError(f"context[{index}].{describe(exc)}") from None


# --- EPITOME ------------------------------------------------------------------------------------
@dataclass
class Pair:
    """A seeker post and a response, with the levels the files give them so far."""

    seeker: str
    response: str
    ratings: list[Rating] = field(default_factory=list)
    disputed: set[str] = field(default_factory=set)  # dimensions the humans disagree on


def import_epitome(path: Path) -> Converted:
    """EPITOME CSVs (a dir of up to three, or one file) joined on (sp_id, rp_id) → `rating`
    items, one rating per file on the 0..2 scale of its communication mechanism.

    A pair rated again on a mechanism with the same level keeps one; with another level the
    humans disagree, so that mechanism is dropped for the pair, and a pair left with no level
    is left out (all tallied). Texts that differ between the files keep the longer version.
    `judge_check.read_rated` reads EPITOME through this, so both report the same pairs."""
    converted, pairs = Converted(), dict[tuple[str, str], Pair]()
    for dimension, csv_path in epitome_files(path, converted):
        for number, row in csv_rows(csv_path, converted):
            try:
                note = add_epitome_row(pairs, dimension, row)
            except ValueError as exc:
                converted.problems.append(f"{csv_path.name} line {number}: {exc}")
            else:
                converted.tally.update([note] if note else [])
    for (seeker_id, response_id), pair in pairs.items():
        if not pair.ratings:
            converted.tally[NO_LEVEL_LEFT] += 1
            continue
        try:
            converted.items.append(
                RatingItem(
                    task="rating",
                    id=f"epitome-{seeker_id}-{response_id}",
                    source=EPITOME_SOURCE,
                    context=pair.seeker,
                    response=pair.response,
                    ratings=pair.ratings,
                )  # fmt: skip
            )
        except ValidationError as exc:
            converted.problems.append(f"pair {seeker_id}/{response_id}: {describe(exc)}")
    return finish(converted, path, "EPITOME")


def epitome_files(path: Path, converted: Converted) -> list[tuple[str, Path]]:
    """(dimension, file) for a dir's EPITOME CSVs or one CSV, in rating order; a CSV whose
    name says no mechanism is named in the problems."""
    if path.is_dir():
        candidates = sorted(path.glob("*.csv"))
    elif path.is_file():
        candidates = [path]
    else:
        raise SourceError(f"{path}: no such file or directory.")
    order = list(EPITOME_DIMENSIONS.values())
    found = sorted(
        ((dimension, p) for p in candidates if (dimension := epitome_dimension(p))),
        key=lambda rated: order.index(rated[0]),
    )
    if not found:
        raise SourceError(
            f"{path}: no EPITOME CSV (expected emotional-reactions.csv, interpretations.csv or "
            "explorations.csv, as in behavioral-data/Empathy-Mental-Health)."
        )
    for other in sorted(set(candidates) - {p for _, p in found}):
        converted.problems.append(
            f"{other.name}: not read; its name says no mechanism (emotional, interpretation, "
            "exploration)."
        )
    return found


def epitome_dimension(path: Path) -> str | None:
    """The mechanism a CSV's name says (emotional…, interpretation…, exploration…), if any."""
    stem = path.stem.lower()
    return next((dim for word, dim in EPITOME_DIMENSIONS.items() if word in stem), None)


def add_epitome_row(pairs: dict[tuple[str, str], Pair], dimension: str, row: Row) -> str | None:
    """Add one file's level for a pair; return why the row was handled specially (a repeat, a
    disagreement, texts that differ from another file's), or None; ValueError if the row is
    not usable."""
    seeker_id, response_id, level = epitome_key(row)
    pair = pairs.setdefault(
        (seeker_id, response_id), Pair(row["seeker_post"], row["response_post"])
    )
    if dimension in pair.disputed:
        return DISPUTED_AGAIN
    earlier = next((r for r in pair.ratings if r.dimension == dimension), None)
    if earlier is not None:
        if earlier.value == level:
            return REPEATED
        pair.ratings.remove(earlier)
        pair.disputed.add(dimension)
        return DISAGREE
    rationales = (row.get("rationales") or "").strip()
    pair.ratings.append(
        Rating(
            dimension=dimension,
            value=level,
            scale=(0, 2),
            rater=EPITOME_RATER,
            attributes={"rationales": rationales} if rationales else {},
        )  # fmt: skip
    )
    return merge_texts(pair, row["seeker_post"], row["response_post"])


def epitome_key(row: Row) -> tuple[str, str, int]:
    """A row's (sp_id, rp_id, level); ValueError if a cell is missing or not valid."""
    if None in row:
        raise ValueError(f"more cells than the header's {len(row) - 1} columns.")
    if any(value is None for value in row.values()):
        raise ValueError(f"fewer cells than the header's {len(row)} columns.")
    seeker_id, response_id = row["sp_id"].strip(), row["rp_id"].strip()
    if not seeker_id or not response_id or any(c.isspace() for c in seeker_id + response_id):
        raise ValueError("sp_id and rp_id must be non-empty ids without spaces.")
    if row["level"].strip() not in ("0", "1", "2"):
        raise ValueError(f"level {row['level']!r} is not 0, 1 or 2.")
    return seeker_id, response_id, int(row["level"])


def merge_texts(pair: Pair, seeker: str, response: str) -> str | None:
    """Keep the fuller of two versions of a pair's texts (the files differ in spacing, and one
    drops the word "Reddit"); say so if they differ in more than spacing."""
    if (pair.seeker, pair.response) == (seeker, response):
        return None
    differ = any(
        a.split() != b.split() for a, b in ((pair.seeker, seeker), (pair.response, response))
    )
    pair.seeker = max(pair.seeker, seeker, key=len)
    pair.response = max(pair.response, response, key=len)
    return TEXTS_DIFFER if differ else None


def csv_rows(path: Path, converted: Converted) -> Iterator[tuple[int, Row]]:
    """A CSV's rows with the line each starts on; `SourceError` if a column is missing. Broken
    quoting ends the file with a problem (the rows after it cannot be told apart)."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = [c for c in EPITOME_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(f"{path}: no column {', '.join(missing)} (header: {reader.fieldnames}).")
    start = reader.line_num + 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        converted.problems.append(f"{path.name} line {start}: not valid CSV ({exc}); rest skipped.")


# --- GoEmotions ---------------------------------------------------------------------------------
def import_goemotions(path: Path) -> Converted:
    """A GoEmotions TSV (text, comma-separated label ids, comment id; `labels.txt` beside it)
    → `emotion` items with the label names."""
    names = goemotion_labels(path.parent / "labels.txt")
    source = GOEMOTIONS_SOURCE.format(split=split_name(path))
    converted, seen = Converted(), set[str]()
    for number, text in numbered_lines(read_text(path)):
        try:
            item = goemotion_item(text, names, source, seen)
        except ValueError as exc:
            converted.problems.append(f"{path.name} line {number}: {exc}")
        else:
            converted.items.append(item)
    return finish(converted, path, "GoEmotions")


def goemotion_labels(path: Path) -> list[str]:
    """The label names, a label id being its 0-based line number."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file; GoEmotions needs labels.txt beside the TSV.")
    names = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown:
        raise SourceError(
            f"{path}: {unknown[0]!r} is not a GoEmotions label; expected the 28 names "
            "(admiration … neutral), one a line."
        )
    return names


def goemotion_item(text: str, names: list[str], source: str, seen: set[str]) -> EmotionItem:
    """One TSV row as an item; ValueError if it is not one."""
    parts = text.split("\t")
    if len(parts) != 3:
        raise ValueError(
            f"expected 3 tab-separated columns (text, label ids, id), not {len(parts)}."
        )
    comment, ids, comment_id = parts
    labels = []
    for label in ids.split(","):
        if not label.strip().isdigit() or int(label) >= len(names):
            raise ValueError(f"label id {label!r} is not 0..{len(names) - 1}.")
        labels.append(names[int(label)])
    item_id = f"goemotions-{comment_id.strip()}"
    if item_id in seen:
        raise ValueError(f"id {comment_id.strip()!r} is already used by an earlier row.")
    try:
        item = EmotionItem(
            task="emotion", id=item_id, source=source, text=comment,
            labels=list(dict.fromkeys(labels)),  # type: ignore[arg-type]
        )  # fmt: skip
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    seen.add(item_id)
    return item


CONVERTERS: dict[str, Callable[[Path], Converted]] = {
    "esconv": import_esconv,
    "epitome": import_epitome,
    "goemotions": import_goemotions,
}
