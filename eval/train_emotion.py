"""Train the emotion plug-in's head on frozen all-MiniLM-L6-v2 embeddings of GoEmotions.

Data: GoEmotions — Demszky, Movshovitz-Attias, Ko, Cowen, Nemade and Ravi, "GoEmotions: A Dataset
of Fine-Grained Emotions", ACL 2020 (Apache-2.0): 28 labels (27 emotions + neutral). Only the
train and dev splits are used; the test split is held out.

Method (all choices made on train, dev only measures):
1. Embed every text once with the frozen encoder (`eval.embed_cache`, keyed by each text, shared
   with the crisis screen's training), so re-runs take seconds.
2. Baseline: a multinomial logistic-regression probe on each item's first label.
3. Head: a one-hidden-layer MLP (ReLU, dropout) trained with a soft-target cross-entropy (the gold
   labels of an item share its target mass), in 5 folds over train; each fold early-stops on its
   held-out part. The shipped head averages the 5 folds' logits (one wider MLP).
4. The folds' out-of-fold (OOF) predictions cover all of train. On them we choose the strength
   tau of a logit adjustment by the label prior (Menon et al., ICLR 2021: logits - tau*log prior,
   which lets rare emotions win the top-1 slot) maximising mean(top-1 macro-F1, accuracy), and we
   tune one multi-label threshold per label (max F1 per label). Dev never tunes anything.

Metrics on dev: (a) top-1: the arg-max label counts as correct when it is among the item's gold
labels; macro-F1 over the 28 labels after replacing the gold by the prediction when it is one of
the gold labels (else by the first gold label), and accuracy. (b) multi-label macro-F1 with the
per-label thresholds (comparable in kind to the paper's 0.46 for fine-tuned BERT-base on test).
A column with thresholds tuned on dev itself is printed as an optimistic reference only.

Run from the repository root: `python -m eval.train_emotion [--data-dir DIR] [--out PATH]`.

Errors: `TrainingError` is the base; `TrainingDataError` means the data is missing or malformed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.emotion import HEAD_PATH, EmotionHead
from eval.embed_cache import embed_many
from eval.errors import EvalError

Matrix = npt.NDArray[np.float32]
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"
ENCODER = "all-MiniLM-L6-v2"
FOLDS, HIDDEN, DROPOUT, EPOCHS, BATCH, SEED = 5, 512, 0.3, 30, 256, 0
TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)
console = Console(width=max(Console().width, 100))


class TrainingError(EvalError, RuntimeError):
    """Base of the training script's errors."""


class TrainingDataError(TrainingError):
    """The GoEmotions files are missing or malformed."""


@dataclass(frozen=True)
class Split:
    """One GoEmotions split: texts, gold label ids and the file's sha256."""

    name: str
    texts: list[str]
    gold: list[list[int]]
    sha256: str

    def targets(self, n_labels: int) -> Matrix:
        """Return the multi-hot label matrix."""
        out = np.zeros((len(self.gold), n_labels), dtype=np.float32)
        for row, ids in enumerate(self.gold):
            out[row, ids] = 1.0
        return out


def read_labels(data_dir: Path) -> list[str]:
    """Read the 28 label names."""
    path = data_dir / "labels.txt"
    if not path.is_file():
        raise TrainingDataError(f"{path} is missing: pass --data-dir with the GoEmotions files.")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_split(data_dir: Path, name: str, n_labels: int) -> Split:
    """Read `<name>.tsv` (text, comma-separated label ids, comment id; no header)."""
    path = data_dir / f"{name}.tsv"
    if not path.is_file():
        raise TrainingDataError(f"{path} is missing: pass --data-dir with the GoEmotions files.")
    raw = path.read_bytes()
    texts: list[str] = []
    gold: list[list[int]] = []
    # Not splitlines(): it would also break rows at separators such as U+2028 inside a comment.
    for number, line in enumerate(raw.decode("utf-8").rstrip("\n").split("\n"), start=1):
        fields = line.split("\t")
        try:
            ids = [int(part) for part in fields[1].split(",")]
        except (IndexError, ValueError) as exc:
            raise TrainingDataError(f"{path}:{number}: expected text<TAB>ids<TAB>id") from exc
        if len(fields) != 3 or not all(0 <= i < n_labels for i in ids):
            raise TrainingDataError(f"{path}:{number}: bad columns or label id out of range")
        texts.append(fields[0])
        gold.append(ids)
    return Split(name, texts, gold, hashlib.sha256(raw).hexdigest())


def top1_scores(gold: Sequence[Sequence[int]], probs: Matrix) -> tuple[float, float]:
    """Return (macro-F1, accuracy) of the arg-max label, correct when among the gold labels."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(axis=1)
    truth = np.array([p if p in ids else ids[0] for p, ids in zip(pred, gold, strict=True)])
    macro = f1_score(truth, pred, labels=range(probs.shape[1]), average="macro", zero_division=0)
    return float(macro), float((truth == pred).mean())


def multilabel_f1(targets: Matrix, probs: Matrix, thresholds: Matrix) -> float:
    """Return the multi-label macro-F1 of `probs >= thresholds`."""
    from sklearn.metrics import f1_score

    return float(f1_score(targets, probs >= thresholds, average="macro", zero_division=0))


def tune_thresholds(targets: Matrix, probs: Matrix) -> Matrix:
    """Pick, per label, the grid threshold with the best F1 on these rows."""
    out = np.zeros(targets.shape[1], dtype=np.float32)
    for label in range(targets.shape[1]):
        predicted = probs[:, label, None] >= GRID[None, :]
        truth = targets[:, label, None] > 0.5
        tp = (predicted & truth).sum(axis=0)
        f1 = 2 * tp / np.maximum(predicted.sum(axis=0) + truth.sum(), 1)
        out[label] = GRID[int(np.argmax(f1))]
    return out


def softmax(logits: Matrix) -> Matrix:
    """Return row-wise softmax probabilities."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs: Matrix = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return probs


def train_probe(x: Matrix, train: Split, n_labels: int) -> Callable[[Matrix], Matrix]:
    """Fit the baseline: multinomial logistic regression on each item's first label."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=1.0, max_iter=2000).fit(x, [ids[0] for ids in train.gold])

    def predict(vectors: Matrix) -> Matrix:
        out = np.zeros((len(vectors), n_labels), dtype=np.float32)
        out[:, probe.classes_] = probe.predict_proba(vectors)
        return out

    return predict


def train_fold(x: Matrix, y: Matrix, held_x: Matrix, held_gold: list[list[int]], seed: int) -> Any:
    """Train one MLP with soft-target cross-entropy; keep the epoch best on the held-out part."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Dropout(DROPOUT),
        torch.nn.Linear(HIDDEN, y.shape[1]),
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    inputs, soft = torch.from_numpy(x), torch.from_numpy(y / y.sum(axis=1, keepdims=True))
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for _ in range(EPOCHS):
        net.train()
        for batch in torch.randperm(len(inputs)).split(BATCH):  # type: ignore[no-untyped-call]
            loss = -(torch.log_softmax(net(inputs[batch]), 1) * soft[batch]).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        schedule.step()
        score = top1_scores(held_gold, mlp_logits(net, held_x))[0]
        if score > best[0]:
            best = (score, {key: value.clone() for key, value in net.state_dict().items()})
    net.load_state_dict(best[1])
    return net.eval()


def mlp_logits(net: Any, x: Matrix) -> Matrix:
    """Return a torch MLP's logits as numpy."""
    import torch

    net.eval()
    with torch.no_grad():
        return np.asarray(net(torch.from_numpy(x)).numpy(), dtype=np.float32)


def cross_fit(x: Matrix, y: Matrix, train: Split) -> tuple[list[Any], Matrix]:
    """Train one MLP per fold; return the nets and the out-of-fold logits over all of train."""
    from sklearn.model_selection import KFold

    nets, oof = [], np.zeros_like(y)
    folds = KFold(FOLDS, shuffle=True, random_state=SEED).split(x)
    with Progress(console=console) as progress:
        task = progress.add_task(f"training {FOLDS} folds", total=FOLDS)
        for seed, (fit, held) in enumerate(folds):
            held_gold = [train.gold[i] for i in held]
            nets.append(train_fold(x[fit], y[fit], x[held], held_gold, SEED + seed))
            oof[held] = mlp_logits(nets[-1], x[held])
            progress.advance(task)
    return nets, oof


def choose_tau(oof: Matrix, train: Split, log_prior: Matrix) -> tuple[float, dict[str, float]]:
    """Pick the logit-adjustment strength maximising mean(top-1 macro-F1, accuracy) on OOF."""
    scores = {tau: top1_scores(train.gold, softmax(oof - tau * log_prior)) for tau in TAUS}
    best = max(TAUS, key=lambda tau: sum(scores[tau]))
    return best, {f"{tau:g}": round(sum(pair) / 2, 4) for tau, pair in scores.items()}


def ensemble_head(nets: list[Any], labels: list[str], shift: Matrix, thresholds: Matrix) -> Any:
    """Fold the nets into one MLP whose logits are the mean of theirs, minus `shift`."""
    first = [net[0] for net in nets]
    last = [net[3] for net in nets]
    w0 = np.concatenate([layer.weight.detach().numpy().T for layer in first], axis=1)
    b0 = np.concatenate([layer.bias.detach().numpy() for layer in first])
    w1 = np.concatenate([layer.weight.detach().numpy().T for layer in last], axis=0) / len(nets)
    b1 = np.mean([layer.bias.detach().numpy() for layer in last], axis=0) - shift
    as16 = [np.asarray(a, dtype=np.float16).astype(np.float32) for a in (w0, b0, w1, b1)]
    return EmotionHead(tuple(labels), (as16[0], as16[2]), (as16[1], as16[3]), thresholds, "softmax")


def evaluate(name: str, probs: Matrix, dev: Embedded, thresholds: Matrix) -> dict[str, Any]:
    """Score one head's dev probabilities on both metrics."""
    macro, accuracy = top1_scores(dev.split.gold, probs)
    dev_tuned = tune_thresholds(dev.y, probs)
    return {
        "head": name,
        "top1_macro_f1": round(macro, 4),
        "top1_accuracy": round(accuracy, 4),
        "multilabel_macro_f1": round(multilabel_f1(dev.y, probs, thresholds), 4),
        "multilabel_macro_f1_dev_tuned": round(multilabel_f1(dev.y, probs, dev_tuned), 4),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the dev results."""
    table = Table(title="GoEmotions dev (5,426 items, 28 labels)")
    for column in ("head", "top-1 macro-F1", "top-1 acc", "multi-label F1", "ML F1 (dev-tuned)*"):
        table.add_column(column, justify="left" if column == "head" else "right")
    for row in rows:
        values = [row[key] for key in list(row)[1:5]]
        table.add_row(row["head"], *(f"{value:.3f}" for value in values))
    console.print(table)
    console.print("* thresholds tuned on dev itself: optimistic, for reference only.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m eval.train_emotion", description=__doc__)
    default_dir = Path(os.environ.get("EMPATHOS_GOEMOTIONS_DIR", DEFAULT_DATA_DIR))
    parser.add_argument("--data-dir", type=Path, default=default_dir)
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    parser.add_argument("--cache-dir", type=Path, default=None)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Embedded:
    """A split with its embeddings and multi-hot targets."""

    split: Split
    x: Matrix
    y: Matrix


def load_embedded(args: argparse.Namespace) -> tuple[list[str], Embedded, Embedded]:
    """Read the labels and both splits, and embed them (cached)."""
    labels = read_labels(args.data_dir)
    embedded = []
    for name in ("train", "dev"):
        split = read_split(args.data_dir, name, len(labels))
        vectors = embed_many(split.texts, f"goemotions {name}", cache_dir=args.cache_dir)
        embedded.append(Embedded(split, vectors, split.targets(len(labels))))
    return labels, embedded[0], embedded[1]


def fit_and_compare(
    labels: list[str], train: Embedded, dev: Embedded, out: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit the probe and the MLP heads, write the shipped head, and score all on dev."""
    probe = train_probe(train.x, train.split, len(labels))
    # The linear probe barely overfits: its thresholds come from its own train predictions.
    probe_thresholds = tune_thresholds(train.y, probe(train.x))
    nets, oof = cross_fit(train.x, train.y, train.split)
    log_prior = np.log(train.y.sum(axis=0) / train.y.sum()).astype(np.float32)
    tau, tau_scores = choose_tau(oof, train.split, log_prior)
    plain_thresholds = tune_thresholds(train.y, softmax(oof))
    thresholds = tune_thresholds(train.y, softmax(oof - tau * log_prior))
    ensemble_head(nets, labels, tau * log_prior, thresholds).save(out)
    shipped = EmotionHead.load(out)
    plain = ensemble_head(nets, labels, np.zeros_like(log_prior), plain_thresholds)
    candidates = [
        ("LR probe (baseline)", probe(dev.x), probe_thresholds),
        ("MLP, 1 fold", softmax(mlp_logits(nets[0], dev.x)), plain_thresholds),
        (f"MLP, {FOLDS}-fold ens.", plain.probabilities(dev.x), plain_thresholds),
        (f"ens. + logit adj. {tau:g} (shipped)", shipped.probabilities(dev.x), thresholds),
    ]
    rows = [evaluate(name, probs, dev, cut) for name, probs, cut in candidates]
    extra = {"logit_adjustment_tau": tau, "tau_selection_oof": tau_scores}
    return rows, extra


def main(argv: Sequence[str] | None = None) -> None:
    """Embed, train, compare on dev, and write the head and its metadata."""
    import torch

    args, started = parse_args(argv), time.monotonic()
    labels, train, dev = load_embedded(args)
    console.print(f"embeddings ready after {time.monotonic() - started:.0f}s")
    torch.set_num_threads(1)  # small batches: 1 thread beats 2 on a loaded 2-core box
    rows, extra = fit_and_compare(labels, train, dev, args.out)
    print_table(rows)
    seconds = time.monotonic() - started
    write_metadata(args.out, labels, rows, extra, train.split, dev.split, seconds)
    console.print(f"wrote {args.out} and its .json metadata in {seconds:.0f}s total")


def write_metadata(
    out: Path,
    labels: list[str],
    rows: list[dict[str, Any]],
    extra: dict[str, Any],
    train: Split,
    dev: Split,
    seconds: float,
) -> None:
    """Write the JSON sidecar: labels, thresholds, dev metrics, provenance."""
    head = EmotionHead.load(out)
    metadata = {
        "encoder": ENCODER,
        "labels": labels,
        "thresholds": [round(float(t), 2) for t in head.thresholds],
        "thresholds_tuned_on": "train, out-of-fold predictions (dev untouched)",
        "head": {
            "kind": "mlp",
            "hidden": [HIDDEN * FOLDS],
            "output": head.output,
            "folds": FOLDS,
            "dropout": DROPOUT,
            "epochs": EPOCHS,
            **extra,
        },
        "dev": rows,
        "shipped": rows[-1],
        "data": {
            "citation": "Demszky et al., GoEmotions, ACL 2020",
            "train_sha256": train.sha256,
            "dev_sha256": dev.sha256,
            "train_rows": len(train.texts),
            "dev_rows": len(dev.texts),
        },
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds),
        "command": "python -m eval.train_emotion",
    }
    out.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
