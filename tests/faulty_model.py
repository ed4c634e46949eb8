"""A chat model that fails the way real ones do, on a seeded schedule, and a real HTTP server
that does too.

`FaultyChatModel` faults: a timeout, a server error (HTTP 503), malformed JSON, schema-valid
nonsense, a stream cut off mid-reply, an empty reply. Everything else is a well-formed analysis
or reply. The schedule is shared by copies of the model (LangChain copies models to bind
options).

`FaultyServer` is an OpenAI-compatible chat-completions server (stdlib `http.server` on
127.0.0.1, a free port) for the real `ChatOpenAI` client that `agent.llm.build_chat_model`
builds: it answers HTTP 500, 502 or 503 on the same schedule, else a valid completion (a tool
call for function calling, JSON for a response format, an SSE stream for a streamed reply).
Its errors carry `retry-after-ms: 1`, as an overloaded server's Retry-After would, so the
client's one retry runs at once instead of after its default half-second backoff.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from tests.fakes import ANALYSIS, varied_reply

FAULTS = ("timeout", "http_503", "malformed", "nonsense", "cut_stream", "empty")
SERVER_FAULTS = ("http_500", "http_502", "http_503")
NONSENSE = {**ANALYSIS, "cause_span": "purple monkey dishwasher", "situation": "zzz " * 10}


class FaultSchedule:
    """Which call gets which fault; counts what was injected."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng, self.rate = random.Random(seed), rate
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()  # the server draws from its own thread

    def draw(self, allowed: tuple[str, ...]) -> str | None:
        with self._lock:
            if self.rng.random() >= self.rate:
                return None
            fault = self.rng.choice(allowed)
            self.injected[fault] += 1
            return fault


_REPLIES = itertools.count()


def next_reply() -> str:
    """A well-formed reply that repeats no earlier one (the reply check rewrites repeats)."""
    return varied_reply(next(_REPLIES) + 1)


class FaultyChatModel(BaseChatModel):
    """Answers analyses (calls with a response_format) with JSON and replies with text."""

    schedule: Any

    @property
    def _llm_type(self) -> str:
        return "faulty-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        analysis = "response_format" in kw
        fault = self.schedule.draw(FAULTS[:4] + ("empty",) if analysis else FAULTS)
        self._raise(fault)
        text = json.dumps(ANALYSIS) if analysis else next_reply()
        text = {"malformed": '{"cause_span": "x", "need": ', "empty": ""}.get(fault or "", text)
        if fault == "nonsense":
            text = json.dumps(NONSENSE) if analysis else "}}}{{{ [[[ ]]] " * 3
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        fault = self.schedule.draw(FAULTS)
        self._raise(fault)
        reply = json.dumps(NONSENSE) if fault == "nonsense" else next_reply()
        words = [] if fault == "empty" else reply.split(" ")
        for index, word in enumerate(words):
            if fault == "cut_stream" and index == 3:
                raise ConnectionResetError("the stream was cut off mid-reply")
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))

    @staticmethod
    def _raise(fault: str | None) -> None:
        if fault == "timeout":
            raise TimeoutError("the model did not answer in time")
        if fault == "http_503":
            raise ConnectionError("HTTP 503 from the model server: overloaded")


class FaultyServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 failing with 5xx on the schedule."""

    def __init__(self, schedule: FaultSchedule) -> None:
        self.schedule = schedule
        self.requests: Counter[str] = Counter()  # "analysis", "reply", "http_503", ...
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def answer(self, body: dict[str, Any]) -> tuple[int, str | list[str]]:
        """Return (status, JSON body) or (200, SSE events) for one chat-completions request."""
        fault = self.schedule.draw(SERVER_FAULTS)
        if fault is not None:
            self.requests[fault] += 1
            error = {"message": f"injected {fault}", "type": "server_error", "code": None}
            return int(fault.removeprefix("http_")), json.dumps({"error": error})
        if body.get("tools"):
            self.requests["analysis"] += 1
            name = body["tools"][0]["function"]["name"]
            call = {"id": "call_1", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(ANALYSIS)}}  # fmt: skip
            return 200, _completion({"content": None, "tool_calls": [call]}, "tool_calls")
        if body.get("response_format"):
            self.requests["analysis"] += 1
            return 200, _completion({"content": json.dumps(ANALYSIS)}, "stop")
        self.requests["reply"] += 1
        reply = next_reply()
        if body.get("stream"):
            return 200, _sse(reply)
        return 200, _completion({"content": reply}, "stop")


def _completion(message: dict[str, Any], finish: str) -> str:
    return json.dumps({
        "id": "chatcmpl-faulty", "object": "chat.completion", "created": int(time.time()),
        "model": "faulty-server",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    })  # fmt: skip


def _sse(text: str) -> list[str]:
    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        return json.dumps({
            "id": "chatcmpl-faulty", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": "faulty-server",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })  # fmt: skip

    words = [w + " " for w in text.split(" ")]
    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": w}, None) for w in words] + [chunk({}, "stop")]
    return [*events, "[DONE]"]


def _handler(server: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length", 0))
            status, payload = server.answer(json.loads(self.rfile.read(length) or b"{}"))
            if isinstance(payload, list):
                self._stream(payload)
                return
            data = payload.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 500:
                self.send_header("retry-after-ms", "1")
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, events: list[str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in events:
                self.wfile.write(f"data: {event}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean (the counts say what happened)."""

    return Handler
