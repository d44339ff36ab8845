"""PNG plots of a run (matplotlib, headless Agg backend).

- :func:`plot_test_scatter`: predicted vs measured on the test split, one panel per target, with
  Pearson r, n and the identity line.
- :func:`plot_learning_curves`: training loss per step, train/val loss and Pearson per epoch, read from
  the CSV logs of every start and resume of the run.
- :func:`plot_aggregation_weights`: per-layer mean graph-aggregation weights (edge types or
  edge-type pairs) as a heatmap, for aggregators that have weights.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

__all__ = ["plot_aggregation_weights", "plot_learning_curves", "plot_test_scatter", "read_csv_logs"]

#: ``on_figure(name, figure)``: called with each finished figure before it is closed (e.g. to send it
#: to the experiment loggers); ``name`` is the PNG's stem
FigureHook = Callable[[str, Figure], None]


def _plt() -> ModuleType:
    """pyplot, on the headless Agg backend (chosen when a plot is drawn, as before)."""
    matplotlib.use("Agg", force=True)
    return plt


def _save(fig: Figure, path: str | Path, on_figure: FigureHook | None = None) -> Path:
    """Lay out, write as PNG (folder created), hand to ``on_figure``, close the figure; returns the path."""
    out = Path(path)
    try:
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        if on_figure is not None:
            on_figure(out.stem, fig)
    finally:
        _plt().close(fig)
    return out


def _pearson(x: Tensor, y: Tensor) -> float:
    if x.numel() < 2:
        return float("nan")
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    den = float(x.norm() * y.norm())
    return float((x * y).sum()) / den if den > 0 else float("nan")


def plot_test_scatter(
    pred: Tensor, target: Tensor, target_names: Sequence[str], path: str | Path, on_figure: FigureHook | None = None
) -> Path:
    """Scatter of predicted (y) vs measured (x) test values per target; titles carry Pearson r and n
    (r is "n/a" below two samples)."""
    plt = _plt()
    t = len(target_names)
    pred = pred.reshape(-1, t).double()  # one sample may arrive as a [T] vector
    target = target.reshape(-1, t).double()
    fig, axes = plt.subplots(1, t, figsize=(4.6 * t, 4.4), squeeze=False)
    for j, name in enumerate(target_names):
        ax = axes[0, j]
        ok = ~torch.isnan(target[:, j])
        x, y = target[ok, j], pred[ok, j]
        r = _pearson(x, y)
        ax.scatter(x.numpy(), y.numpy(), s=6, alpha=0.45, linewidths=0, color="tab:blue")
        if x.numel():
            lo = float(min(x.min(), y.min()))
            hi = float(max(x.max(), y.max()))
            if hi <= lo:  # one sample (or all equal): a visible diagonal around it
                lo, hi = lo - 0.5, hi + 0.5
            ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", label="y = x")
        ax.set_xlabel(f"measured {name}")
        ax.set_ylabel(f"predicted {name}")
        rtxt = f"{r:.3f}" if math.isfinite(r) else "n/a"
        ax.set_title(f"test: r = {rtxt} (n = {int(x.numel())})")
        ax.grid(alpha=0.3)
    return _save(fig, path, on_figure)


def read_csv_logs(log_dir: str | Path) -> list[dict[str, float]]:
    """Rows of every ``metrics.csv`` under ``log_dir`` (versions in order), values as floats."""
    files = sorted(
        Path(log_dir).glob("**/metrics.csv"),
        key=lambda p: (int(p.parent.name.split("_")[-1]) if p.parent.name.split("_")[-1].isdigit() else 0, str(p)),
    )
    rows: list[dict[str, float]] = []
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                vals = {}
                for k, v in row.items():
                    if v not in (None, ""):
                        try:
                            vals[k] = float(v)
                        except ValueError:
                            continue
                rows.append(vals)
    return rows


def _series(rows: list[dict[str, float]], key: str, by: str) -> tuple[list[float], list[float]]:
    pts: dict[float, float] = {}
    for r in rows:
        if key in r and by in r and math.isfinite(r[key]):
            pts[r[by]] = r[key]  # a resumed epoch logged twice keeps its last value
    xs = sorted(pts)
    return xs, [pts[x] for x in xs]


def plot_learning_curves(
    log_dir: str | Path, path: str | Path, monitor: str | None = None, on_figure: FigureHook | None = None
) -> Path | None:
    """Loss per step, loss and Pearson per epoch (train and val). None when the logs are empty."""
    rows = read_csv_logs(log_dir)
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    xs, ys = _series(rows, "train/loss", "step")
    axes[0].plot(xs, ys, lw=0.8, color="tab:blue", marker="." if len(xs) < 30 else None)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss (normalised targets)")
    axes[0].set_title("loss per step")
    for key, label, color in (("train/loss_epoch", "train", "tab:blue"), ("val/loss", "val", "tab:orange")):
        xs, ys = _series(rows, key, "epoch")
        if xs:
            axes[1].plot([x + 1 for x in xs], ys, marker="o", ms=3, label=label, color=color)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("loss")
    axes[1].set_title("loss per epoch")
    axes[1].legend()
    keys = [("train/pearson", "train"), ("val/pearson", "val")]
    if monitor and monitor not in dict(keys) and monitor.split("/")[-1] != "loss":
        keys.append((monitor, monitor))
    for key, label in keys:
        xs, ys = _series(rows, key, "epoch")
        if xs:
            axes[2].plot([x + 1 for x in xs], ys, marker="o", ms=3, label=label)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("Pearson r (original units)")
    axes[2].set_title("correlation per epoch")
    axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path, on_figure)


def plot_aggregation_weights(
    weights: Tensor, labels: Sequence[str] | None, path: str | Path, on_figure: FigureHook | None = None
) -> Path:
    """Heatmap of ``[L, W]`` mean aggregation weights (rows: layers, columns: edge types / pairs)."""
    plt = _plt()
    w = weights.detach().double().cpu()
    if w.dim() == 1:
        w = w.unsqueeze(0)
    n_layers, n_cols = w.shape
    labels = list(labels) if labels and len(labels) == n_cols else [f"w{i}" for i in range(n_cols)]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * n_cols + 2.5), 0.6 * n_layers + 2.2))
    im = ax.imshow(w.numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(n_layers))
    ax.set_yticklabels([f"layer {i}" for i in range(n_layers)])
    if n_cols * n_layers <= 200:
        for i in range(n_layers):
            for j in range(n_cols):
                ax.text(j, i, f"{float(w[i, j]):.2f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(im, ax=ax, label="mean weight (test samples, kept genes)")
    ax.set_title("graph aggregation weights per layer")
    return _save(fig, path, on_figure)
