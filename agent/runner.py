"""Run turns through the compiled graph with a durable checkpointer.

Exceptions: `TurnError` (base) > `TurnFailedError` — the turn could not finish (a model or store
failure); the user's message is kept and the turn is marked failed with the reason.

Each turn is its own LangGraph thread (`"{user}:{turn}"`), checkpointed with
`durability="sync"`: a process killed mid-turn leaves a checkpoint at the last finished node,
and `resume_pending` finishes such turns (or reports them failed) on the next start.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from agent.context import Context
from agent.errors import AgentError
from agent.graph import build
from agent.state import TurnInput, checkpoint_types
from memory.database import secure_dir
from memory.store import new_id

TokenHandler = Callable[[str], None]
StageHandler = Callable[[str], None]


class TurnError(AgentError):
    """Base class for turn errors."""


class TurnFailedError(TurnError):
    """A turn could not finish; the user's message is stored and the turn marked failed."""

    def __init__(self, turn_id: str, reason: str, saved: bool = True) -> None:
        kept = (
            f"Your message was saved (turn {turn_id})." if saved
            else "Your message could not be saved: please send it again."
        )  # fmt: skip
        super().__init__(f"The turn failed: {reason.rstrip('.')}. {kept}")
        self.turn_id, self.reason, self.saved = turn_id, reason, saved


@dataclass
class TurnResult:
    turn_id: str
    reply: str | None
    crisis: bool = False
    rejected: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


def checkpoint_serde() -> JsonPlusSerializer:
    """A strict serializer: only the state's own models and enums (and LangGraph's safe types)
    deserialize from a checkpoint; anything else is blocked, not merely warned about."""
    return JsonPlusSerializer(allowed_msgpack_modules=sorted(checkpoint_types()))


def open_checkpointer(context: Context) -> SqliteSaver:
    """Open the SQLite checkpointer under the data dir (private file)."""
    path = context.settings.checkpoint_path
    secure_dir(path.parent)
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    # A separate file. LangGraph's saver runs each operation under its own lock and commits at
    # its end, so no transaction of it spans two threads even on this one connection.
    connection = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(connection, serde=checkpoint_serde())
    saver.setup()
    return saver


def thread_config(user_id: str, turn_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": f"{user_id}:{turn_id}"}}


class Agent:
    """Run and resume turns for any user over one context and checkpointer."""

    def __init__(
        self, context: Context, checkpointer: BaseCheckpointSaver[Any] | None = None
    ) -> None:
        self.context = context
        self.checkpointer = checkpointer or open_checkpointer(context)
        self.graph = build(context.variant).compile(checkpointer=self.checkpointer)

    def run_turn(
        self,
        user_id: str,
        session_id: str,
        message: str,
        *,
        on_token: TokenHandler | None = None,
        on_stage: StageHandler | None = None,
        turn_id: str | None = None,
    ) -> TurnResult:
        """Run one turn, streaming reply tokens and node names to the handlers."""
        turn_id = turn_id or new_id()
        payload: TurnInput = {
            "user_id": user_id,
            "session_id": session_id,
            "turn_id": turn_id,
            "message": message,
        }
        return self._drive(payload, thread_config(user_id, turn_id), turn_id, on_token, on_stage)

    def resume_pending(
        self, user_id: str, on_token: TokenHandler | None = None
    ) -> list[TurnResult]:
        """Finish turns a crash left pending: from their last checkpoint, else from the start.

        A turn that fails again is marked failed (with the reason) and the others go on, so
        one bad turn never blocks new messages. Returns the turns that finished.
        """
        results = []
        pending = [(turn.id, turn) for turn in self.context.store.pending_turns(user_id)]
        for turn_id, turn in pending + [(t, None) for t in self._unsaved_turns(user_id)]:
            config = thread_config(user_id, turn_id)
            snapshot = self.graph.get_state(config)
            payload: TurnInput | None = None if snapshot.next or turn is None else {
                "user_id": user_id, "session_id": turn.session_id,
                "turn_id": turn.id, "message": turn.user_text,
            }  # fmt: skip
            try:
                result = self._drive(payload, config, turn_id, on_token, None)
            except TurnError:
                continue  # `_drive` marked it failed with the reason
            if result.rejected:  # e.g. the length limit was lowered since
                if turn is not None:
                    self.context.store.fail_turn(turn_id, result.rejected)
                self.checkpointer.delete_thread(config["configurable"]["thread_id"])
                continue
            results.append(result)
        return results

    def _unsaved_turns(self, user_id: str) -> list[str]:
        """Turns whose message reached a checkpoint but not the store (a process killed
        between the two): they resume from the checkpoint, so no sent message is lost."""
        prefix = f"{user_id}:"
        threads = {c.config["configurable"]["thread_id"] for c in self.checkpointer.list(None)}
        turn_ids = sorted(t.removeprefix(prefix) for t in threads if t.startswith(prefix))
        return [t for t in turn_ids if self.context.store.get_turn(t) is None]

    def _drive(
        self,
        payload: TurnInput | None,
        config: RunnableConfig,
        turn_id: str,
        on_token: TokenHandler | None,
        on_stage: StageHandler | None,
    ) -> TurnResult:
        try:
            with self.context.turn_in_progress():  # background memory work gives way
                for mode, chunk in self.graph.stream(
                    payload,
                    config,
                    context=self.context,
                    stream_mode=["custom", "updates"],
                    durability="sync",
                ):
                    _dispatch(mode, chunk, on_token, on_stage)
        except Exception as exc:  # any failure: keep the message, mark the turn, re-raise typed
            saved = self._mark_failed(turn_id, exc, config)
            raise TurnFailedError(turn_id, f"{type(exc).__name__}: {exc}", saved) from exc
        snapshot = self.graph.get_state(config)
        values = dict(snapshot.values)
        if not snapshot.next:  # finished and stored: the checkpoints have done their job
            self.checkpointer.delete_thread(config["configurable"]["thread_id"])
            if values.get("reply") and "session_id" in values:  # the next turn's prompt start
                self.context.prefill(values["user_id"], values["session_id"])
        return TurnResult(
            turn_id=turn_id,
            reply=values.get("reply"),
            crisis=bool(values.get("crisis")),
            rejected=values.get("rejected"),
            state=values,
        )

    def _mark_failed(self, turn_id: str, exc: BaseException, config: RunnableConfig) -> bool:
        """Mark the turn failed; its checkpoints go (a failed turn is never resumed, and they
        may hold recalled memories the person could later ask to forget). Returns whether the
        message is stored."""
        saved = self.context.store.get_turn(turn_id) is not None
        if saved:
            self.context.store.fail_turn(turn_id, f"{type(exc).__name__}: {exc}")
        self.checkpointer.delete_thread(config["configurable"]["thread_id"])
        return saved


def _dispatch(
    mode: str, chunk: Any, on_token: TokenHandler | None, on_stage: StageHandler | None
) -> None:
    if mode == "custom" and on_token is not None:  # what the reply check lets through
        if isinstance(chunk, dict) and chunk.get("token"):
            on_token(str(chunk["token"]))
    elif mode == "updates" and on_stage is not None:
        for node in chunk:
            on_stage(node)
