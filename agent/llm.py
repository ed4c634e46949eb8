"""The LLM layer: build the chat model, run the embedded llama.cpp model, get structured output.

Two back ends, both LangChain chat models so the graph can stream with `stream_mode="messages"`:
`ChatLlamaCpp` runs a local GGUF in-process with llama-cpp-python; any OpenAI-compatible endpoint
(`settings.base_url`) goes through `langchain_openai.ChatOpenAI`. `invoke_structured` turns a
reply into a pydantic model, with one retry that shows the model its validation error.

Exceptions (`LLMError` and the model ones come from agent.models and are re-exported here):

    LLMError
    ├── UnknownModelError, ModelNotInstalledError, ModelInstallError, ModelVerificationError
    ├── StructuredOutputError   the reply did not fit the schema, even after one retry
    └── ModelCallError          endpoint unreachable or erroring, model failed to load,
                                prompt longer than the context
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.json_schema import dereference_refs
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel, ConfigDict, Field

from agent.models import (
    LLMError,
    ModelInstallError,
    ModelNotInstalledError,
    ModelVerificationError,
    UnknownModelError,
    resolve_model_path,
)
from agent.schemas import LLMCall

if TYPE_CHECKING:
    from llama_cpp import Llama

    from agent.settings import Settings

__all__ = [
    "ChatLlamaCpp", "LLMError", "ModelCallError", "ModelInstallError", "ModelNotInstalledError",
    "ModelVerificationError", "StructuredMethod", "StructuredOutputError", "UnknownModelError",
    "build_chat_model", "inline_refs", "invoke_structured", "model_call_errors", "model_label",
    "parse_json_text", "release_models", "structured_method", "with_max_tokens",
]  # fmt: skip

T = TypeVar("T", bound=BaseModel)
StructuredMethod = Literal["json_schema_text", "function_calling", "json_schema"]

RETRY_PROMPT = "Your JSON was invalid: {error}. Reply with JSON only."
CALL_KWARGS = frozenset(
    {"response_format", "max_tokens", "temperature", "seed", "top_p", "top_k", "min_p",
     "repeat_penalty", "presence_penalty", "frequency_penalty"}
)  # fmt: skip


class StructuredOutputError(LLMError):
    """The model's reply did not validate against the schema, even after one retry."""

    def __init__(self, node: str, error: str, raw: str) -> None:
        super().__init__(
            f"{node}: the model's reply did not fit the expected structure after one retry: "
            f"{error}. Raw reply: {raw[:300]!r}. Try a larger model or raise the token limit."
        )
        self.node, self.error, self.raw = node, error, raw


class ModelCallError(LLMError):
    """The model call failed (endpoint unreachable or erroring, load failure, context overflow)."""


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


def build_chat_model(settings: Settings, *, max_tokens: int | None = None) -> BaseChatModel:
    """Return the chat model the settings ask for: an endpoint, or the embedded GGUF."""
    tokens = max_tokens or settings.max_tokens
    if settings.base_url:
        return _endpoint_model(settings, tokens)
    path = resolve_model_path(settings.model, settings.models_dir)
    return ChatLlamaCpp(
        model_path=str(path), model_name=settings.model, n_ctx=settings.n_ctx,
        n_threads=settings.n_threads, max_tokens=tokens, temperature=settings.temperature,
        seed=settings.seed,
    )  # fmt: skip


def _endpoint_model(settings: Settings, max_tokens: int) -> BaseChatModel:
    """Build ChatOpenAI; `max_tokens` goes in the body because llama.cpp's server ignores
    `max_completion_tokens`."""
    from langchain_openai import ChatOpenAI

    api_key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
    return ChatOpenAI(
        base_url=settings.base_url, model=settings.model, api_key=api_key,  # type: ignore[arg-type]
        temperature=settings.temperature, seed=settings.seed, timeout=settings.request_timeout,
        max_retries=1, streaming=True, stream_usage=True, disable_streaming="tool_calling",
        extra_body={"max_tokens": max_tokens},
    )  # fmt: skip


def with_max_tokens(model: BaseChatModel, max_tokens: int) -> BaseChatModel:
    """Return a copy of the model that generates at most `max_tokens` tokens."""
    if isinstance(model, ChatLlamaCpp):
        return model.model_copy(update={"max_tokens": max_tokens})
    extra_body = getattr(model, "extra_body", None)
    if isinstance(extra_body, dict):
        return model.model_copy(update={"extra_body": {**extra_body, "max_tokens": max_tokens}})
    return model


def structured_method(settings: Settings) -> StructuredMethod:
    """Pick how to get structured output: grammar-constrained text embedded, else the setting."""
    return settings.structured_method if settings.base_url else "json_schema_text"


def model_label(model: Runnable[Any, Any]) -> str:
    """Return the model's name for traces."""
    inner = getattr(model, "bound", model)
    name = getattr(inner, "label", None) or getattr(inner, "model_name", None)
    return str(name or type(inner).__name__)


@contextmanager
def model_call_errors(model: Runnable[Any, Any]) -> Iterator[None]:
    """Turn OpenAI-client failures into ModelCallError naming the endpoint."""
    base_url, openai = getattr(model, "openai_api_base", None), sys.modules.get("openai")
    try:
        yield
    except Exception as exc:
        if openai is not None and isinstance(exc, openai.APIConnectionError):
            raise ModelCallError(
                f"Could not reach the model endpoint at {base_url} ({exc}). Check that the "
                "server is running and that base_url is right."
            ) from exc
        if openai is not None and isinstance(exc, openai.APIStatusError):
            raise ModelCallError(
                f"The model endpoint at {base_url} answered HTTP {exc.status_code}: "
                f"{exc.message}. Check the model id, api_key and request options."
            ) from exc
        raise


def parse_json_text(text: str, schema: type[T]) -> T:
    """Validate the first JSON object in `text`, ignoring code fences and prose around it."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            _, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return schema.model_validate_json(text[start:end])
    raise ValueError(f"no JSON object in the reply {text[:200]!r}")


def invoke_structured(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    schema: type[T],
    *,
    method: StructuredMethod = "json_schema_text",
    node: str,
    max_tokens: int | None = None,
) -> tuple[T, list[LLMCall]]:
    """Ask for a `schema` object; retry once with the validation error, then give up."""
    if max_tokens is not None:
        model = with_max_tokens(model, max_tokens)
    # Whole replies only: llama.cpp's server garbles streamed tool names, and the JSON must not
    # reach the user through the graph's "messages" stream.
    whole: dict[str, Any] = {"disable_streaming": True}
    if "streaming" in type(model).model_fields:
        whole["streaming"] = False
    model = model.model_copy(update=whole)
    runnable = _structured_runnable(model, schema, method).with_config(tags=[TAG_NOSTREAM])
    history, calls = list(messages), []
    for attempt in range(2):
        started = time.perf_counter()
        with model_call_errors(model):
            result = runnable.invoke(history)
        parsed, raw, error, message = _read_result(result, schema, method)
        calls.append(_record(node, model, message, time.perf_counter() - started, attempt > 0))
        if parsed is not None:
            return parsed, calls
        retry = HumanMessage(RETRY_PROMPT.format(error=error[:500]))
        history = [*history, AIMessage(content=raw), retry]
    raise StructuredOutputError(node, error, raw)


def _structured_runnable(
    model: BaseChatModel, schema: type[BaseModel], method: StructuredMethod
) -> Runnable[LanguageModelInput, Any]:
    if method == "json_schema_text":
        response_format = {"type": "json_object", "schema": schema.model_json_schema()}
        return model.bind(response_format=response_format)
    return model.with_structured_output(schema, method=method, include_raw=True)


def _read_result(
    result: Any, schema: type[T], method: StructuredMethod
) -> tuple[T | None, str, str, AIMessage]:
    """Return (parsed or None, raw text, error, raw message) for one attempt."""
    if method == "json_schema_text":
        try:
            return parse_json_text(result.text, schema), result.text, "", result
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return None, result.text, str(exc), result
    message: AIMessage = result["raw"]
    tool_calls = message.additional_kwargs.get("tool_calls") or []
    raw = str(tool_calls[0]["function"]["arguments"]) if tool_calls else message.text
    if result["parsed"] is not None:
        return result["parsed"], raw, "", message
    error = result["parsing_error"] or f"the reply did not call the {schema.__name__} tool"
    return None, raw, str(error), message


def _record(
    node: str, model: BaseChatModel, message: Any, seconds: float, retried: bool
) -> LLMCall:
    usage = getattr(message, "usage_metadata", None) or {}
    return LLMCall(
        node=node, model=model_label(model), prompt_tokens=usage.get("input_tokens", 0),
        completion_tokens=usage.get("output_tokens", 0), seconds=round(seconds, 3),
        retried=retried,
    )  # fmt: skip
