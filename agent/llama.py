"""The embedded back end: a local GGUF run in-process by llama-cpp-python, as a LangChain chat
model (so the graph streams it like any other). One loaded model per (file, context, threads)
is shared by the process; calls to it are serialised by its lock."""

from __future__ import annotations

import atexit
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.json_schema import dereference_refs
from pydantic import ConfigDict, Field

from agent.errors import ModelCallError

if TYPE_CHECKING:
    from llama_cpp import Llama

CALL_KWARGS = frozenset(
    {"response_format", "max_tokens", "temperature", "seed", "top_p", "top_k", "min_p",
     "repeat_penalty", "presence_penalty", "frequency_penalty"}
)  # fmt: skip


_Loaded = tuple["Llama", threading.Lock]
_LOADED: dict[tuple[str, int, int], _Loaded] = {}
_LOADING = threading.Lock()


def _load(path: str, n_ctx: int, n_threads: int, verbose: bool) -> _Loaded:
    """Load a GGUF once per (path, n_ctx, n_threads) and share it across chat models."""
    key = (path, n_ctx, n_threads)
    with _LOADING:
        if key not in _LOADED:
            from llama_cpp import Llama

            try:
                llama = Llama(
                    model_path=path, n_ctx=n_ctx, n_threads=n_threads,
                    n_threads_batch=n_threads, verbose=verbose,
                )  # fmt: skip
            except (ValueError, RuntimeError) as exc:
                raise ModelCallError(f"Could not load the model {path}: {exc}.") from exc
            _LOADED[key] = (llama, threading.Lock())
        return _LOADED[key]


def release_models() -> None:
    """Close every loaded GGUF and free its memory (also run at interpreter exit, while the
    native library is still loaded: closing later prints errors from llama.cpp's finaliser)."""
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


def _usage(prompt: int, completion: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )


class ChatLlamaCpp(BaseChatModel):
    """A chat model running a local GGUF in-process with llama-cpp-python."""

    model_path: str
    model_name: str = Field(default="", description="Name for traces; defaults to the file stem.")
    n_ctx: int = 4096
    n_threads: int = Field(default=1, description="1 is faster than 2 on a loaded 2-core box.")
    max_tokens: int = 256
    temperature: float = 0.7
    seed: int = 7
    verbose: bool = False

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
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        params |= {"seed": self.seed, **kwargs, "stop": stop or []}
        if params.get("response_format"):
            params["response_format"] = _prepare_response_format(params["response_format"])
        return params

    def _llama(self) -> _Loaded:
        return _load(self.model_path, self.n_ctx, self.n_threads, self.verbose)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        params, (llama, lock) = self._params(stop, kwargs), self._llama()
        with lock, self._errors():
            response: Any = llama.create_chat_completion(messages=_dicts(messages), **params)
        choice, usage = response["choices"][0], response["usage"]
        message = AIMessage(
            content=choice["message"]["content"] or "",
            usage_metadata=_usage(usage["prompt_tokens"], usage["completion_tokens"]),
            response_metadata={"finish_reason": choice["finish_reason"], "model_name": self.label},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:  # fmt: skip
        params, (llama, lock) = self._params(stop, kwargs), self._llama()
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
        try:
            yield
        except (ValueError, RuntimeError) as exc:
            raise ModelCallError(f"The embedded model {self.label} failed: {exc}") from exc
