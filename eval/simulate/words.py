"""Words-only re-readings of a generated population: how well the user model reads personality.

    python -m eval.simulate.words write --seed 3 -o runs/words-3.json   # ~20 min (1.5b model)
    python -m eval.simulate.words read runs/words-3.json [--rating] [--no-asking] [--weighing]
                                                         [--out F]
    python -m eval.simulate.words ceiling runs/words-3.json [more files]
    python -m eval.simulate.words from-run runs/population-13 -o runs/words-13run.json

`write` draws the people of `simulate generate --seed N --turns 1` (`eval/simulate/population.py`)
and lets the user simulator write each person's session openings from their card and that
day's situation. With one turn per session an opening does not depend on the agent, so these
are the messages a full population run would start each session with. The file keeps each
person's hidden Big Five beside their messages; an interrupted `write` resumes where it
stopped (people already in the file are kept).

`read` stores the messages as one turn per session in a fresh temporary data directory and
reads them with the user model exactly as the memory worker does with the default settings
(`TraitModel.observe_turn`, the model's per-message answers `ask_traits`, the telling-passage
reading `rate_traits`; `--rating` adds the model's rating of those passages and `--weighing`
its per-message likelihood ratios, both off by default), then prints Spearman's rho between
the inferred and the hidden values per trait, for all evidence and for each kind alone. What
it leaves out, against a full run: there are no agent replies, no extracted memories and no
per-turn analysis (need, emotion), and the telling passages are read (and rated) once, after
the last session, rather than after each (each reading replaces the previous one, so only the
last counts in a full run too). It takes minutes rather than the hours of a full run, so a
change to the reader can be checked on several seeds. `--out` also writes the evidence rows
behind each person's estimates (`EVIDENCE_KEYS`: trait, kind, signal, weight, session), so
another weighting of the kinds can be tried on them without asking the model again.

`ceiling` says how much the words could tell a perfect reader: per trait, Spearman's rho between
the hidden values and the net count of the day events that show them (`population.DETAILS`:
high-pole events minus low-pole ones), first as the generator put them in the situations, then
only those the message still tells (at least half of the event's content words, and two, are
in the message: a crude match, written by hand). Pooled over the files' people.

`from-run` makes a words file of a full population run (`make population`): the hidden Big Five
and each session's opening, so the run's own messages can be read again and bounded.

Errors: `WordsError` for a file that is not a words file, or a seed's people that differ.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

from eval.errors import EvalError
from eval.simulate.files import write_json
from eval.simulate.user_model import spearman
from memory.traits import BIG_FIVE

FORMAT = "empathos-words/1"
SUBSETS = (
    "all", "no-head", "all-but-rating", "no-rating", "asked", "likelihood", "recall", "rating",
    "prototype", "head",
)  # fmt: skip


EVIDENCE_KEYS = ("name", "kind", "signal", "weight", "session_id")  # kept per row by `read`


class WordsError(EvalError):
    """A words file that cannot be read or resumed."""


def load(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WordsError(f"Cannot read {path}: {exc}. Write it with `words write`.") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise WordsError(f"{path} is not a words file ({FORMAT}); write one with `words write`.")
    return doc


def write(seed: int, people: int, sessions: int, out: Path) -> dict[str, Any]:
    """Write (or resume) the openings of `seed`'s people to `out`, one person at a time."""
    from rich.progress import track

    from agent.settings import Settings
    from eval.simulate.population import generate_population
    from eval.simulate.user_sim import Emotion, UserSimulator, build_user_model

    scenario = generate_population(people=people, sessions=sessions, seed=seed, turns=1)
    done: dict[str, Any] = {}
    doc: dict[str, Any] = load(out) if out.exists() else {"format": FORMAT, "seed": seed}
    done = doc.setdefault("people", done)
    if doc.get("seed") != seed:
        raise WordsError(f"{out} holds seed {doc.get('seed')}, not {seed}: use another --out.")
    model, method = build_user_model(Settings())
    for person in track(scenario.people, description=f"seed {seed}: openings"):
        if person.id in done:
            continue
        simulator = UserSimulator(model, person.card, method=method, name=person.id)
        messages = [
            simulator.open(goal=s.goal, situation=s.simulate.situation if s.simulate else None,
                           emotion=Emotion().score,
                           today=s.when(scenario.start).date())[0]
            for s in person.sessions
        ]  # fmt: skip
        done[person.id] = {"truth": person.card.big_five.model_dump(),
                                    "messages": messages}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, doc)  # a crash mid-write leaves the last whole file
    return doc


def from_run(run_dir: Path) -> dict[str, Any]:
    """A words file of a generated population's run: each person's hidden Big Five and the
    opening message of each session, so the run can be re-read (`read`) and bounded
    (`ceiling`)."""
    from eval.simulate.files import RUN_FILE, people_dirs, read_journal

    try:
        run = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        seed = run["scenario"]["seed"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise WordsError(f"{run_dir} is not a simulation run dir ({exc}).") from exc
    if seed is None:
        raise WordsError(f"{run_dir} is not a generated population's run (its scenario has no "
                         "seed): make one with `empathos simulate generate`.")  # fmt: skip
    people: dict[str, Any] = {}
    for folder in people_dirs(run_dir):
        if not (folder / "person.json").exists():
            continue  # not finished
        truth = json.loads((folder / "person.json").read_text(encoding="utf-8"))["truth"]
        openings: dict[int, str] = {}
        for record in read_journal(folder / "transcript.jsonl"):
            if record.get("type") == "turn" and record.get("turn") == 0:
                openings.setdefault(record["session"], record["message"])
        people[folder.name] = {"truth": {t: truth[t] for t in BIG_FIVE},
                               "messages": [openings[n] for n in sorted(openings)]}  # fmt: skip
    if not people:
        raise WordsError(f"{run_dir} has no finished people yet.")
    return {"format": FORMAT, "seed": seed, "people": people}


def read(
    doc: dict[str, Any], rating: bool = False, asking: bool = True, weighing: bool = False
) -> dict[str, Any]:
    """Read every person's messages with the user model; return each person's estimates per
    evidence subset and the pooled Spearman per trait and subset."""
    from rich.progress import track

    from agent.services import Services
    from agent.settings import Settings
    from memory.trace import TurnTrace
    from memory.trait_rating import ask_traits, rate_traits

    estimates: dict[str, dict[str, dict[str, float]]] = {}
    evidence: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as data_dir:
        settings = Settings(data_dir=Path(data_dir), llm_trait_asking=asking,
                            llm_trait_rating=rating, llm_trait_weighing=weighing)  # fmt: skip
        services = Services(settings)
        mem = services.memory_services
        for pid, person in track(list(doc["people"].items()), description="reading"):
            for n, text in enumerate(person["messages"]):
                session = mem.store.new_session(pid, f"session {n + 1}")
                turn = mem.store.begin_turn(f"{pid}-{n}", pid, session, text)
                mem.store.complete_turn(turn.id, "", TurnTrace(turn_id=turn.id), False)
                turn = mem.store.get_turn(turn.id) or turn
                mem.traits.observe_turn(pid, turn)
                if mem.rater is not None:  # the worker's own flags (Settings)
                    ask_traits(mem.traits, mem.rater, pid, turn, mem.ask, mem.weigh)
                last = n == len(person["messages"]) - 1
                rater = mem.rater if mem.rate_passages and last else None
                rate_traits(mem.traits, mem.memories, mem.store, rater, pid, session)
            mem.traits.refresh(pid, "end")
            estimates[pid] = mem.traits.estimates_by_kind(pid)
            evidence[pid] = [
                {key: row[key] for key in EVIDENCE_KEYS}
                for rows in mem.traits.by_trait(pid).values() for row in rows
            ]  # fmt: skip
    people = list(estimates)
    rho = {
        subset: {
            trait: spearman([estimates[p].get(subset, {}).get(trait, 0.5) for p in people],
                            [doc["people"][p]["truth"][trait] for p in people])
            for trait in BIG_FIVE
        }
        for subset in SUBSETS
    }  # fmt: skip
    return {"seed": doc.get("seed"), "people": len(people), "rating": rating, "asking": asking,
            "weighing": weighing, "spearman": rho, "estimates": estimates,
            "evidence": evidence}  # fmt: skip


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]+", text.lower()) if len(w) > 3} - COMMON


COMMON = {"your", "with", "that", "have", "been", "just", "they", "their", "from", "every",
          "which", "than", "what", "same", "someone", "about", "still", "like", "into", "days",
          "were", "again", "already", "today"}  # fmt: skip


def ceiling(docs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per trait: rho of the events the generator gave ("given") and of those the messages
    still tell ("told") against the hidden values, pooled over the people of `docs`."""
    from eval.simulate.population import DETAILS, generate_population

    counts: dict[str, dict[str, list[float]]] = {
        t: {"given": [], "told": [], "truth": []} for t in BIG_FIVE
    }
    for doc in docs:
        people = doc["people"]
        sessions = max(len(p["messages"]) for p in people.values())
        scenario = generate_population(len(people), sessions, int(doc["seed"]), turns=1)
        if {p.id for p in scenario.people} != set(people):
            raise WordsError(f"Seed {doc['seed']}'s people are not this file's people.")
        for person in scenario.people:
            messages = people[person.id]["messages"]
            for trait in BIG_FIVE:
                given = told = 0
                for session, message in zip(person.sessions, messages, strict=False):
                    situation = session.simulate.situation if session.simulate else ""
                    for sign, events in zip((1, -1), DETAILS[trait], strict=True):
                        for event in (e for e in events if e in situation):
                            given += sign
                            wanted = content_words(event)
                            shared = len(wanted & content_words(message))
                            told += sign if shared >= max(2, (len(wanted) + 1) // 2) else 0
                counts[trait]["given"].append(given)
                counts[trait]["told"].append(told)
                counts[trait]["truth"].append(people[person.id]["truth"][trait])
    return {
        t: {k: spearman(counts[t][k], counts[t]["truth"]) for k in ("given", "told")}
        for t in BIG_FIVE
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"seed {result['seed']}: Spearman, {result['people']} people")
    for column in ("evidence", *(t[:4] for t in BIG_FIVE), "mean"):
        table.add_column(column)
    for subset, row in result["spearman"].items():
        values = [row[t] for t in BIG_FIVE]
        known = [v for v in values if v is not None]
        cells = ["–" if v is None else f"{v:+.2f}" for v in values]
        table.add_row(subset, *cells, f"{mean(known):+.2f}" if known else "–")
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    writing = commands.add_parser("write", help="Write a seed's session openings.")
    writing.add_argument("--seed", type=int, required=True)
    writing.add_argument("--people", type=int, default=20)
    writing.add_argument("--sessions", type=int, default=5)
    writing.add_argument("-o", "--out", type=Path, required=True)
    reading = commands.add_parser("read", help="Read a words file with the user model.")
    reading.add_argument("words", type=Path)
    reading.add_argument("--rating", action="store_true", help="With the model's rating.")
    reading.add_argument("--no-asking", action="store_true", help="Without its per-message asks.")
    reading.add_argument(
        "--weighing", action="store_true", help="With its per-message likelihood ratios."
    )
    reading.add_argument("--out", type=Path, help="Also write estimates, evidence and rho (JSON).")
    converting = commands.add_parser("from-run", help="A population run's openings as words.")
    converting.add_argument("run", type=Path)
    converting.add_argument("-o", "--out", type=Path, required=True)
    bound = commands.add_parser("ceiling", help="What a perfect reader of the events could get.")
    bound.add_argument("words", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            doc = write(args.seed, args.people, args.sessions, args.out)
            print(f"{len(doc['people'])} people -> {args.out}")
            return
        if args.command == "from-run":
            doc = from_run(args.run)
            write_json(args.out, doc)
            print(f"{len(doc['people'])} people -> {args.out}")
            return
        if args.command == "ceiling":
            docs = [load(path) for path in args.words]
            rows = ceiling(docs)
            print(f"{sum(len(d['people']) for d in docs)} people: rho of the day events "
                  "against the hidden values")  # fmt: skip
            for trait, row in rows.items():
                cells = ", ".join(
                    f"{k} {'–' if v is None else f'{v:+.2f}'}" for k, v in row.items()
                )
                print(f"  {trait}: {cells}")
            return
        result = read(
            load(args.words), rating=args.rating, asking=not args.no_asking,
            weighing=args.weighing,
        )  # fmt: skip
    except EvalError as exc:
        parser.exit(2, f"error: {exc}\n")
    print_table(result)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
