"""Stream a reply from a chat model and account for the call."""

from __future__ import annotations

import time
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent.llm import model_call_errors
from agent.schemas import LLMCall


def stream_reply(
    model: BaseChatModel, messages: Sequence[BaseMessage], *, node: str, model_name: str
) -> tuple[str, LLMCall]:
    """Stream the model's answer (LangGraph forwards the tokens) and return text plus usage."""
    start = time.perf_counter()
    parts: list[str] = []
    prompt_tokens = completion_tokens = 0
    with model_call_errors(model):  # an endpoint's failure says which endpoint and what to do
        for chunk in model.stream(list(messages)):
            parts.append(chunk.text)
            usage = getattr(chunk, "usage_metadata", None)
            if usage:
                prompt_tokens += usage.get("input_tokens", 0)
                completion_tokens += usage.get("output_tokens", 0)
    call = LLMCall(
        node=node,
        model=model_name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.perf_counter() - start,
    )
    return "".join(parts), call
