"""Questions about the person's own past: does the reply give what the memories hold?

    python -m eval.bench_memory_questions [--model M] [--out FILE.json]

A person told empathos twelve details in an earlier session (stored as memories the way the
memory worker stores them, from turns of that session); in a new session they ask about each
("do you remember…", "what did I tell you…"), and about three things they never told. Scored
per question: the recalled memories hold the detail; the reply gives it (its key words); for the
never-told ones, the reply says it does not remember instead of inventing. Run twice on the
same data: with the memory-answer path (the question is recognised, the reply is told to answer
from memory) and without it (the ordinary strategy policy, as before this path existed).

The details and questions were written for this benchmark by us (plain personal facts with one
checkable detail each; no model wrote them); the numbers are the behaviour of the reply path,
not of extraction (bench_memory measures that).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from unittest.mock import patch

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.context import Context
from agent.runner import Agent
from agent.settings import DEFAULT_MODEL, Settings
from memory.memories import ExtractedFact, MemoryKind
from memory.trace import TurnTrace

TOLD = [  # (what they said then, the fact kept, the question later, the detail's key words)
    ("My brother Tom lives in Leeds now.", "The user's brother Tom lives in Leeds.",
     "Do you remember where my brother lives?", r"leeds"),
    ("The care home for mum costs about 4,000 a month.",
     "A care home for the user's mum costs about 4,000 a month.",
     "What did I tell you the care home costs?", r"4,?000"),
    ("Our dog is called Biscuit.", "The user's dog is called Biscuit.",
     "Do you remember my dog's name?", r"biscuit"),
    ("My exam is on 14 March.", "The user's exam is on 14 March.",
     "Did I tell you when my exam is?", r"14(th)? march|march 14"),
    ("My sister Maya moved to Berlin in June.", "The user's sister Maya moved to Berlin in June.",
     "Remind me where my sister moved to.", r"berlin"),
    ("We've been married for 12 years.", "The user has been married for 12 years.",
     "Do you remember how long I've been married?", r"\b12\b|twelve"),
    ("My therapist, Dr Osei, is great.", "The user's therapist is called Dr Osei.",
     "What was the name of my therapist again?", r"osei"),
    ("I run 5 km every Sunday morning.", "The user runs 5 km every Sunday morning.",
     "Do you remember how far I run on Sundays?", r"\b5 ?k|five"),
    ("My boss said I can work from home on Fridays.",
     "The user's boss said they can work from home on Fridays.",
     "What did I say my boss allowed me to do?", r"home"),
    ("My best friend Priya is a nurse.", "The user's best friend Priya is a nurse.",
     "Do you recall what my friend Priya does?", r"nurse"),
    ("My rent went up to 950 pounds.", "The user's rent went up to 950 pounds.",
     "What did I tell you my rent went up to?", r"950"),
    ("My grandmother turned 90 in May.", "The user's grandmother turned 90 in May.",
     "Do you remember how old my grandmother turned?", r"\b90\b|ninety"),
]  # fmt: skip
NEVER_TOLD = [
    "Do you remember what my cousin's name is?",
    "What did I tell you about my first car?",
    "Did I tell you where I grew up?",
]
HONEST = re.compile(
    r"(don't|do not|can't|cannot) (seem to )?(remember|recall)|not sure|didn't (mention|tell)|"
    r"haven't (mentioned|told)|no record|remind me|don't (have|know)",
    re.I,
)


def seed_memories(context: Context, user: str) -> None:
    """The earlier session: each thing said is a finished turn, its fact a memory from it."""
    store = context.store
    session = store.new_session(user)
    for i, (said, fact, _, _) in enumerate(TOLD):
        turn_id = f"told{i}"
        store.begin_turn(turn_id, user, session, said)
        store.complete_turn(turn_id, "Thank you for telling me.", TurnTrace(), False)
        context.memories.remember(
            user, [ExtractedFact(kind=MemoryKind.LIFE_EVENT, text=fact, importance=0.7)], turn_id
        )


def memory_answers(enabled: bool) -> AbstractContextManager[object]:
    """Run with the memory-answer path, or without it (questions go through the policy)."""
    return nullcontext() if enabled else patch("agent.nodes.asks_about_own_past", lambda _m: False)


def ask(model: str, enabled: bool, root: Path, progress: Progress) -> dict[str, Any]:
    settings = Settings(data_dir=root / ("on" if enabled else "off"), model=model)
    context = Context(settings)
    agent = Agent(context)
    seed_memories(context, "ana")
    rows: list[dict[str, Any]] = []
    task = progress.add_task(f"memory answers {'on' if enabled else 'off'}",
                             total=len(TOLD) + len(NEVER_TOLD))  # fmt: skip
    with memory_answers(enabled):
        for _, _, question, key in TOLD:
            session = context.store.new_session("ana")  # each question opens a new session
            result = agent.run_turn("ana", session, question)
            recalled = [m.text for m in result.state["recall"].memories]
            plan = result.state.get("plan")
            rows.append({
                "question": question, "reply": result.reply,
                "recalled": any(re.search(key, m, re.I) for m in recalled),
                "answered": bool(re.search(key, result.reply or "", re.I)),
                "strategy": plan.strategy if plan else None,
            })  # fmt: skip
            progress.advance(task)
        for question in NEVER_TOLD:
            session = context.store.new_session("ana")
            result = agent.run_turn("ana", session, question)
            plan = result.state.get("plan")
            rows.append({
                "question": question, "reply": result.reply, "never_told": True,
                "honest": bool(HONEST.search(result.reply or "")),
                "strategy": plan.strategy if plan else None,
            })  # fmt: skip
            progress.advance(task)
    return {"rows": rows} | summary(rows)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    told = [r for r in rows if not r.get("never_told")]
    never = [r for r in rows if r.get("never_told")]
    return {
        "recalled": sum(r["recalled"] for r in told),
        "answered": sum(r["answered"] for r in told),
        "answered_when_recalled": sum(r["answered"] for r in told if r["recalled"]),
        "honest": sum(r["honest"] for r in never),
        "analogy": sum(r["strategy"] == "Personal Analogy" for r in rows),
        "told": len(told),
        "never_told": len(never),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, help="write every question and reply here (JSON)")
    args = parser.parse_args(argv)
    console = Console()
    results = {}
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        for enabled in (False, True):
            results["on" if enabled else "off"] = ask(args.model, enabled, Path(tmp), progress)
    table = Table(title=f"Questions about their own past, {args.model}")
    table.add_column("measure")
    table.add_column("without the memory-answer path", justify="right")
    table.add_column("with it", justify="right")
    for label, key, of in [
        ("recalled memories hold the detail", "recalled", "told"),
        ("the reply gives the detail", "answered", "told"),
        ("... when the memories held it", "answered_when_recalled", "recalled"),
        ("never told: the reply says it doesn't remember", "honest", "never_told"),
        ("answered with a personal analogy", "analogy", None),
    ]:
        cells = []
        for r in (results["off"], results["on"]):
            total = r[of] if of else r["told"] + r["never_told"]
            cells.append(f"{r[key]} / {total}")
        table.add_row(label, *cells)
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
        console.print(f"written: {args.out}")


if __name__ == "__main__":
    main()
