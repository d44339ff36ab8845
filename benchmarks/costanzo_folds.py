"""Gene-held-out folds of the Costanzo 2010 screen: train ``configs/costanzo_genome.yaml`` once per fold and
report, per kind of held-out pair (one / two unseen genes), Pearson and AUPRC of negative interactions for
the shipped predictor (the stack), the network alone and every baseline, as mean and sd over folds.

    python benchmarks/costanzo_folds.py --folds 0,1,2,3,4 --runs-root runs/costanzo_folds \
        -o benchmarks/results/costanzo_folds.json [KEY=VALUE ...]

A fold whose run folder already holds metrics.json is read, not trained again (``--reuse``), so the script
can be stopped and started. Hyperparameters are the spec's: nothing here looks at a test split to choose.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("test_one_unseen", "test_two_unseen", "val")
METRICS = ("pearson", "auprc_neg", "auroc_neg", "prevalence_neg")


def _latest(folder: Path) -> Path | None:
    runs = sorted(p for p in folder.glob("*/metrics.json"))
    return runs[-1].parent if runs else None


def _row(metrics: dict, prefix: str) -> dict[str, dict[str, float | None]]:
    """``{split: {metric: value}}`` of one predictor from a flat ``metrics.json`` (``[prefix.]split.metric``)."""
    pre = f"{prefix}." if prefix else ""
    return {split: {m: metrics.get(f"{pre}{split}.{m}") for m in METRICS} for split in SPLITS}


def _baselines_only(spec_path: str, fold: int, overrides: list[str]) -> dict:
    import cellgi
    from cellgi.data import build_data
    from cellgi.spec import load_spec
    from cellgi.baselines import run_baselines

    spec = load_spec(spec_path, overrides=[f"data.split.fold={fold}", *overrides])
    bundle = build_data(spec.data, progress=False)
    scores = run_baselines(bundle, spec)
    return {name: {s: {m: block.get(s, {}).get(m) for m in METRICS} for s in SPLITS} for name, block in scores.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "configs" / "costanzo_genome.yaml"))
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--runs-root", default="runs/costanzo_folds")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--reuse", action="store_true", help="read a fold's finished run instead of training it again")
    ap.add_argument("--baselines-only", action="store_true",
                    help="fit and score only training.baselines per fold (no network, no stack): cheaper")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    folds = [int(f) for f in args.folds.split(",")]
    per_fold = {}
    for k in folds:
        folder = Path(args.runs_root) / f"fold{k}"
        run = _latest(folder) if args.reuse else None
        if args.baselines_only:
            per_fold[k] = {"run": None, "members": _baselines_only(args.spec, k, args.overrides)}
            print(f"fold {k}:", json.dumps({n: v["test_one_unseen"] for n, v in per_fold[k]["members"].items()}),
                  flush=True)
            continue
        if run is None:
            cmd = [sys.executable, "-m", "cellgi", "train", args.spec, f"data.split.fold={k}", f"name=fold{k}",
                   "--runs-root", args.runs_root, *args.overrides]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            run = _latest(folder)
        if run is None:
            raise SystemExit(f"fold {k}: no finished run under {folder}")
        metrics = json.loads((run / "metrics.json").read_text())
        members = {"network": _row(metrics, "")}
        for prefix in sorted({k.split(".", 1)[0] for k in metrics}):
            if prefix.startswith("baseline_") or prefix == "stack":
                members[prefix] = _row(metrics, prefix)
        per_fold[k] = {"run": str(run), "members": members}
    summary: dict[str, dict] = {}
    names = sorted({m for f in per_fold.values() for m in f["members"]})
    for name in names:
        summary[name] = {}
        for split in SPLITS:
            summary[name][split] = {}
            for metric in METRICS:
                vals = [f["members"][name][split][metric] for f in per_fold.values()
                        if name in f["members"] and f["members"][name][split][metric] is not None]
                if vals:
                    summary[name][split][metric] = {
                        "mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                        "folds": vals}
    print(f"{'predictor':24s} {'split':16s} " + " ".join(f"{m:>18s}" for m in METRICS[:3]))
    for name in names:
        for split in SPLITS:
            cells = []
            for metric in METRICS[:3]:
                s = summary[name][split].get(metric)
                cells.append(f"{s['mean']:.4f} ± {s['sd']:.4f}" if s else "-")
            print(f"{name:24s} {split:16s} " + " ".join(f"{c:>18s}" for c in cells))
    if args.output:
        Path(args.output).write_text(json.dumps({"folds": per_fold, "summary": summary}, indent=1))
        print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
