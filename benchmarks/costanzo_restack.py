"""Refit the stack of finished Costanzo fold runs with other baseline settings, keeping each run's network.

A fold of ``benchmarks/costanzo_folds.py`` trains the network (about 4 of its 11 minutes) and fits the
baselines and the stack. The network does not depend on any baseline setting, so a new setting of the
``propagation`` trees (or another stacked baseline) is measured without training again: for each fold this
script loads the run folder, rebuilds its data with the run's own split, fits the baselines of the
overridden ``training.baselines`` on the training split, blends them with the run's network on the
validation grid (``training.stack`` of the run's spec, the same code as ``cellgi train``) and reports the
baseline alone and the stack on validation and on test pairs with one and with two unseen genes.

    python benchmarks/costanzo_restack.py --runs-root runs/costanzo_folds --folds 0,1,2,3,4 \
        --out-root runs/costanzo_restack -o benchmarks/results/costanzo_profile.json \
        'training.baselines=[{type: propagation, two_hop: [hit], profile: 32}]'

Every fold's result is written as soon as it is done, and a fold already in the output file is kept (the
script can be stopped and started). The fitted stacks land under ``--out-root``/fold<i> (``stack.pt``,
``stack.json``), never in the run folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from cellgi.baselines import fit_baselines, run_baselines
from cellgi.data import build_data
from cellgi.experiments.stacking import fit_stack
from cellgi.predictors.loader import load_predictor
from cellgi.spec import load_spec
from cellgi.training.runner import apply_saved_splits

SPLITS = ("val", "test_one_unseen", "test_two_unseen")
METRICS = ("pearson", "auprc_neg")


def _predictors(fold: dict) -> list[str]:
    """The predictors of one fold's result (``baseline_<type>``, ``stack``), not its run, weights and times."""
    return [k for k, v in fold.items() if isinstance(v, dict) and "val" in v]


def _run_of(root: Path, fold: int) -> Path:
    runs = sorted(p.parent for p in (root / f"fold{fold}").glob("*/stack.pt"))
    if not runs:
        raise SystemExit(f"error: no finished run (a folder with stack.pt) under {root / f'fold{fold}'}")
    return runs[-1]


def restack_fold(run: Path, out: Path, overrides: list[str]) -> dict:
    """The overridden stack's baselines and blend on ``run``'s network (module docstring)."""
    t0 = time.perf_counter()
    network = load_predictor(run).networks()
    if len(network) != 1:
        raise SystemExit(f"error: {run} holds {len(network)} networks; this script re-stacks a one-network run")
    spec = load_spec(run / "spec.yaml", overrides=overrides)
    bundle = build_data(spec.data, progress=False)
    apply_saved_splits(bundle, run, None)
    names = list(spec.training.stack.baselines)
    fitted = fit_baselines(bundle, spec, names=names)
    fit_s = time.perf_counter() - t0
    scores = run_baselines(bundle, spec, fitted=fitted)
    out.mkdir(parents=True, exist_ok=True)
    metrics, info = fit_stack(out, spec, network[0], bundle, fitted)
    result = {f"baseline_{n}": {s: {m: scores[f"baseline_{n}"][s].get(m) for m in METRICS} for s in SPLITS}
              for n in names}
    result["stack"] = {s: {m: metrics.get(f"stack.{s}.{m}") for m in METRICS} for s in SPLITS}
    result.update(run=str(run), weights=info["weights"], baselines_fit_s=round(fit_s, 1),
                  total_s=round(time.perf_counter() - t0, 1))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-root", required=True, help="the --runs-root of benchmarks/costanzo_folds.py")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--out-root", required=True, help="where each fold's refitted stack is written")
    ap.add_argument("-o", "--output", required=True, help="JSON of every fold and the means and sample sd over folds")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the runs' specs")
    args = ap.parse_args(argv)
    path = Path(args.output)
    done = json.loads(path.read_text()) if path.exists() else {}
    if done and done.get("overrides") != args.overrides:
        raise SystemExit(f"error: {path} holds results for overrides {done.get('overrides')}, not {args.overrides}")
    result = {"overrides": args.overrides, "folds": done.get("folds", {})}
    for fold in (int(f) for f in args.folds.split(",")):
        if str(fold) not in result["folds"]:
            result["folds"][str(fold)] = restack_fold(_run_of(Path(args.runs_root), fold),
                                                      Path(args.out_root) / f"fold{fold}", args.overrides)
            path.write_text(json.dumps(result, indent=1) + "\n")
        r = result["folds"][str(fold)]
        print(f"fold {fold}: " + "; ".join(
            f"{who} {s} {r[who][s]['pearson']:.3f} / {r[who][s]['auprc_neg']:.4f}"
            for who in _predictors(r) for s in SPLITS[1:]), flush=True)
    folds = list(result["folds"].values())
    summary: dict[str, dict[str, str]] = {}
    for who in _predictors(folds[0]):
        for s in SPLITS:
            for m in METRICS:
                vals = [f[who][s][m] for f in folds]
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0  # sample sd, as costanzo_folds.py
                summary.setdefault(who, {})[f"{s}.{m}"] = f"{statistics.mean(vals):.4f} ± {sd:.4f}"
        print(f"mean over {len(folds)} folds, {who}: {summary[who]}")
    result["summary"] = summary
    path.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
