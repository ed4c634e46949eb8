"""Train the learnt half of the analogy detector: does a message struggle to understand someone?

    python -m eval.train_analogy_detector                 # writes agent/analogy_head.npz
    python -m eval.train_analogy_detector --budget 0.001

The sentence patterns of `agent.understanding` read 22 of 22 in-sample cases and 3 of 20 cases
written afterwards by someone else: people say it in too many ways ("Help me understand why
she's this furious", "What is that about?"). This head is a logistic regression over the
message's MiniLM vector and seven 0/1 sentence cues (`agent.understanding.cue_features`: a
puzzlement, a question, someone named, someone feeling, their own feeling), read beside the
patterns. Positives: the messages of the cases that
struggle to understand someone (`eval/data/analogy_cases.jsonl` and
`analogy_cases_fresh.jsonl`, groups "positive" and "struggle_no_memory") and the "struggle"
messages of `eval/data/analogy_detector_train.jsonl` (330, three helpers' voices); negatives:
their other cases and messages (venting, understanding already, questions about the past,
practical questions, small talk, puzzling over one's own feelings) and real messages
(GoEmotions train comments, ESConv half "a" seeker turns), which together weigh as much as all
cases. The threshold is a false-alarm budget on the real messages, out of
fold: at most `budget` of them may read as a struggle. GoEmotions dev, ESConv half "b",
EPITOME and `analogy_cases_fresh2.jsonl` / `_fresh3.jsonl` are never used here
(`eval.bench_analogy` measures on them).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from agent.understanding import HEAD_PATH, cue_features
from eval.embed_cache import embed_many
from eval.errors import EvalError
from eval.jsonl import read_records
from eval.real_messages import esconv_seeker_turns, goemotions
from eval.train_safety import threshold_at

DATA = Path(__file__).resolve().parent / "data"
CASE_FILES = (DATA / "analogy_cases.jsonl", DATA / "analogy_cases_fresh.jsonl")
MESSAGES = DATA / "analogy_detector_train.jsonl"
STRUGGLES = ("positive", "struggle_no_memory")
C = 4.0
FOLDS = 5
BUDGET = 0.002  # share of the real training messages that may read as a struggle, out of fold


class TrainingFileError(EvalError, ValueError):
    """The training messages file is missing or a line of it is not valid."""


class TrainingMessage(BaseModel):
    """One written message: does it struggle to understand someone else's feelings?"""

    text: str = Field(min_length=1)
    label: Literal["struggle", "other"]
    voice: str = ""
    kind: str = ""


def load_messages(path: Path = MESSAGES) -> list[TrainingMessage]:
    """The written training messages (a first line without a text says what they are)."""
    if not path.is_file():
        raise TrainingFileError(f"No training messages at {path}.")
    return read_records(  # a line with neither a text nor a label is the header
        path, TrainingMessage, TrainingFileError, "message", lambda r: "text" in r or "label" in r
    )


def training_set() -> tuple[list[str], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Texts, whether each struggles to understand someone, and whether it is a real message."""
    from eval.bench_analogy import load_cases

    cases = [case for path in CASE_FILES for case in load_cases(path)]
    written = load_messages()
    real = [m.text for m in goemotions("train")]
    real += [m.text for m in esconv_seeker_turns() if m.source == "esconv-a"]
    texts = [case["message"] for case in cases] + [m.text for m in written] + real
    labels = np.array(
        [case["group"] in STRUGGLES for case in cases]
        + [m.label == "struggle" for m in written]
        + [False] * len(real)
    )
    is_real = np.array([False] * (len(cases) + len(written)) + [True] * len(real))
    return texts, labels, is_real


def features(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """What the head reads: each message's MiniLM vector and its cue flags."""
    flags = np.stack([cue_features(text) for text in texts])
    return np.hstack([embed_many(texts, "analogy-detector"), flags]).astype(np.float32)


def weights(is_real: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Each case weighs 1; the real messages together weigh as much as all cases."""
    n_cases = int((~is_real).sum())
    return np.where(is_real, n_cases / max(1, int(is_real.sum())), 1.0)


def out_of_fold(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.bool_], w: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """P(struggle) of every text from a model that never saw it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y):
        model = LogisticRegression(C=C, max_iter=3000).fit(x[train], y[train], w[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return scores


def train(budget: float, out: Path = HEAD_PATH) -> None:
    """Fit, set the threshold on the real messages out of fold, print recall, write the head."""
    from sklearn.linear_model import LogisticRegression

    texts, y, is_real = training_set()
    x = features(texts)
    w = weights(is_real)
    scores = out_of_fold(x, y, w)
    real = scores[is_real]
    threshold = threshold_at(real, budget)
    cases = ~is_real
    n_cases, n_real = int(cases.sum()), int(is_real.sum())
    print(f"{n_cases} cases ({int(y.sum())} struggles), {n_real} real messages")
    print(f"threshold {threshold:.3f}: out of fold, {np.mean(real >= threshold):.3%} of real "
          f"messages fire; struggles read {np.mean(scores[cases & y] >= threshold):.2f}, "
          f"other cases {np.mean(scores[cases & ~y] >= threshold):.2f}")  # fmt: skip
    model = LogisticRegression(C=C, max_iter=3000).fit(x, y, w)
    np.savez_compressed(
        out,
        weights=model.coef_[0].astype(np.float32),
        bias=np.float32(model.intercept_[0]),
        threshold=np.float32(threshold),
    )
    print(f"wrote {out}")


def main(argv: Sequence[str] | None = None) -> None:
    """Train the head."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--budget", type=float, default=BUDGET,
                        help="share of real messages that may read as a struggle")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HEAD_PATH, help="where to write the head")
    args = parser.parse_args(argv)
    if not 0 < args.budget < 1:
        parser.error("--budget must be between 0 and 1")
    try:
        train(args.budget, args.out)
    except TrainingFileError as exc:
        parser.exit(2, f"train_analogy_detector: {exc}\n")


if __name__ == "__main__":
    main()
