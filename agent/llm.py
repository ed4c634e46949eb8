"""The LLM layer: build the chat model, run the embedded llama.cpp model, get structured output.

Two back ends, both LangChain chat models so the graph can stream with `stream_mode="messages"`:
`ChatLlamaCpp` runs a local GGUF in-process with llama-cpp-python; any OpenAI-compatible endpoint
(`settings.base_url`) goes through `langchain_openai.ChatOpenAI`. `invoke_structured` turns a
reply into a pydantic model, with one retry that shows the model its validation error.

The embedded back end lives in `agent.llama`; the exceptions (`LLMError` and below) in
`agent.errors`, re-exported here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel

from agent.errors import (
    LLMError,
    ModelCallError,
    ModelInstallError,
    ModelNotInstalledError,
    ModelVerificationError,
    StructuredOutputError,
    UnknownModelError,
)
from agent.llama import ChatLlamaCpp, Role, inline_refs, release_models
from agent.models import resolve_model_path
from agent.schemas import LLMCall

if TYPE_CHECKING:
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


def build_chat_model(
    settings: Settings, *, max_tokens: int | None = None, role: Role = "turn"
) -> BaseChatModel:
    """Return the chat model the settings ask for: an endpoint, or the embedded GGUF (in the
    `turn` role, as a `background` context that gives way to turns, or as the `simulator`'s or
    the `judge`'s own context; see agent.llama)."""
    tokens = max_tokens or settings.max_tokens
    if settings.base_url:
        return _endpoint_model(settings, tokens)
    path = resolve_model_path(settings.model, settings.models_dir)
    return ChatLlamaCpp(
        model_path=str(path), model_name=settings.model, n_ctx=settings.n_ctx,
        n_threads=settings.n_threads, max_tokens=tokens, temperature=settings.temperature,
        repeat_penalty=settings.repeat_penalty, presence_penalty=settings.presence_penalty,
        seed=settings.seed, role=role,
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
            advice = (
                "The server failed: try again, and check its log if it keeps failing"
                if exc.status_code >= 500
                else "Check the model id, api_key and request options"
            )
            message = str(exc.message).rstrip(". ")
            raise ModelCallError(
                f"The model endpoint at {base_url} answered HTTP {exc.status_code}: "
                f"{message}. {advice}."
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
        calls.append(record_call(node, model, message, time.perf_counter() - started, attempt > 0))
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


def record_call(
    node: str, model: BaseChatModel, message: Any, seconds: float, retried: bool
) -> LLMCall:
    """The call's trace record: node, model, tokens in and out, seconds."""
    usage = getattr(message, "usage_metadata", None) or {}
    return LLMCall(
        node=node, model=model_label(model), prompt_tokens=usage.get("input_tokens", 0),
        completion_tokens=usage.get("output_tokens", 0), seconds=round(seconds, 3),
        retried=retried,
    )  # fmt: skip
