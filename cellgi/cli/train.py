"""``cellgi train SPEC``: validate the spec, build data and model, train with Lightning, write a run folder.

``cellgi train --resume RUN_DIR`` continues an interrupted run from its last checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cellgi.cli._common import add_spec_command

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  cellgi train configs/quickstart.yaml
  cellgi train quickstart                         (a shipped example; see 'cellgi spec example')
  cellgi train configs/quickstart.yaml model.hidden_dim=64 training.max_epochs=5
  cellgi train configs/yeast_real.yaml --accelerator gpu --devices 2 --run-dir runs/yeast-try1
  cellgi train yeast_real data.root=/data/yeast --print-config
  cellgi train --resume runs/quickstart/20260101-120000
  cellgi train configs/quickstart.yaml --seeds 0,1,2       (replicates, summary with mean ± sd)
  cellgi train configs/quickstart.yaml model.hidden_dim=16,32 training.optimizer.lr=1e-3,3e-3 --multirun

Overrides (KEY.PATH=VALUE, any number, after SPEC) change the spec before it is validated; values are
YAML (8, 1e-3, true, null, [0, 1], {type: gate}); list items by index (data.graphs.0.path=...).

The run folder holds spec.yaml (with versions), splits, checkpoints/{last,best}.ckpt, model.pt,
metrics.json, logs/ (CSV, TensorBoard) and plots/. An existing run folder is never overwritten.
Distributed: set training.trainer (accelerator, devices, num_nodes, strategy); see docs/training.md.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_spec_command(
        sub, "train", spec_nargs="?", overrides_help="spec overrides, e.g. model.hidden_dim=128",
        spec_help="spec YAML or a shipped example name (optional with --resume: the run keeps its own spec)",
        help="train a model from a spec (or resume a run)",
        description="Validate SPEC (no data is read when it is invalid), build data and model from the "
        "registries, train with Lightning and write a run folder.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved spec (overrides applied, defaults filled in) as YAML and exit")
    p.add_argument("--accelerator", metavar="NAME", help="sets training.trainer.accelerator (cpu, gpu, auto, ...)")
    p.add_argument("--devices", metavar="N", help="sets training.trainer.devices (2, auto, '0,1', ...)")
    p.add_argument("--run-dir", metavar="DIR", help="run folder (default: RUNS_ROOT/<name>/<timestamp>); must not exist")
    p.add_argument("--runs-root", metavar="DIR", default="runs", help="parent of timestamped run folders (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoints/last.ckpt (or a "
                   "seed-replicate series where it stopped: finished seeds kept, the stopped one continued)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs and summary still printed)")
    p.add_argument("--seeds", metavar="LIST",
                   help="seed replicates (0,1,2 or 0-4): one run per seed under RUN_DIR/seed_<s>, and "
                   "RUN_DIR/replicates.json with mean ± sd of every metric (default: the spec's "
                   "training.seeds, if any)")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="comma-separated override values (key=a,b) expand to a grid: one run each under "
                   "RUNS_ROOT/<name>/multirun-<timestamp>/<job> (or RUN_DIR/<job>), a table at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success; 2 for bad input (spec, run folder, data, checkpoint); 1 when training fails."""
    from cellgi.cli.spec import load_spec_arg, missing_data_root, print_resolved, trainer_flags
    from cellgi.spec import SpecError

    overrides = [*args.overrides, *trainer_flags(args)]
    if args.resume is not None and args.spec is not None and "=" in args.spec and not Path(args.spec).exists():
        overrides.insert(0, args.spec)  # `cellgi train --resume RUN key=value`: no spec, only overrides
        args.spec = None
    if args.spec is None and args.resume is None:
        print("error: give a SPEC file (or a shipped example name), or --resume RUN_DIR", file=sys.stderr)
        return 2
    if args.resume is not None and overrides:
        given = " ".join(o if isinstance(o, str) else o.label for o in overrides)
        print(f"error: overrides ({given}) do not apply to --resume: a resumed run keeps its "
              "own spec (start a new run instead)", file=sys.stderr)
        return 2
    if getattr(args, "multirun", False):
        return _multirun(args, overrides)
    spec = None
    if args.spec is not None:
        try:
            spec = load_spec_arg(args.spec, overrides)  # validated before anything else happens
        except SpecError as exc:
            print(exc.render(), file=sys.stderr)
            return 2
        except (OSError, LookupError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.print_config:
            print_resolved(spec, args.spec, overrides)
            return 0
        hint = missing_data_root(args.spec, spec)
        if hint:
            print(f"error: {hint}", file=sys.stderr)
            return 2
    elif args.print_config:
        print("error: --print-config needs a SPEC", file=sys.stderr)
        return 2

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from cellgi.cli._common import stdout_may_close
    from cellgi.data.errors import DataError
    from cellgi.fileio import OutputError, check_writable
    from cellgi.nn.model import NonFiniteError
    from cellgi.runfolder.checkpoint import CheckpointError
    from rich.console import Console

    from cellgi.experiments.report import report
    from cellgi.experiments.series import parse_seeds, train_series
    from cellgi.training.runner import ModelBuildError, TrainerConfigError, TrainingInterrupted
    from cellgi.runfolder.runs import RunDirError, RunWriteError

    if args.resume is None:  # before any work: where the run folder goes must be writable
        try:
            if args.run_dir is not None:
                check_writable(args.run_dir, label="--run-dir", folder_ok=True, make_parents=True)
            else:
                check_writable(args.runs_root, label="--runs-root", folder_ok=True, make_parents=True)
        except OutputError as exc:
            print(exc.render(), file=sys.stderr)
            return 2
    # a closed output pipe (`cellgi train ... | head -1`) does not stop the run: its results are files
    with stdout_may_close():
        console = Console(soft_wrap=True)
        try:
            seeds = None
            spec_seeds = spec.training.seeds if spec is not None and args.resume is None else None
            if getattr(args, "seeds", None) or spec_seeds:
                try:
                    seeds = parse_seeds(args.seeds) if getattr(args, "seeds", None) else list(spec_seeds)
                except ValueError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                if args.resume is not None or spec is None:
                    print("error: --seeds starts new runs from a SPEC; it does not combine with --resume", file=sys.stderr)
                    return 2
            # one path for a run, a seed series and their resumes; the result is rendered here
            result = train_series(spec, seeds, run_dir=args.run_dir, runs_root=args.runs_root, resume=args.resume,
                                  progress=not args.no_progress)
            for part in report(result):
                console.print(part)
        except TrainingInterrupted as exc:
            where = f"; continue with: cellgi train --resume {exc.run_dir}" if exc.run_dir else ""
            if exc.run_dir and not (Path(exc.run_dir) / "checkpoints" / "last.ckpt").is_file() \
                    and not (Path(exc.run_dir) / "replicates.plan.json").is_file():
                where = f" ({exc.run_dir} stopped before its first checkpoint: start the run again)"
            print(f"{exc}: the run is marked interrupted{where}", file=sys.stderr)
            return exc.exit_code
        except RunWriteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except SpecError as exc:
            print(exc.render(), file=sys.stderr)
            return 2
        except (RunDirError, DataError, CheckpointError, ModelBuildError, TrainerConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except MisconfigurationException as exc:
            print(f"error: training.trainer: {exc}", file=sys.stderr)
            return 2
        except NonFiniteError as exc:
            print(f"error: training diverged: {exc}", file=sys.stderr)
            return 1
    return 0


def _multirun(args: argparse.Namespace, overrides: list) -> int:
    """``--multirun``: the grid of the overrides' comma-separated values, one run each, then a table."""
    import math

    from rich.console import Console
    from rich.table import Table

    from cellgi.examples import resolve_spec_path
    from cellgi.experiments.multirun import expand_grid, run_grid

    clash = [f for f, on in (("--resume", args.resume), ("--seeds", getattr(args, "seeds", None)),
                             ("--print-config", args.print_config)) if on]
    if clash or args.spec is None:
        print(f"error: --multirun takes a SPEC and overrides; not {', '.join(clash) or 'without a SPEC'}", file=sys.stderr)
        return 2
    flags = [o for o in overrides if not isinstance(o, str)]  # --accelerator/--devices: never split
    try:
        grid = [combo + flags for combo in expand_grid([o for o in overrides if isinstance(o, str)])]
        path = resolve_spec_path(args.spec)
    except (ValueError, OSError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    con = Console(soft_wrap=True)
    con.print(f"multirun: {len(grid)} run(s)")

    def on_job(job) -> None:  # type: ignore[no-untyped-def]
        val = job.metrics.get("val.pearson", math.nan)
        con.print(f"job {job.number}: {job.status} {' '.join(job.overrides)}"
                  + (f" | val pearson {val:.4f}" if val == val else "") + (f" | {job.error}" if job.error else ""))

    # a SpecError or RunDirError reaches cellgi.cli.main, which prints it and exits 2
    res = run_grid(path, grid, runs_root=args.runs_root, folder=args.run_dir,
                   progress=not args.no_progress, console=con, on_job=on_job)
    for line in res.notes:
        print(f"note: {line}", file=sys.stderr)
    rows = res.rows()
    table = Table(title=f"multirun: {len(rows)} run(s) in {res.folder}")
    cols = [c for c in rows[0] if c not in ("run_dir", "error")] if rows else []
    for c in cols:
        table.add_column(c, justify="left" if c in ("status", *res.varying) else "right")
    for r in rows:
        table.add_row(*[f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols])
    con.print(table)
    con.print(f"wrote {res.folder / 'multirun.csv'}, {res.folder / 'multirun.json'}")
    return 1 if any(j.status != "completed" for j in res.jobs) else 0
