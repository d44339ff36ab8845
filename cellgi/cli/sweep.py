"""``cellgi sweep SPEC``: an Optuna study over spec values (:mod:`cellgi.experiments.sweep`), rendered."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from cellgi.cli._common import add_spec_command
from cellgi.examples import resolve_spec_path

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  cellgi sweep configs/quickstart.yaml                        (the spec's sweep block)
  cellgi sweep configs/quickstart.yaml --space space.yaml --n-trials 30
  cellgi sweep configs/quickstart.yaml training.max_epochs=3  (overrides apply to every trial)
  cellgi sweep configs/quickstart.yaml --storage postgresql://user@host/db --study-name lr-search

The search space (sweep: {metric, direction, n_trials, params: {KEY.PATH: {type: float|int|categorical,
...}}}) is described in docs/sweeps.md. The study is kept in Optuna's storage (default
sqlite:///RUNS_ROOT/<name>/study.db): run the same command again to resume it, or start it in
several processes at once to work on it in parallel. Outputs: RUNS_ROOT/<name>/sweeps/<study>/
(a run folder per trial, trials.csv, best.yaml, plots/).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_spec_command(
        sub, "sweep", overrides_help="overrides applied to every trial",
        help="hyperparameter search with Optuna (resumable, parallel)",
        description="Run or resume an Optuna study: each trial trains SPEC with sampled overrides; "
        "pruning from the per-epoch metric; a table, the best spec and Optuna's plots at the end.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--space", metavar="FILE", help="search space YAML (instead of the spec's sweep block)")
    p.add_argument("--n-trials", type=int, metavar="N", help="finished trials the study should hold (sweep.n_trials)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL (default sqlite:///RUNS_ROOT/<name>/study.db)")
    p.add_argument("--study-name", metavar="NAME", help="study name (default: the spec's name)")
    p.add_argument("--runs-root", metavar="DIR", default="runs", help="parent of the sweep folder (default: runs)")
    p.add_argument("--no-plots", action="store_true", help="do not save Optuna's plots")
    p.set_defaults(func=run)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the study holds its trials; 2 for bad input; 1 when a trial fails."""
    from rich.console import Console
    from rich.table import Table

    from cellgi.experiments.sweep import run_sweep
    from cellgi.training.runner import TrainingInterrupted

    con = Console(soft_wrap=True)
    if args.n_trials is not None and args.n_trials < 1:
        print("error: --n-trials must be at least 1", file=sys.stderr)
        return 2
    try:
        path = resolve_spec_path(args.spec)
    except (OSError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def on_trial(t: Any) -> None:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        con.print(f"trial {t.number}: {t.state} {_fmt(t.value)}  {params}")

    try:
        res = run_sweep(path, overrides=args.overrides, space=args.space, n_trials=args.n_trials,
                        storage=args.storage, study_name=args.study_name, runs_root=args.runs_root,
                        on_trial=on_trial, plots=not args.no_plots)
    # a SpecError or SweepConfigError reaches cellgi.cli.main, which prints it and exits 2
    except TrainingInterrupted as exc:
        print(f"{exc}: the trial is recorded as failed; run the same command again to resume the study",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume the study", file=sys.stderr)
        return 130
    keys = sorted({k for t in res.trials for k in t.params})
    table = Table(title=f"study {res.study_name}: {res.metric} ({res.direction}), {len(res.trials)} trials, "
                  f"{res.new_trials} new")
    for c in ("trial", "state", res.metric, *keys, "seconds"):
        table.add_column(c, justify="left" if c == "state" else "right")
    for t in res.trials:
        style = "bold green" if res.best is not None and t.number == res.best.number else None
        table.add_row(str(t.number), t.state, _fmt(t.value), *[_fmt(t.params.get(k)) for k in keys],
                      _fmt(t.seconds), style=style)
    con.print(table)
    if res.best is not None:
        con.print(f"best: trial {res.best.number}, {res.metric} = {_fmt(res.best.value)}; spec: {res.best_spec}")
    con.print(f"study: {res.storage} (name {res.study_name}); table: {res.table}")
    if res.plots:
        con.print(f"plots: {', '.join(p.name for p in res.plots)} in {res.plots[0].parent}")
    for stem, why in res.plots_skipped.items():
        con.print(f"[yellow]plot {stem} not made[/yellow]: {why}")
    return 0
