"""A simulation run dir → benchmark items: a `reply` item per live turn, a `memory` item per probe.

The run dir is read, never written (`eval.simulate.files.read_journal` would repair a torn
journal; here a bad line is a problem). What each item holds:
- `reply`: the person's hidden card as the persona (Big Five and support scores under the
  agent's trait names, preferred and disliked strategies, the background as notes), every
  earlier session as history (a `history` session's lines from the scenario; a live session's
  user message and agent reply per turn, at the journal's `at`), the earlier turns of the same
  session as context, and the turn's message. Gold preferences come from the card; emotions,
  cause, acceptable strategies, reference and memory words are left empty: the run does not
  know them, and the agent's own reply is no reference.
- `memory`: the sessions up to the probe as history, the question, the probe's `expect_any`
  as answer, and as evidence the history lines holding any answer word (whole word, any case).

Crisis turns are skipped (as items and as history lines) and tallied; probe turns are not part
of any history (they ask about it). Ids are `RUN-PERSON-sS-tT` and `RUN-PERSON-sS-probeP`
(1-based, RUN the run dir's name), so converting the same run again gives the same ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from eval.offline.importers import Converted, SourceError
from eval.offline.items import STRATEGIES, Line, MemoryItem, Persona, ReplyItem, describe
from eval.offline.metrics import mentions_any
from eval.simulate.files import PEOPLE_DIR, RUN_FILE
from eval.simulate.scenario import Person, Scenario, Session
from eval.simulate.summary import load_run
from memory.traits import TRAITS

CRISIS = "crisis turn skipped"
UNFINISHED = "person whose journal has no done record"
NO_EVIDENCE = "probe whose answer is in no history line"
Record = dict[str, Any]
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Run:
    """What every item of one run shares."""

    name: str
    source: str
    scenario: Scenario


def items_from_run(run_dir: Path) -> Converted:
    """Reply and memory items from every person's journal in a simulation run dir."""
    if not (run_dir / RUN_FILE).is_file():
        raise SourceError(f"{run_dir} holds no simulation run ({RUN_FILE} is missing).")
    try:
        _, scenario = load_run(run_dir)
    except (ValueError, KeyError) as exc:
        raise SourceError(f"{run_dir / RUN_FILE}: not a simulation run ({exc}).") from None
    name = re.sub(r"[^\w.@-]+", "-", run_dir.resolve().name)[:40] or "run"
    run = Run(name, f"simulation {run_dir} (scenario {scenario.name})"[:200], scenario)
    converted = Converted()
    for person in scenario.people:
        journal = run_dir / PEOPLE_DIR / person.id / "transcript.jsonl"
        if journal.is_file():
            person_items(run, person, read_records(journal, converted), converted)
    if not converted.items:
        first = f" First problem: {converted.problems[0]}" if converted.problems else ""
        raise SourceError(f"{run_dir}: no turn or probe to make an item of.{first}")
    return converted


def read_records(path: Path, converted: Converted) -> list[tuple[str, Record]]:
    """A journal's records, each with where it is ("ID/transcript.jsonl line N")."""
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path} cannot be read as UTF-8 text: {exc}.") from None
    for number, line in enumerate(text.split("\n"), start=1):
        where = f"{path.parent.name}/{path.name} line {number}"
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            converted.problems.append(f"{where}: not valid JSON ({exc.msg}); skipped.")
            continue
        if isinstance(record, dict) and "type" in record and "session" in record:
            records.append((where, record))
        else:
            converted.problems.append(f'{where}: not a journal record ("type", "session").')
    return records


def person_items(
    run: Run, person: Person, records: list[tuple[str, Record]], converted: Converted
) -> None:
    """Add one person's reply and memory items, session by session."""
    if not any(r["type"] == "done" for _, r in records):
        converted.tally[UNFINISHED] += 1
    persona = persona_of(person, converted)
    past: list[Line] = []
    for index, session in enumerate(person.sessions):
        label = f"session {index + 1}"
        lines = history_lines(run, session, label)
        for where, turn in session_records(records, index, "turn"):
            if turn.get("kind") == "crisis" or turn.get("crisis_expected"):
                converted.tally[CRISIS] += 1
                continue
            try:
                converted.items.append(reply_item(run, person.id, persona, past, lines, turn))
                lines = [*lines, *turn_lines(turn, label)]
            except (ValueError, KeyError, TypeError) as exc:
                converted.problems.append(f"{where}: {reason(exc)}")
        past = [*past, *lines]
        for where, probe in session_records(records, index, "probe"):
            try:
                item = memory_item(run, person.id, past, probe)
            except (ValueError, KeyError, TypeError) as exc:
                converted.problems.append(f"{where}: {reason(exc)}")
                continue
            converted.items.append(item)
            converted.tally.update([NO_EVIDENCE] if not item.evidence else [])


def session_records(
    records: list[tuple[str, Record]], session: int, kind: str
) -> list[tuple[str, Record]]:
    """The records of one type in one session, in turn order."""
    found = [(w, r) for w, r in records if r["type"] == kind and r["session"] == session]
    return sorted(found, key=lambda pair: int(pair[1].get("turn") or 0))


def history_lines(run: Run, session: Session, label: str) -> list[Line]:
    """A `history` session's lines as the scenario gives them (other sessions: none)."""
    when = session.when(run.scenario.start)
    return [
        Line(role=h.role, text=h.text, session=label, time=h.at(when))
        for h in session.history or []
    ]


def turn_lines(turn: Record, label: str) -> list[Line]:
    """A live turn as lines: the message, and the reply if there was one."""
    said = [("user", turn["message"]), ("assistant", turn.get("reply") or "")]
    return [
        build(Line, role=role, text=text, session=label, time=turn["at"])
        for role, text in said
        if text.strip()
    ]


def persona_of(person: Person, converted: Converted) -> Persona:
    """The hidden card as a persona; names the agent's models do not know are dropped, and
    said so."""
    truth = person.truth()
    support = person.card.support
    unknown = [n for n in truth if n not in TRAITS]
    unknown += [s for s in support.preferred_strategies + support.disliked_strategies
                if s not in STRATEGIES]  # fmt: skip
    if unknown:
        converted.problems.append(
            f"{person.id}: card names {', '.join(unknown)}, which the items cannot hold; dropped."
        )
    return build(
        Persona, traits={name: value for name, value in truth.items() if name in TRAITS},
        preferred=[s for s in support.preferred_strategies if s in STRATEGIES],
        disliked=[s for s in support.disliked_strategies if s in STRATEGIES],
        notes=person.card.background[:2000],
    )  # fmt: skip


def reply_item(
    run: Run, user: str, persona: Persona, past: list[Line], context: list[Line], turn: Record
) -> ReplyItem:
    """A live turn as a reply item (gold preferences come from the persona)."""
    return build(
        ReplyItem, task="reply", id=f"{run.name}-{user}-s{turn['session'] + 1}-t{turn['turn'] + 1}",
        source=run.source, user=user, persona=persona, history=past, context=context,
        message=turn["message"],
    )  # fmt: skip


def memory_item(run: Run, user: str, history: list[Line], probe: Record) -> MemoryItem:
    """A probe as a memory item; evidence: the person's history lines holding any answer word
    (only their words are remembered)."""
    answer = list(probe["expect_any"])
    return build(
        MemoryItem, task="memory", source=run.source, user=user, history=history,
        id=f"{run.name}-{user}-s{probe['session'] + 1}-probe{probe['turn'] + 1}",
        question=probe["message"], answer=answer,
        evidence=[n for n, line in enumerate(history)
                  if line.role == "user" and mentions_any(line.text, answer)],  # fmt: skip
    )  # fmt: skip


def build(model: type[Model], **fields: Any) -> Model:
    """A validated model; ValueError saying which field is wrong."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the record has no {exc.args[0]!r}; skipped."
    return f"{exc}; skipped."
