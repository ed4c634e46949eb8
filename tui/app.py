"""The Textual app: built by `create_app` from its dependencies, so tests inject fakes.

The first screen must come up fast, so nothing heavy is imported here: the agent (LangGraph,
the chat model) is built and the models are loaded in a background worker after mount, while the
screen says "loading models…". A turn sent before then simply waits for the agent.

Exceptions: none of its own; failures are shown with `notify(severity="error")`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from agent.settings import config_file
from tui.host import FeedbackHandler as FeedbackHandler  # re-exported: launch and tests use it
from tui.host import TurnRunner as TurnRunner
from tui.keys import ACTIONS, ConfigError, keymap_from, read_config
from tui.messages import ModelsFailed, ModelsReady
from tui.screens.chat import ChatScreen
from tui.screens.users import UserScreen

if TYPE_CHECKING:
    from agent.context import Context
    from memory.store import ConversationStore
    from tui.host import Host

AgentSource = TurnRunner | Callable[[], TurnRunner]


def describe(exc: BaseException) -> str:
    """Return an exception as one line for a notification."""
    return str(exc) or type(exc).__name__


class EmpathosApp(App[None]):
    """The empathos chat."""

    CSS_PATH = "app.tcss"
    TITLE = "empathos"

    def __init__(
        self,
        context: Context,
        agent: AgentSource,
        user: str | None = None,
        session: str | None = None,
        *,
        on_feedback: FeedbackHandler | None = None,
    ) -> None:
        super().__init__()
        self.context = context
        self.user: str | None = user
        self.session_id: str | None = session
        self.on_feedback = on_feedback
        self.turn_lock = threading.Lock()
        self.models_status = "loading models…"
        self._agent_source = agent
        self._agent: TurnRunner | None = None
        self._agent_lock = threading.Lock()
        self._warming = False

    @property
    def store(self) -> ConversationStore:
        return self.context.store

    def get_agent(self) -> TurnRunner:
        """Return the agent, building it on first use (call from a worker thread: it is slow)."""
        with self._agent_lock:
            if self._agent is None:
                source = self._agent_source
                self._agent = source if isinstance(source, TurnRunner) else source()
            return self._agent

    async def on_mount(self) -> None:
        self.apply_keys()
        await self.switch_to(self.user, self.session_id)

    def apply_keys(self) -> None:
        """Rebind keys from the `[keys]` table of the config file."""
        try:
            keymap, problems = keymap_from(read_config(config_file()))
        except ConfigError as exc:
            keymap, problems = {}, [str(exc)]
        for problem in problems:
            self.notify(problem, title="Keys", severity="warning")
        if keymap:
            self.set_keymap(keymap)

    async def switch_to(
        self, user: str | None, session: str | None = None, *, new: bool = False
    ) -> None:
        """Make `user` the one talking, in `session` (`new`: a new one; default: their latest
        empty one, else a new one), and show it. Every change of user or session comes here.

        `None` means nobody (at start without --user, or after the person was forgotten): the
        chat closes and the app asks who is talking; Esc there quits."""
        if user is None:
            self.user = self.session_id = None  # at once: no turn may start for them now
            self._ask_who_is_talking()
            return
        self.user = self.store.ensure_user(user)
        self.session_id = (
            self.store.new_session(user) if new else self.resolve_session(user, session)
        )
        chat = self.chat_screen()
        if chat is None:
            self.push_screen(ChatScreen())  # it shows the session when mounted
        else:
            await chat.load_session()
            chat.input.focus()

    def chat_screen(self) -> ChatScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, ChatScreen)), None)

    def _ask_who_is_talking(self) -> None:
        while self.chat_screen() is not None:
            self.pop_screen()  # not awaited: the caller may be one of the screens removed
        self.push_screen(UserScreen(self.store, cancel_quits=True), self._user_picked)

    async def _user_picked(self, user: str | None) -> None:
        if user is None:
            self.exit()
        else:
            await self.switch_to(user)

    def begin_warm_up(self) -> None:
        """Start loading the agent and the models, once (the chat screen calls this when shown)."""
        if not self._warming:
            self._warming = True
            self.warm_up()

    def resolve_session(self, user: str, session: str | None) -> str:
        """Return the session to open: the one asked for, an empty latest one, or a new one."""
        from memory.store import UnknownSessionError

        if session:
            try:
                return self.store.check_session(user, session)
            except UnknownSessionError as exc:
                self.notify(str(exc), severity="error")
        latest = self.store.latest_session(user)
        if latest and not self.store.turns(user, latest):
            return latest
        return self.store.new_session(user)

    @work(thread=True, exclusive=True, group="warm-up")
    def warm_up(self) -> None:
        """Build the agent and load the models in the background, then finish interrupted turns."""
        try:
            agent = self.get_agent()
            self.context.warm_up()
            self._resume(agent)
        except Exception as exc:  # the UI edge: report any failure to load, keep the app alive
            self.post_message(ModelsFailed(f"{type(exc).__name__}: {describe(exc)}"))
            return
        self.post_message(ModelsReady())

    def _resume(self, agent: TurnRunner) -> None:
        from agent.runner import TurnError

        if self.user is None:
            return
        with self.turn_lock:
            try:
                done = agent.resume_pending(self.user)
            except TurnError as exc:
                note = f"An interrupted turn could not be finished: {exc}"
                self.call_from_thread(self.notify, note, severity="warning")
                return
        if done:
            note = f"Finished {len(done)} interrupted turn(s) from last time (see Sessions)."
            self.call_from_thread(self.notify, note)
        for result in done:  # a crisis reply must reach the person, whatever session is open
            if getattr(result, "crisis", False) and getattr(result, "reply", None):
                self.call_from_thread(
                    self.notify, result.reply, title="From before you left", severity="warning",
                    timeout=120,
                )  # fmt: skip

    def on_models_ready(self, _: ModelsReady) -> None:
        self.models_status = f"ready · {self.context.settings.model}"
        self._status_changed()

    def on_models_failed(self, message: ModelsFailed) -> None:
        self.models_status = "models failed to load (see the error; turns will retry)"
        self.notify(message.error, title="Loading models failed", severity="error", timeout=15)
        self._status_changed()

    def _status_changed(self) -> None:
        chat = self.chat_screen()
        if chat is not None:
            chat.show_status(self.models_status)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Offer every chat action in the command palette, besides Textual's own commands."""
        yield from super().get_system_commands(screen)
        chat = self.chat_screen()
        if chat is None:
            return
        for action in ACTIONS:
            yield SystemCommand(action.title, action.help, _runner(chat, action.name))


if TYPE_CHECKING:

    def _is_a_host(app: EmpathosApp) -> Host:
        return app  # mypy checks here that the app gives the screens all they use


def _runner(screen: ChatScreen, action: str) -> Callable[[], Any]:
    def run() -> Any:
        return screen.run_action(action)

    return run


def feedback_handler(context: Context) -> FeedbackHandler:
    """The default thumbs up/down hook: it feeds the person's strategy statistics."""

    def record(turn_id: str, value: int) -> None:
        turn = context.store.get_turn(turn_id)
        if turn is None:
            raise LookupError(f"turn {turn_id} is not stored")
        context.outcomes.feedback(context.store, turn.user_id, value > 0, turn_id)

    return record


def create_app(
    context: Context,
    agent: AgentSource,
    user: str | None = None,
    session: str | None = None,
    *,
    on_feedback: FeedbackHandler | None = None,
) -> EmpathosApp:
    """Build the app from its dependencies (`agent` may be a zero-argument factory); feedback
    goes to the context's outcome statistics unless `on_feedback` says otherwise."""
    handler = on_feedback or feedback_handler(context)
    return EmpathosApp(context, agent, user, session, on_feedback=handler)
