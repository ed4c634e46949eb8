"""The embedded back end: a local GGUF run in-process by llama-cpp-python, as a LangChain chat
model (so the graph streams it like any other). One loaded model per (file, context, threads,
role) is shared by the process; calls to it are serialised by its lock.

Four roles keep other work from slowing a turn down or evicting its cached prompt:
- `turn` (the reply path) keeps its own llama.cpp context, so its cached prompt (the
  conversation so far) survives whatever else runs; `prefill` evaluates the next turn's prefix
  while the person reads and types.
- `background` (memory extraction, the relation judge) has a context of its own over the same
  memory-mapped weights. It starts a call only when no turn is in progress (`foreground`), and a
  turn that begins meanwhile aborts it at once (llama.cpp's abort callback): the call raises
  `ModelPreempted` and the caller runs it again later.
- `simulator` (the user simulator of `empathos simulate`) has a context of its own too, so
  playing the person never evicts the agent's cached prompt; like `turn`, it is never preempted
  and never waits for the foreground.
- `judge` (the LLM judge of the offline evaluation) has a context of its own too, like
  `simulator`: rating replies never evicts the agent's cached prompt; never preempted, never
  waits for the foreground.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.json_schema import dereference_refs
from pydantic import ConfigDict, Field

from agent.errors import ModelCallError, ModelPreempted
from agent.llama_logits import FirstTokenLogprobs, OpenerBan, text_logprob

if TYPE_CHECKING:
    from llama_cpp import Llama

CALL_KWARGS = frozenset(
    {"response_format", "max_tokens", "temperature", "seed", "top_p", "top_k", "min_p",
     "repeat_penalty", "presence_penalty", "frequency_penalty", "grammar", "banned_openers",
     "logprobs", "top_logprobs"}
)  # fmt: skip


Role = Literal["turn", "background", "simulator", "judge"]
_Loaded = tuple["Llama", threading.Lock]
_LOADED: dict[tuple[str, int, int, Role], _Loaded] = {}
_LOADING = threading.Lock()
_ABORT_CALLBACKS: list[Any] = []  # ctypes callbacks must outlive the contexts that call them
_CLOSING = threading.Event()  # set at exit: no model loads, a prefill stops between chunks
PREFILL_CHUNK = 64  # tokens a prefill evaluates between looks at `_CLOSING`
SCORED_TOKENS = 256  # at most this much of a text is scored (`text_logprob`: one batch)


class _Foreground:
    """How many turns are in progress; background calls wait for none and abort on one."""

    def __init__(self) -> None:
        self.count = 0
        self.stopping = False  # background work is being stopped: waiting calls give way
        self.changed = threading.Condition()

    @contextmanager
    def hold(self, stopping: bool = False) -> Iterator[None]:
        with self.changed:
            self.count += 1
            self.stopping = self.stopping or stopping
            self.changed.notify_all()
        try:
            yield
        finally:
            with self.changed:
                self.count -= 1
                self.stopping = self.stopping and not stopping
                self.changed.notify_all()

    def wait_until_quiet(self) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.count == 0 or self.stopping)
            if self.stopping:
                raise ModelPreempted("background work is being stopped; this call gave way")


_FOREGROUND = _Foreground()


def foreground() -> AbstractContextManager[None]:
    """Mark a turn in progress: background model calls wait, and running ones are aborted."""
    return _FOREGROUND.hold()


def background_stopping() -> AbstractContextManager[None]:
    """Stop background model work now: running calls abort, waiting ones give way."""
    return _FOREGROUND.hold(stopping=True)


def foreground_active() -> bool:
    return _FOREGROUND.count > 0


def _abort_on_foreground(llama: Llama) -> None:
    """Make llama.cpp abort this context's decoding as soon as a turn is in progress."""
    import llama_cpp

    callback = llama_cpp.ggml_abort_callback(lambda _data: _FOREGROUND.count > 0)
    _ABORT_CALLBACKS.append(callback)
    llama_cpp.llama_set_abort_callback(llama._ctx.ctx, callback, None)


def _load(path: str, n_ctx: int, n_threads: int, verbose: bool, role: Role = "turn") -> _Loaded:
    """Load a GGUF once per (path, n_ctx, n_threads, role) and share it across chat models
    (the weights are memory-mapped: a second role costs its context, not a second copy)."""
    key = (path, n_ctx, n_threads, role)
    with _LOADING:
        if _CLOSING.is_set():  # a daemon thread after exit began: a model loaded now would
            # be freed by the garbage collector after llama.cpp's backend, which aborts
            raise ModelCallError("The process is shutting down; no model is loaded now.")
        if key not in _LOADED:
            from llama_cpp import Llama

            try:
                llama = Llama(
                    model_path=path, n_ctx=n_ctx, n_threads=n_threads,
                    n_threads_batch=n_threads, verbose=verbose,
                )  # fmt: skip
            except (ValueError, RuntimeError) as exc:
                raise ModelCallError(f"Could not load the model {path}: {exc}.") from exc
            if not verbose:  # an aborted decoding is logged as an error; failures still raise
                logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
            if role == "background":
                _abort_on_foreground(llama)
            _LOADED[key] = (llama, threading.Lock())
        return _LOADED[key]


def release_models() -> None:
    """Close every loaded GGUF and free its memory (also run at interpreter exit, while the
    native library is still loaded: closing later prints errors from llama.cpp's finaliser)."""
    _CLOSING.set()
    with _LOADING:
        for llama, lock in _LOADED.values():
            with lock:
                llama.close()
        _LOADED.clear()


atexit.register(release_models)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON schema with every local `$ref` inlined and `$defs` dropped."""
    inlined = dereference_refs(schema)
    inlined.pop("$defs", None)
    return inlined


@lru_cache(maxsize=64)
def _check_grammar(schema_json: str) -> None:
    """Fail loudly if llama.cpp cannot turn the schema into a grammar (it would silently
    fall back to unconstrained JSON)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        json_schema_to_gbnf(schema_json)
    except Exception as exc:  # the converter raises bare asserts, KeyErrors, ValueErrors
        raise ValueError(f"llama.cpp cannot turn this JSON schema into a grammar: {exc}") from exc


def _prepare_response_format(response_format: dict[str, Any]) -> dict[str, Any]:
    if "schema" not in response_format:
        return response_format
    schema = inline_refs(response_format["schema"])
    _check_grammar(json.dumps(schema, sort_keys=True))
    return {**response_format, "schema": schema}


def _dicts(messages: list[BaseMessage]) -> Any:
    return convert_to_openai_messages(messages)


@lru_cache(maxsize=32)
def _grammar(gbnf: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"llama.cpp cannot parse this grammar: {exc}") from exc


def _usage(prompt: int, completion: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )


def _prefix_tokens(llama: Llama, messages: list[BaseMessage]) -> list[int]:
    """The tokens a chat completion's prompt starts with for these messages: the model's own
    chat template without the generation prompt, tokenized as llama-cpp-python does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("the model file has no chat template to render a prefix with")
    model: Any = llama._model

    def text(token: int) -> str:
        return str(model.token_get_text(token)) if token != -1 else ""

    formatter = Jinja2ChatFormatter(
        template=template, eos_token=text(llama.token_eos()), bos_token=text(llama.token_bos()),
        add_generation_prompt=False,
    )  # fmt: skip
    prompt = formatter(messages=_dicts(messages)).prompt
    return list(llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))


class ChatLlamaCpp(BaseChatModel):
    """A chat model running a local GGUF in-process with llama-cpp-python."""

    model_path: str
    model_name: str = Field(default="", description="Name for traces; defaults to the file stem.")
    n_ctx: int = 4096
    n_threads: int = Field(default=1, description="1 is faster than 2 on a loaded 2-core box.")
    max_tokens: int = 256
    temperature: float = 0.7
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    seed: int = 7
    verbose: bool = False
    role: Role = Field(
        default="turn",
        description="turn: the reply path; background: yields to turns; simulator: plays the "
        "person in simulations (own context, never yields); judge: rates replies in the offline "
        "evaluation (own context, never yields).",
    )

    model_config = ConfigDict(protected_namespaces=())

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.label, "n_ctx": self.n_ctx, "temperature": self.temperature}

    @property
    def label(self) -> str:
        return self.model_name or Path(self.model_path).stem

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Merge call-time kwargs (e.g. a bound `response_format`) over the defaults."""
        unknown = sorted(set(kwargs) - CALL_KWARGS)
        if unknown:
            raise TypeError(f"ChatLlamaCpp does not take {unknown}; it takes {sorted(CALL_KWARGS)}")
        params: dict[str, Any] = {
            "max_tokens": self.max_tokens, "temperature": self.temperature,
            "repeat_penalty": self.repeat_penalty, "presence_penalty": self.presence_penalty,
        }  # fmt: skip
        params |= {"seed": self.seed, **kwargs, "stop": stop or []}
        if params.get("response_format"):
            params["response_format"] = _prepare_response_format(params["response_format"])
        if params.get("grammar"):
            params["grammar"] = _grammar(params["grammar"])
        return params

    @staticmethod
    def _with_processors(
        llama: Llama, params: dict[str, Any]
    ) -> tuple[dict[str, Any], FirstTokenLogprobs | None]:
        """Turn `banned_openers` and `logprobs` into llama.cpp logits processors for this call
        (with `logprobs`, the first token's candidates are recorded: see `llama_logits`)."""
        banned = params.pop("banned_openers", None)
        wanted, top = params.pop("logprobs", False), params.pop("top_logprobs", None)
        first = FirstTokenLogprobs(llama, top or 1) if wanted else None
        processors = ([OpenerBan(llama, banned)] if banned else []) + ([first] if first else [])
        if not processors:
            return params, None
        from llama_cpp import LogitsProcessorList

        return {**params, "logits_processor": LogitsProcessorList(processors)}, first

    def _llama(self) -> _Loaded:
        if self.role == "background":
            _FOREGROUND.wait_until_quiet()
        return _load(self.model_path, self.n_ctx, self.n_threads, self.verbose, self.role)

    def _preempted(self) -> bool:
        return self.role == "background" and foreground_active()

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        params, (llama, lock) = self._params(stop, kwargs), self._llama()
        params, first = self._with_processors(llama, params)
        with lock, self._errors():
            response: Any = llama.create_chat_completion(messages=_dicts(messages), **params)
        choice, usage = response["choices"][0], response["usage"]
        metadata = {"finish_reason": choice["finish_reason"], "model_name": self.label}
        message = AIMessage(
            content=choice["message"]["content"] or "",
            usage_metadata=_usage(usage["prompt_tokens"], usage["completion_tokens"]),
            response_metadata=metadata | ({"logprobs": first.logprobs()} if first else {}),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:  # fmt: skip
        params, (llama, lock) = self._params(stop, kwargs), self._llama()
        params, _ = self._with_processors(llama, params)  # logprobs: only `invoke` reports them
        with lock, self._errors():
            chunks: Any = llama.create_chat_completion(
                messages=_dicts(messages), stream=True, **params
            )
            texts, finish = [], None
            for chunk in chunks:
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                if text := choice["delta"].get("content"):
                    texts.append(text)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            yield self._last_chunk(llama, "".join(texts), finish)

    def prefill(self, messages: list[BaseMessage]) -> int:
        """Evaluate `messages` (a prompt's start, no generation) into the model's cache now, so
        the next call that begins with them evaluates only what follows. Returns how many
        tokens were evaluated (0 when the cache already held them)."""
        llama, lock = self._llama()
        with lock, self._errors():
            tokens = _prefix_tokens(llama, messages)
            held = list(llama._input_ids[: llama.n_tokens])
            cached: int = llama.longest_token_prefix(held, tokens)
            if cached == len(tokens):
                return 0
            llama.n_tokens = cached  # eval drops the cache beyond this point first
            for start in range(cached, len(tokens), PREFILL_CHUNK):
                if _CLOSING.is_set():
                    break
                llama.eval(tokens[start : start + PREFILL_CHUNK])
            evaluated: int = llama.n_tokens - cached
            return evaluated

    def text_logprob(self, prefix: str, text: str) -> float:
        """The log-probability the model gives `text` (its first `SCORED_TOKENS` tokens) right
        after `prefix`, both plain text (no chat template), summed over its tokens; 0.0 for
        an empty text. A prefix cached whole is reused; one cached in part is evaluated again
        from the start: llama.cpp's numbers depend on how tokens are split into batches (on
        the 1.5b, a prefix evaluated in a batch of its own moved a message's log-probability
        by 0.9), so the same prefix and text always give the same number."""
        llama, lock = self._llama()
        with lock, self._errors():
            head = list(llama.tokenize(prefix.encode("utf-8"), add_bos=True))
            body = list(llama.tokenize(text.encode("utf-8"), add_bos=False))[:SCORED_TOKENS]
            if not head:
                raise ValueError("text_logprob needs a prefix to score the text after")
            if not body:
                return 0.0
            held = list(llama._input_ids[: llama.n_tokens])
            whole = llama.longest_token_prefix(held, head[:-1]) == len(head) - 1
            llama.n_tokens = len(head) - 1 if whole else 0
            if not whole and len(head) > 1:
                llama.eval(head[:-1])
            return text_logprob(llama, head[-1], body)

    def _last_chunk(self, llama: Llama, text: str, finish: str | None) -> ChatGenerationChunk:
        """Close a stream with token usage (counted, as streams carry none) and finish reason."""
        completion = len(llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0
        unevaluated = 1 if finish == "length" else 0  # the last sampled token is never fed back
        prompt = max(llama.n_tokens - completion + unevaluated, 0)
        message = AIMessageChunk(
            content="",
            usage_metadata=_usage(prompt, completion),
            response_metadata={"finish_reason": finish, "model_name": self.label},
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if _CLOSING.is_set():  # entered under the model's lock: it is not closed yet, but
            # release_models is waiting to close it
            raise ModelCallError("The process is shutting down; the model is being closed.")
        try:
            yield
        except (ValueError, RuntimeError) as exc:
            if self._preempted():  # llama.cpp aborted the decoding for a turn
                raise ModelPreempted(f"{self.label}: a turn began; this call gave way") from exc
            raise ModelCallError(f"The embedded model {self.label} failed: {exc}") from exc
