"""The report of ``cellgi train``: what a finished run or seed series is rendered as.

:func:`report` turns the one value :func:`cellgi.experiments.series.train_series` returns into rich
renderables (the summary table, one verdict line per baseline, the files written); ``cellgi train`` and
:func:`cellgi.train` print them. Nothing here trains, reads or writes a file.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import RenderableType
from rich.table import Table

from cellgi.metrics import METRICS
from cellgi.runfolder.runs import METRICS_FILE, MODEL_FILE, PLOTS_DIR, REPLICATES_FILE

if TYPE_CHECKING:  # the result type is defined one module over, which imports this one
    from cellgi.experiments.series import SeriesResult

__all__ = ["baseline_verdicts", "report", "series_table", "summary_table"]


def summary_table(metrics: dict[str, float], target_names: list[str], title: str = "cellgi run") -> Table:
    """Rich table: rows = the table metrics of :data:`~cellgi.metrics.METRICS`, columns = model
    train/val/test and each baseline's test."""
    baselines = sorted({k.split(".")[0] for k in metrics if k.startswith("baseline_") and ".test." in k})
    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    for col in ["train", "val", "test"] + [f"{b.replace('baseline_', '')} test" for b in baselines]:
        table.add_column(col, justify="right")
    first = ["pearson", "spearman"]
    names = first + [e.name for e in METRICS if e.table and e.name not in first]

    def fmt(key: str) -> str:
        v = metrics.get(key)
        if v is None or v != v:
            return "-"
        return f"{v:.4f}"

    for name in names:
        if not any(f"{s}.{name}" in metrics for s in ("train", "val", "test")):
            continue
        label = name
        row = [fmt(f"{s}.{name}") for s in ("train", "val", "test")] + [fmt(f"{b}.test.{name}") for b in baselines]
        if name == "pearson":
            label = "[bold]pearson[/bold]"
            row = [f"[bold]{c}[/bold]" for c in row]
        elif name.startswith("prevalence_"):  # beside its AUPRC: the AUPRC of a random predictor
            label = f"{name} (chance auprc)"
        table.add_row(label, *row)
    if "test.n" in metrics:
        table.caption = (
            f"targets: {', '.join(target_names)}; test samples: {int(metrics['test.n'])}; "
            "metrics in original units; baselines: training.baselines (additive = per-gene ridge, "
            "features = set-feature trees)"
        )
    return table


def series_table(summary: dict[str, dict[str, Any]], seeds: Sequence[int], title: str,
                 ensemble: dict[str, float] | None = None) -> Table:
    """Rich table: metric | mean ± sd | n (every metric of metrics.json) | the seed ensemble's value."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(f"mean ± sd over seeds {','.join(map(str, seeds))}", justify="right")
    table.add_column("n", justify="right")
    if ensemble:
        table.add_column("ensemble (mean prediction)", justify="right")
    for k, v in summary.items():
        if v["mean"] is None:
            cell = "-"
        elif v["sd"] is None:
            cell = f"{v['mean']:.4f}"
        else:
            cell = f"{v['mean']:.4f} ± {v['sd']:.4f}"
        row = [k, cell, str(v["n"])]
        if ensemble:
            e = ensemble.get(k)
            row.append("-" if e is None or not math.isfinite(e) else f"{e:.4f}")
        table.add_row(*row)
    return table


def baseline_verdicts(metrics: dict[str, float], label: str = "test pearson") -> list[str]:
    """One line per baseline the metrics hold: does ``test.pearson`` beat ``baseline_<kind>.test.pearson``.

    The values are compared as printed (4 decimals): equal there is ``ties``, never ``beats``."""
    lines = []
    kinds = sorted({k.split(".")[0].removeprefix("baseline_") for k in metrics
                    if k.startswith("baseline_") and k.endswith(".test.pearson")})
    for kind in kinds:
        ref = metrics.get(f"baseline_{kind}.test.pearson")
        value = metrics.get("test.pearson")
        if value is None or ref is None:
            continue
        shown, shown_ref = f"{value:.4f}", f"{ref:.4f}"
        if float(shown) == float(shown_ref):  # "-0.0000" ties "0.0000"
            lines.append(f"{label} {shown} ties the {kind} baseline ({shown_ref})")
            continue
        diff = float(shown) - float(shown_ref)
        verdict = "beats" if diff > 0 else "does not beat"
        lines.append(f"{label} {shown} {verdict} the {kind} baseline ({shown_ref}, {diff:+.4f})")
    return lines


def report(result: SeriesResult) -> list[RenderableType]:
    """What ``cellgi train`` prints at the end: nothing for a run that was complete before (its resume
    said so) or on a non-first process; else the summary table, the baseline verdicts (also of the stack)
    and the files written."""
    if not result.primary or result.complete_before:
        return []
    out: list[RenderableType] = []
    if not result.series:
        run = result.run
        metrics = run.metrics
        title = f"{result.spec_name}: best epoch {(run.best_epoch or 0) + 1} of {run.epochs}"
        if run.stopped_early:
            title += " (early stopping)"
        out.append(summary_table(metrics, run.target_names, title=title))
        out += baseline_verdicts(metrics)
        if "stack.test.pearson" in metrics:
            out += baseline_verdicts({**metrics, "test.pearson": metrics["stack.test.pearson"]}, "stacked test pearson")
        rdir = result.run_dir
        out.append(f"wrote {rdir / METRICS_FILE}, {rdir / MODEL_FILE}, plots in {rdir / PLOTS_DIR}")
        return out
    seeds, summary = result.seeds, result.summary
    out.append(series_table(summary, seeds, f"{result.spec_name}: {len(seeds)} replicates", result.ensemble))
    if result.ensemble:
        # the baselines are the same for every seed (same split): their mean is their value
        merged = {k: v["mean"] for k, v in summary.items() if k.startswith("baseline_") and v["mean"] is not None}
        merged["test.pearson"] = result.ensemble.get("test.pearson")
        out += baseline_verdicts(merged, "ensemble test pearson")
        if (result.stack or {}).get("stack.test.pearson") is not None:
            merged["test.pearson"] = result.stack["stack.test.pearson"]  # type: ignore[index]
            out += baseline_verdicts(merged, "stacked test pearson")
    out.append(f"wrote {result.run_dir / REPLICATES_FILE}")
    return out
