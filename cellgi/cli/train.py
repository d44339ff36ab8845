"""``cellgi train SPEC``: validate the spec, build data and model, train with Lightning, write a run folder.

``cellgi train --resume RUN_DIR`` continues an interrupted run from its last checkpoint.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  cellgi train configs/quickstart.yaml
  cellgi train configs/yeast_real.yaml --run-dir runs/yeast-try1
  cellgi train --resume runs/quickstart/20260101-120000

The run folder holds spec.yaml (with versions), splits, checkpoints/{last,best}.ckpt, model.pt,
metrics.json, logs/ (CSV, TensorBoard) and plots/. An existing run folder is never overwritten.
Distributed: set training.trainer (accelerator, devices, num_nodes, strategy); see docs/training.md.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a spec (or resume a run)",
        description="Validate SPEC (no data is read when it is invalid), build data and model from the "
        "registries, train with Lightning and write a run folder.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", help="spec YAML (optional with --resume: the run keeps its own spec)")
    p.add_argument("--run-dir", metavar="DIR", help="run folder (default: RUNS_ROOT/<name>/<timestamp>); must not exist")
    p.add_argument("--runs-root", metavar="DIR", default="runs", help="parent of timestamped run folders (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoints/last.ckpt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs and summary still printed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success; 2 for bad input (spec, run folder, data, checkpoint); 1 when training fails."""
    from cellgi.spec import SpecError, load_spec

    if args.spec is None and args.resume is None:
        print("error: give a SPEC file, or --resume RUN_DIR", file=sys.stderr)
        return 2
    spec = None
    if args.spec is not None:
        try:
            spec = load_spec(args.spec)  # validated before anything else happens
        except SpecError as exc:
            print(exc.render(), file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: cannot read spec {args.spec}: {exc.strerror or exc}", file=sys.stderr)
            return 2

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from cellgi.data.errors import DataError
    from cellgi.nn.model import NonFiniteError
    from cellgi.train.checkpoint import CheckpointError
    from cellgi.train.runner import ModelBuildError, TrainerConfigError, train
    from cellgi.train.runs import RunDirError

    try:
        train(spec, run_dir=args.run_dir, runs_root=args.runs_root, resume=args.resume, progress=not args.no_progress)
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
