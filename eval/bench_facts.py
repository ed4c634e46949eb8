"""Measure memory extraction: fact precision and recall on a labelled set (issue 12).

    EMPATHOS_N_THREADS=1 python -m eval.bench_facts [--limit N] [--source SOURCE] [--out FILE]

Runs the extractor the memory worker uses (`LLMFactExtractor` over `Services.background_model`,
so the settings' model: the embedded default unless `EMPATHOS_MODEL` / `EMPATHOS_BASE_URL` say
otherwise) on every item of `eval/data/facts_labelled.jsonl` (see `eval/data/README.md`), and
scores what it returns by key matching:

- A gold fact lists `keys`; a key may offer alternatives ("mum|mom|mother"). A text has a key
  if one alternative occurs in it as whole words, each word possibly ending in "s", "es", "ed",
  "d", "ing" or "'s" (so keys are written in the base form: "15 year" matches "15 years"),
  after `agent.memory_llm.normalise` on both sides: lower case, number words as digits
  ("twelve" = "12", "twenty-five" = "25"), no thousands commas, dashes as spaces. An extracted
  fact's text is its `text` and its `happened` ("when").
- An extracted fact is an error if it has one of the item's `forbidden` phrases (same matching)
  or a number that neither the message nor its context states (a "number error"; 1 is always
  allowed, for "a year"). An error fact counts for nothing.
- Precision: non-error extracted facts that have all the keys of some gold fact, over all
  extracted facts. Recall: gold facts whose keys all occur in one non-error extracted fact.
  Micro-averaged; a message labelled with no facts only costs precision when facts come out.
- "Reported speech kept" is recall on the gold facts tagged `speech` (what someone said to whom).
- Also counted, not scored: facts the extractor's post-check refused ("dropped"), facts with a
  "when" the person did not write ("inv. when", `agent.memory_llm.grounded_when`), and facts
  the memory worker's grounding check would drop (in the JSON: "ungrounded").

A failed extraction (the model's JSON unusable twice) counts as no facts and is listed.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.errors import AgentError
from agent.memory_llm import grounded_when, normalise, unsaid_numbers
from eval.errors import EvalError
from eval.jsonl import read_records
from memory.memories import ExtractedFact
from memory.rules import is_grounded

LABELLED = Path(__file__).resolve().parent / "data" / "facts_labelled.jsonl"
SOURCES = ("esconv-validation", "written")
SUFFIX = r"(?:s|es|ed|d|ing|'s)?"


class Extractor(Protocol):
    """`agent.memory_llm.LLMFactExtractor`, as far as the bench uses it."""

    dropped: list[ExtractedFact]

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]: ...


class LabelledSetError(EvalError, ValueError):
    """The labelled set is missing or a line of it is not a valid item."""


class GoldFact(BaseModel):
    keys: list[str] = Field(min_length=1)
    about: str
    tags: list[Literal["speech", "number", "name"]] = []


class Item(BaseModel):
    """One labelled message. ESConv items carry no text in the file (the set is CC BY-NC and
    stays outside the package): `load_items` reads it, and up to two earlier seeker turns of
    the same conversation as context, from the shared validation split by id."""

    id: str
    source: Literal["esconv-validation", "written"]
    message: str = ""
    context: list[str] = []
    facts: list[GoldFact]
    forbidden: list[str] = []


def load_items(path: Path = LABELLED, shared: Path | None = None) -> list[Item]:
    """Read the labelled set, one item per line (ESConv texts from `shared`); say what is wrong."""
    if not path.is_file():
        raise LabelledSetError(f"No labelled set at {path}; pass --set with the JSONL file.")
    items = read_records(path, Item, LabelledSetError, "item")
    wanted = {item.id for item in items if item.source == "esconv-validation" and not item.message}
    texts = esconv_texts(wanted, shared) if wanted else {}
    items = [item.model_copy(update=texts.get(item.id, {})) for item in items]
    if empty := [item.id for item in items if not item.message]:
        raise LabelledSetError(f"No message for {empty[:5]} in {path} nor in the ESConv set.")
    return items


def esconv_texts(ids: set[str], shared: Path | None = None) -> dict[str, dict[str, Any]]:
    """The message and context (the two seeker turns before it, as the memory worker gives
    them) of each ESConv seeker turn id, from its first conversation in the validation split."""
    from eval.real_messages import esconv_id, shared_data_dir

    found: dict[str, dict[str, Any]] = {}
    path = (shared or shared_data_dir()) / "esconv" / "dev.jsonl"
    with path.open(encoding="utf-8") as handle:
        for line in filter(str.strip, handle):
            turns = json.loads(line)["context"]
            seeker = [t["text"].strip() for t in turns if t["speaker"] == "seeker"]
            for k, text in enumerate(seeker):
                if (mid := esconv_id(text)) in ids and mid not in found:
                    found[mid] = {"message": text, "context": seeker[max(0, k - 2) : k]}
    return found


@cache
def key_pattern(key: str) -> re.Pattern[str]:
    """Whole-word pattern for a key and its alternatives, normalised; each word may take a
    suffix ("15 year" matches "15 years", "4 years old" matches "4 year old")."""
    options = "|".join(
        r"\s+".join(re.escape(word) + SUFFIX for word in normalise(option).split())
        for option in key.split("|")
    )
    return re.compile(rf"(?<!\w)(?:{options})(?!\w)")


def has_key(text: str, key: str) -> bool:
    return key_pattern(key).search(normalise(text)) is not None


def has_keys(text: str, keys: Sequence[str]) -> bool:
    return all(has_key(text, key) for key in keys)


def fact_text(fact: ExtractedFact) -> str:
    return f"{fact.text} {fact.happened}".strip()


@dataclass
class FactCheck:
    """What scoring found in one extracted fact."""

    text: str
    matches: list[int]  # indexes of the gold facts whose keys it has
    forbidden: list[str]
    unsaid_numbers: list[str]
    grounded: bool  # the memory worker's own check (memory.rules.is_grounded) would keep it
    invented_when: bool  # a "when" the person did not write ("last week")

    @property
    def error(self) -> bool:
        return bool(self.forbidden or self.unsaid_numbers)

    @property
    def precise(self) -> bool:
        return bool(self.matches) and not self.error


def check_fact(item: Item, fact: ExtractedFact) -> FactCheck:
    """Score one extracted fact against an item's gold facts and forbidden phrases."""
    text = fact_text(fact)
    return FactCheck(
        text=text,
        matches=[i for i, gold in enumerate(item.facts) if has_keys(text, gold.keys)],
        forbidden=[phrase for phrase in item.forbidden if has_key(text, phrase)],
        unsaid_numbers=sorted(unsaid_numbers(text, [item.message, *item.context])),
        grounded=is_grounded(fact.text, [item.message]),
        invented_when=grounded_when(fact.happened, [item.message, *item.context]) != fact.happened,
    )


@dataclass
class ItemResult:
    id: str
    source: str
    checks: list[FactCheck]
    recalled: list[bool]  # per gold fact
    seconds: float = 0.0
    failure: str = ""
    dropped: list[str] = field(default_factory=list)  # refused by the extractor's post-check

    @property
    def precise(self) -> int:
        return sum(check.precise for check in self.checks)


def score_item(item: Item, facts: Sequence[ExtractedFact]) -> ItemResult:
    """Check every extracted fact; a gold fact is recalled by a non-error fact with its keys."""
    checks = [check_fact(item, fact) for fact in facts]
    hit = {i for check in checks if not check.error for i in check.matches}
    return ItemResult(item.id, item.source, checks, [i in hit for i in range(len(item.facts))])


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarise(items: Sequence[Item], results: Sequence[ItemResult]) -> dict[str, Any]:
    """Precision, recall, F1, errors and tag recall over a group of items."""
    checks = [check for result in results for check in result.checks]
    extracted, precise = len(checks), sum(check.precise for check in checks)
    gold = sum(len(item.facts) for item in items)
    recalled = sum(sum(result.recalled) for result in results)
    p, r = ratio(precise, extracted), ratio(recalled, gold)
    summary: dict[str, Any] = {
        "items": len(items), "extracted": extracted, "precise": precise, "gold": gold,
        "recalled": recalled, "precision": p, "recall": r,
        "f1": 2 * p * r / (p + r) if p and r else 0.0,
        "number_errors": sum(bool(check.unsaid_numbers) for check in checks),
        "forbidden_hits": sum(bool(check.forbidden) for check in checks),
        "ungrounded": sum(not check.grounded for check in checks),
        "invented_when": sum(check.invented_when for check in checks),
        "failures": sum(bool(result.failure) for result in results),
        "dropped_by_check": sum(len(result.dropped) for result in results),
        "seconds": sum(result.seconds for result in results),
    }  # fmt: skip
    for tag in ("speech", "number", "name"):
        flags = [hit for item, result in zip(items, results, strict=True)
                 for gold, hit in zip(item.facts, result.recalled, strict=True)
                 if tag in gold.tags]  # fmt: skip
        summary[f"{tag}_recall"] = ratio(sum(flags), len(flags))
        summary[f"{tag}_gold"] = len(flags)
    return summary


def summaries(items: Sequence[Item], results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    """`summarise` for all items and for each source apart."""
    groups = {"all": list(zip(items, results, strict=True))}
    for source in SOURCES:
        groups[source] = [pair for pair in groups["all"] if pair[0].source == source]
    return {name: summarise([i for i, _ in pairs], [r for _, r in pairs])
            for name, pairs in groups.items() if pairs}  # fmt: skip


def run_item(extractor: Extractor, item: Item) -> ItemResult:
    """Extract from one item and score it; an unusable model answer counts as no facts."""
    from agent.errors import StructuredOutputError

    started, failure, before = time.perf_counter(), "", len(extractor.dropped)
    try:
        facts = extractor.extract(item.message, item.context)
    except StructuredOutputError as exc:
        facts, failure = [], f"{type(exc).__name__}: {exc}"[:300]
    result = score_item(item, facts)
    result.seconds, result.failure = time.perf_counter() - started, failure
    result.dropped = [fact_text(fact) for fact in extractor.dropped[before:]]
    return result


def real_extractor() -> tuple[Extractor, str]:
    """The memory worker's extractor, built as `Services.memory_services` builds it."""
    from agent.memory_llm import LLMFactExtractor
    from agent.services import Services
    from agent.settings import Settings

    services = Services(Settings())
    extractor = LLMFactExtractor(
        lambda: services.background_model, services.structured_method, keep_dropped=True
    )
    extractor.model  # noqa: B018 -- a missing model fails here, before the first item
    return extractor, services.settings.model


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def print_summary(console: Console, table_rows: dict[str, dict[str, Any]]) -> None:
    table = Table(title="Fact extraction (key matching; see eval/bench_facts.py)")
    columns = ("set", "items", "P", "R", "F1", "num. err.", "forbidden", "speech R", "number R",
               "dropped", "inv. when", "failed", "s/item")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, s in table_rows.items():
        table.add_row(
            name, str(s["items"]), f"{percent(s['precision'])} {s['precise']}/{s['extracted']}",
            f"{percent(s['recall'])} {s['recalled']}/{s['gold']}", f"{s['f1']:.2f}",
            str(s["number_errors"]), str(s["forbidden_hits"]),
            f"{percent(s['speech_recall'])} /{s['speech_gold']}",
            f"{percent(s['number_recall'])} /{s['number_gold']}", str(s["dropped_by_check"]),
            str(s["invented_when"]), str(s["failures"]),
            f"{s['seconds'] / s['items']:.1f}",
        )  # fmt: skip
    console.print(table)


def print_misses(console: Console, items: Sequence[Item], results: Sequence[ItemResult]) -> None:
    """List the missed gold facts and the error facts, item by item."""
    for item, result in zip(items, results, strict=True):
        missed = [g.about for g, hit in zip(item.facts, result.recalled, strict=True) if not hit]
        errors = [c for c in result.checks if c.error]
        if missed or errors or result.dropped or result.failure:
            console.print(f"[bold]{item.id}[/] {item.message[:100]!r}")
        for about in missed:
            console.print(f"  [yellow]missed[/] {about}")
        for check in errors:
            why = check.forbidden or check.unsaid_numbers
            console.print(f"  [red]error[/] {check.text!r} {why}")
        for text in result.dropped:
            console.print(f"  [dim]dropped by the post-check[/] {text!r}")
        if result.failure:
            console.print(f"  [red]failed[/] {result.failure}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the extractor on the labelled set and print (and save) the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", type=Path, default=LABELLED, help="the labelled JSONL")
    parser.add_argument("--limit", type=int, help="only the first N items (of each source)")
    parser.add_argument("--source", choices=SOURCES, help="only the items of one source")
    parser.add_argument("--out", type=Path, help="write scores and every extracted fact here")
    parser.add_argument("--misses", action="store_true", help="list missed facts and errors")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: keep the table on one line per row
        console.width = 150
    try:
        items = select(load_items(args.set), args.source, args.limit)
        extractor, model = real_extractor()
        results = []
        with Progress(console=console) as progress:
            task = progress.add_task(f"extracting with {model}", total=len(items))
            for item in items:
                results.append(result := run_item(extractor, item))
                progress.console.print(
                    f"{item.id}: {len(result.checks)} facts, {result.precise} precise, "
                    f"{sum(result.recalled)}/{len(item.facts)} recalled, {result.seconds:.0f}s"
                )
                progress.advance(task)
    except (EvalError, AgentError) as exc:
        parser.exit(2, f"bench_facts: {exc}\n")
    scores = summaries(items, results)
    print_summary(console, scores)
    if args.misses:
        print_misses(console, items, results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"model": model, "set": str(args.set), "limit": args.limit,
                  "scores": scores, "items": [asdict(r) for r in results]}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
        console.print(f"saved to {args.out}")


def select(items: list[Item], source: str | None, limit: int | None) -> list[Item]:
    """Keep one source's items and the first `limit` of each source, in file order."""
    kept = [item for item in items if source in (None, item.source)]
    if limit is not None:
        kept = [item for s in SOURCES for item in [i for i in kept if i.source == s][:limit]]
    return kept


if __name__ == "__main__":
    main()
