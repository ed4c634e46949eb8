"""llama.cpp logits processors for `agent.llama.ChatLlamaCpp`: what a call may sample, and what
it would have sampled.

- `OpenerBan` keeps a reply from opening with a banned phrase.
- `FirstTokenLogprobs` records the log-probabilities of the first token's most likely
  candidates, in the shape OpenAI's chat API gives for `logprobs=True, top_logprobs=n`
  (`response_metadata["logprobs"]`), so a caller reads one shape from either back end. Only the
  first token is recorded: enough for a one-token answer, such as a rating (`agent.trait_llm`).
- `text_logprob` scores a text rather than sampling one: the log-probability the model gives
  each of its tokens after what precedes it, summed (`ChatLlamaCpp.text_logprob`).

Both see the raw logits of each step before any sampling (llama-cpp-python runs them first in
its sampler chain, indexed by token id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logsumexp

if TYPE_CHECKING:
    from llama_cpp import Llama

TOP_K = 40  # llama-cpp-python's default: sampling only ever picks among these
OPENING_CHARS = 48  # how much of the reply the opener ban watches
MAX_TOP_LOGPROBS = 20  # OpenAI's limit too


class OpenerBan:
    """A logits processor that keeps a reply from opening with a banned phrase.

    While the reply is shorter than `OPENING_CHARS`, every candidate among the sampler's top
    `TOP_K` that would make the reply start with a banned phrase (lower case, after spaces) is
    ruled out, so the model says something else instead; nothing is rewritten afterwards."""

    def __init__(self, llama: Llama, phrases: tuple[str, ...]) -> None:
        self.llama, self.phrases = llama, tuple(p.lower() for p in phrases)
        self.start: int | None = None
        self.pieces: dict[int, str] = {}
        self.done = False  # past the opening: nothing more to watch

    def piece(self, token: int) -> str:
        if token not in self.pieces:
            raw = self.llama.detokenize([token])
            self.pieces[token] = raw.decode("utf-8", "ignore").replace("’", "'").lower()
        return self.pieces[token]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.done:
            return scores
        if self.start is None:
            self.start = len(input_ids)
        said = "".join(self.piece(int(t)) for t in input_ids[self.start :])
        if len(said) > OPENING_CHARS:
            self.done = True
            return scores
        for token in np.argpartition(scores, -TOP_K)[-TOP_K:]:
            text = (said + self.piece(int(token))).lstrip()
            if text and any(text.startswith(p) for p in self.phrases):
                scores[token] = -np.inf
        return scores


class FirstTokenLogprobs:
    """A logits processor that records the first step's `top` most likely tokens with their
    log-probabilities (before temperature or any other processor's change), and changes
    nothing."""

    def __init__(self, llama: Llama, top: int) -> None:
        if not 1 <= top <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be 1..{MAX_TOP_LOGPROBS}, got {top}")
        self.llama, self.top = llama, top
        self.found: list[dict[str, Any]] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.found is None:
            logits = np.asarray(scores, dtype=np.float64)
            logprobs = logits - logsumexp(logits)
            best = np.argsort(-logprobs)[: self.top]
            self.found = [self.entry(int(token), float(logprobs[token])) for token in best]
        return scores

    def entry(self, token: int, logprob: float) -> dict[str, Any]:
        raw = self.llama.detokenize([token])
        return {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}

    def logprobs(self) -> dict[str, Any]:
        """OpenAI's shape: {"content": [first token with its "top_logprobs"]}; empty content
        when no token was sampled."""
        if not self.found:
            return {"content": []}
        return {"content": [{**self.found[0], "top_logprobs": self.found}]}


def text_logprob(llama: Llama, last: int, text: list[int]) -> float:
    """The summed log-probability of the tokens `text` right after the context's evaluated
    tokens and `last` (the context's next token, not yet evaluated): one llama.cpp batch that
    keeps the logits of every position. The context then holds `last` and `text`, as if
    evaluated by `Llama.eval` (its record of tokens follows, so a later call reuses them).
    `text` must fit one batch (`Llama.n_batch`, less one) and must not be empty. llama.cpp
    keeps an output buffer of a vocabulary-sized row per scored token (257 tokens of Qwen's
    151,936: 156 MB) for the context afterwards."""
    batch, start = [last, *text], llama.n_tokens
    llama._ctx.kv_cache_seq_rm(-1, start, -1)
    llama._batch.set_batch(batch=batch, n_past=start, logits_all=True)
    llama._ctx.decode(llama._batch)
    vocabulary = llama.n_vocab()
    found = llama._ctx.get_logits()  # type: ignore[no-untyped-call]
    logits = np.ctypeslib.as_array(found, shape=(len(batch) * vocabulary,))
    rows = logits.reshape(len(batch), vocabulary)[:-1]  # a view of llama.cpp's own buffer
    chosen = rows[np.arange(len(text)), text].astype(np.float64)
    total = float(np.sum(chosen - logsumexp(rows, axis=1).astype(np.float64)))
    llama.input_ids[start : start + len(batch)] = batch
    llama.n_tokens = start + len(batch)
    return total
