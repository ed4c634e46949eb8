"""A person's past conversations become memory: a history export is read, stored as sessions
and turns stamped with the times the words were said, and mined for memories of their words.

    messages = read_history(Path("history.jsonl"))      # the whole file is validated first
    report = ingest(context, "ana", messages, source="history.jsonl")

A history is JSONL, one message a line, in the order said (blank lines are skipped):
`{"role": "user" | "assistant", "text": "...", "time": "2026-03-01T18:00:00+00:00",
"session": "optional label"}`. Consecutive messages with one label are a session; unlabelled
ones start a new session after a gap of six hours. In a session, consecutive user messages are
one turn's message and the assistant messages after them its reply (assistant messages before
the first user message are skipped, and counted).

Ids come from (user, source, session, turn), so ingesting a file again adds nothing and an
ingest killed half-way completes when run again. Every turn is stored first, done, with its
reply, in one transaction (never a pending turn that a chat would go on to answer), its trace
holding the plug-ins' emotion and safety readings and `origin="ingested"`; no reply is written
and no model runs for it. Then extraction and trait update are queued (no outcome scoring:
empathos chose none of those replies) and, with `drain`, run for this user only. Extraction
reads only the person's own words; a turn the crisis screen bands "crisis" is never mined.

Exceptions: `HistoryError` (a file that cannot be read, a line that is not a valid message,
named by line and field; other words ingested before under the same source).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from agent.context import Context
from agent.errors import AgentError
from agent.trace import ingested_trace
from agent.validation import message_problem
from memory.clock import SimulatedClock
from memory.database import transaction
from memory.jobs import Job, job_ids
from memory.store import TITLE_MAX, ConversationStore, check_user_id
from memory.worker import PAST_TURN_JOBS

MAX_TEXT_CHARS = 20_000
MAX_LABEL_CHARS = 100
SESSION_GAP = timedelta(hours=6)
EXAMPLE = '{"role": "user", "text": "...", "time": "2026-03-01T18:00:00+00:00"}'
HINTS = {
    "role": "use 'user' or 'assistant'",
    "text": f"give the words said (not empty, at most {MAX_TEXT_CHARS} characters)",
    "time": "give an ISO-8601 time with a zone, e.g. 2026-03-01T18:00:00+00:00",
    "session": f"give a short label (at most {MAX_LABEL_CHARS} characters) or leave it out",
}
JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "true or false", type(None): "null"}  # fmt: skip

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LABEL_CHARS)
]


class HistoryError(AgentError, ValueError):
    """A history that cannot be ingested; the message names the file, line and field."""


class HistoryMessage(BaseModel):
    """One message of a past conversation, as a line of a history export holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    text: Text
    time: AwareDatetime
    session: Label | None = None

    @field_validator("text")
    @classmethod
    def _printable(cls, text: str) -> str:
        problem = message_problem(text, MAX_TEXT_CHARS)
        if problem:
            raise ValueError(problem)
        return text


def read_history(path: Path) -> list[HistoryMessage]:
    """Read and validate a whole history file; raise `HistoryError` at its first problem."""
    messages: list[HistoryMessage] = []
    previous = 0
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        message = parse_line(path, number, line)
        if messages and message.time < messages[-1].time:
            raise HistoryError(
                f"{path} line {number}, field 'time': {message.time.isoformat()} is earlier "
                f"than line {previous} ({messages[-1].time.isoformat()}) — messages must be in "
                "the order they were said"
            )
        messages.append(message)
        previous = number
    if not messages:
        raise HistoryError(
            f"{path} holds no messages: write one JSON object a line, e.g. {EXAMPLE}"
        )
    return messages


def read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise HistoryError(f"{path}: no such file; give the path of a history (JSONL).") from exc
    except UnicodeDecodeError as exc:
        raise HistoryError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise HistoryError(
            f"{path} cannot be read ({exc.strerror or exc}); check the path and permissions."
        ) from exc
    return [line.rstrip("\r") for line in text.split("\n")]  # not splitlines: U+2028 is text


def parse_line(path: Path, number: int, line: str) -> HistoryMessage:
    """One line as a message, or a `HistoryError` naming the line and the field."""
    where = f"{path} line {number}"
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HistoryError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); write one JSON object "
            f"a line, e.g. {EXAMPLE}"
        ) from exc
    if not isinstance(data, dict):
        got = JSON_TYPES.get(type(data), type(data).__name__)
        raise HistoryError(f"{where}: {got} is not a message; write an object, e.g. {EXAMPLE}")
    try:
        return HistoryMessage.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(describe(error) for error in exc.errors())
        raise HistoryError(f"{where}, {problems}") from exc


def describe(error: ErrorDetails) -> str:
    """One validation error as "field 'time': what is wrong — what to do"."""
    field = str(error["loc"][0]) if error["loc"] else "?"
    if error["type"] == "extra_forbidden":
        return f"field {field!r}: unknown field — use only {', '.join(HINTS)}"
    what = "missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
    return f"field {field!r}: {what} — {HINTS.get(field, 'see the history format')}"


def group_sessions(
    messages: Sequence[HistoryMessage], gap: timedelta = SESSION_GAP
) -> list[list[HistoryMessage]]:
    """Split messages into sessions: by label, or for unlabelled ones at gaps of `gap` or more."""
    sessions: list[list[HistoryMessage]] = []
    for message in messages:
        if sessions and continues(sessions[-1][-1], message, gap):
            sessions[-1].append(message)
        else:
            sessions.append([message])
    return sessions


def continues(before: HistoryMessage, message: HistoryMessage, gap: timedelta) -> bool:
    if message.session != before.session:
        return False
    return message.session is not None or message.time - before.time < gap


@dataclass(frozen=True)
class PastTurn:
    """One turn of a past session: the person's words and the reply they got."""

    id: str
    user_text: str
    reply: str
    said_at: datetime
    replied_at: datetime


@dataclass(frozen=True)
class PastSession:
    id: str
    title: str
    turns: list[PastTurn]


@dataclass
class IngestReport:
    """What an ingest did. `turns` counts every turn of the history and `already_there` those an
    earlier run stored; `memories` are the current memories first taken from these turns,
    `failed_jobs` their memory jobs that failed for good (`empathos doctor` shows why)."""

    sessions: int = 0
    turns: int = 0
    already_there: int = 0
    memories: int = 0
    failed_jobs: int = 0
    messages: int = 0
    skipped_assistant: int = 0


def stable_id(*parts: object) -> str:
    """An id that is the same every time the same part of the same history is ingested."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()
    return f"ingest-{digest[:16]}"


def session_turns(
    user_id: str, source: str, index: int, messages: Sequence[HistoryMessage]
) -> tuple[list[PastTurn], int]:
    """The session's turns, and how many assistant messages came before any user message."""
    groups: list[tuple[list[HistoryMessage], list[HistoryMessage]]] = []
    skipped = 0
    for message in messages:
        if message.role == "user" and (not groups or groups[-1][1]):
            groups.append(([message], []))
        elif message.role == "user":
            groups[-1][0].append(message)
        elif groups:
            groups[-1][1].append(message)
        else:
            skipped += 1
    turns = [
        PastTurn(
            id=stable_id("turn", user_id, source, index, number),
            user_text="\n".join(m.text for m in said), reply="\n".join(m.text for m in replies),
            said_at=said[0].time, replied_at=(replies or said)[-1].time,
        )
        for number, (said, replies) in enumerate(groups)
    ]  # fmt: skip
    return turns, skipped


def plan_sessions(
    user_id: str, messages: Sequence[HistoryMessage], source: str
) -> tuple[list[PastSession], int]:
    """The sessions to store (those with at least one turn) and the assistant messages skipped."""
    sessions, skipped = [], 0
    for index, group in enumerate(group_sessions(messages)):
        turns, before_user = session_turns(user_id, source, index, group)
        skipped += before_user
        title = " ".join((group[0].session or f"imported: {source}").split())[:TITLE_MAX]
        if turns:
            sessions.append(PastSession(stable_id("session", user_id, source, index), title, turns))
    return sessions, skipped


def check_unchanged(store: ConversationStore, sessions: Sequence[PastSession], source: str) -> None:
    """Refuse, before writing anything, a history whose turns were ingested with other words."""
    for number, session in enumerate(sessions, 1):
        for turn in session.turns:
            found = store.get_turn(turn.id)
            if found is not None and found.user_text != turn.user_text:
                raise HistoryError(
                    f"Session {number} of this history differs from the one ingested before "
                    f"from {source!r}; ingest it under another source name."
                )


def store_turn(
    context: Context, writer: ConversationStore, clock: SimulatedClock, user_id: str,
    session_id: str, turn: PastTurn, source: str,
) -> None:  # fmt: skip
    """Store one past turn done, stamped with its times, and queue its memory work."""
    text = turn.user_text
    emotion = context.read_emotion(text)
    safety = context.safety.screen(text, context.vector(text), context.window_vectors(text))
    trace = ingested_trace(turn.id, emotion, safety, source)
    with transaction(writer.db):  # all at once: a chat would answer a pending turn
        clock.set(turn.said_at)
        writer.begin_turn(turn.id, user_id, session_id, text)
        clock.set(turn.replied_at)
        writer.complete_turn(turn.id, turn.reply, trace, trace.crisis)
        context.memory_worker.enqueue_turn(user_id, session_id, turn.id, PAST_TURN_JOBS)


def ingest(
    context: Context, user_id: str, messages: Sequence[HistoryMessage], *, source: str,
    drain: bool = True, on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:  # fmt: skip
    """Store a person's past conversations as sessions and turns and remember their words.

    `source` names the history (ids derive from it). `on_progress(done, total)` counts turns
    finished: stored, and with `drain` also remembered (storing is quick, remembering is not).
    Raises `HistoryError`, or `InvalidUserIdError` for a bad name, before writing anything.
    """
    check_user_id(user_id)
    check_order(messages)
    sessions, skipped = plan_sessions(user_id, messages, source)
    check_unchanged(context.store, sessions, source)
    turns = [turn for session in sessions for turn in session.turns]
    report = IngestReport(sessions=len(sessions), turns=len(turns), messages=len(messages),
                          skipped_assistant=skipped)  # fmt: skip
    if not turns:
        return report
    if on_progress is not None:
        on_progress(0, len(turns))
    report.already_there = store_sessions(
        context, user_id, sessions, source, None if drain else on_progress
    )
    if drain:
        remember_now(context, user_id, turns, on_progress)
    jobs = [job for turn in turns for job in job_ids(PAST_TURN_JOBS, turn.id)]
    statuses = context.memory_worker.queue.statuses(jobs)
    report.failed_jobs = sum(status == "failed" for status in statuses.values())
    report.memories = sum(len(context.memories.from_turn(user_id, t.id)) for t in turns)
    return report


def check_order(messages: Sequence[HistoryMessage]) -> None:
    """Refuse messages out of order (`read_history` names the line; this, the position)."""
    for number, (before, message) in enumerate(zip(messages, messages[1:], strict=False), 2):
        if message.time < before.time:
            raise HistoryError(
                f"Message {number} ({message.time.isoformat()}) is earlier than the one before "
                f"it ({before.time.isoformat()}); messages must be in the order they were said."
            )


def store_sessions(
    context: Context, user_id: str, sessions: Sequence[PastSession], source: str,
    on_progress: Callable[[int, int], None] | None,
) -> int:  # fmt: skip
    """Store the turns not stored yet, each stamped with its own times; return how many were
    there already."""
    total = sum(len(session.turns) for session in sessions)
    clock = SimulatedClock(sessions[0].turns[0].said_at)
    writer = ConversationStore(context.store.db, clock)
    stored = already_there = 0
    for session in sessions:
        clock.set(session.turns[0].said_at)
        writer.new_session(user_id, session.title, session_id=session.id)
        for turn in session.turns:
            found = writer.get_turn(turn.id)
            if found is not None and found.status == "done":
                already_there += 1
            else:
                store_turn(context, writer, clock, user_id, session.id, turn, source)
            stored += 1
            if on_progress is not None:
                on_progress(stored, total)
    return already_there


def remember_now(
    context: Context, user_id: str, turns: Sequence[PastTurn],
    on_progress: Callable[[int, int], None] | None,
) -> None:  # fmt: skip
    """Run this user's queued memory jobs now, reporting turns whose last job has run."""
    worker = context.memory_worker
    last = {job_ids(PAST_TURN_JOBS[-1:], turn.id)[0] for turn in turns}
    statuses = worker.queue.statuses(sorted(last))
    ran = {job_id for job_id in last if statuses.get(job_id) not in ("pending", "running")}

    def heard(job: Job) -> None:
        if job.id in last and job.id not in ran:
            ran.add(job.id)
            if on_progress is not None:
                on_progress(len(ran), len(turns))

    if on_progress is not None and ran:
        on_progress(len(ran), len(turns))
    was_running = worker.running
    context.finish_memory_work(user_id=user_id, on_job=heard)
    if was_running:
        context.start_memory_worker()
