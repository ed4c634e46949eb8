"""PNG plots shared by the eval reports: judge against humans, and confusion matrices.

Each draws on its own `Figure` with an Agg canvas (no pyplot, so no global state and no
display), saves a PNG to `path` and returns the path. matplotlib is imported when a plot is
drawn, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def scatter_png(
    judge: Sequence[float], human: Sequence[float], path: Path, title: str, *, seed: int = 0
) -> Path:
    """A jittered scatter of judge against human scores, the diagonal of agreement, and the
    judge's mean at each human level."""
    import numpy as np

    judged, truth = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    rng = np.random.default_rng(seed)
    figure = new_figure((4.4, 4.0))
    ax = figure.add_subplot()
    if len(truth):
        ax.scatter(truth + rng.uniform(-0.15, 0.15, len(truth)),
                   judged + rng.uniform(-0.15, 0.15, len(judged)), s=12, alpha=0.4)  # fmt: skip
        values = np.concatenate([judged, truth])
        low, high = float(values.min()), float(values.max())
        ax.plot([low - 0.4, high + 0.4], [low - 0.4, high + 0.4], "--", color="grey", lw=1,
                label="judge = human")  # fmt: skip
        levels = sorted(set(truth.tolist()))
        means = [float(judged[truth == level].mean()) for level in levels]
        ax.plot(levels, means, "D-", color="C3", label="judge mean per human level")
        if np.all(values == np.round(values)):
            ax.set_xticks(range(int(low), int(high) + 1))
            ax.set_yticks(range(int(low), int(high) + 1))
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="human", ylabel="judge")
    ax.set_title(title, fontsize=10)
    return save(figure, path)


def confusion_png(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], path: Path, title: str, *,
    xlabel: str = "", ylabel: str = "",
) -> Path:  # fmt: skip
    """A heatmap of a square confusion matrix: colour is the share of the row (so rare rows
    show), the number is the count."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float).reshape(len(labels), len(labels))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 2.6 + 0.45 * len(labels)
    figure = new_figure((size + 0.8, size))
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ticks, long = range(len(labels)), max(map(len, labels), default=0) > 3
    ax.set_xticks(ticks, labels, rotation=45 if long else 0, ha="right" if long else "center",
                  fontsize=8)  # fmt: skip
    ax.set_yticks(ticks, labels, fontsize=8)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, f"{count:g}", ha="center", va="center", fontsize=8,
                color="white" if shares[row, col] > 0.6 else "black")  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=10)
    return save(figure, path)


def new_figure(size: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas, at the reports' resolution."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Lay the figure out tightly and write it to `path` as a PNG."""
    figure.tight_layout()
    figure.savefig(path, format="png", bbox_inches="tight")  # long strategy names fit
    return Path(path)
