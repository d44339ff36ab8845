"""The stack's blend rules compared on gene-held-out folds: trees alone, network alone, and every rule.

Input: one or more results files of ``benchmarks/real_data.py`` run with ``--save-predictions`` and
several model seeds on one split (``--split-seed``), e.g.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/real_data.py configs/emap_real.yaml \\
        --folds 0,1,2,3,4 --seeds 0,1,2 --split-seed 0 --save-predictions -o /tmp/emap_s0.json
    python benchmarks/emap_blend.py /tmp/emap_s0.json [/tmp/emap_s1.json ...] -o benchmarks/results/emap_blend.json

For each fold of each file: the network is the seed ensemble (the members' predictions averaged, as
``cellgi train`` with ``training.seeds`` predicts); the members of the blend are the network and the
spec's ``training.stack.baselines``, their validation predictions are what every rule sees (as in
``cellgi train``: :func:`cellgi.experiments.blend.fit_blend`, the validation rows grouped by their
held-out genes), and each blend is scored on the test pairs with one and with two unseen genes. Prints
Pearson per fold, means ± sd over folds, and each rule's paired difference from the trees and from
``nnls`` (mean, sd, folds won).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SPLITS = ("test_one_unseen", "test_two_unseen")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def evaluate(results: list[Path], rules: list[str], folds_cv: int, seed: int) -> dict:
    import torch

    from cellgi.data import build_data
    from cellgi.experiments.blend import fit_blend, heldout_genes
    from cellgi.spec import load_spec

    rows: list[dict] = []
    datasets: dict[str, object] = {}
    for path in results:
        meta = json.loads(path.read_text())
        preds = np.load(path.with_suffix(".predictions.npz"))
        spec = load_spec(meta["spec"])
        baselines = list(spec.training.stack.baselines) if spec.training.stack else ["features"]
        if meta["spec"] not in datasets:
            datasets[meta["spec"]] = build_data(spec.data, progress=False).dataset
        ds = datasets[meta["spec"]]
        for fold in meta["folds"]:
            seeds = meta["seeds"]
            get = lambda split, key, s=seeds[0]: preds[f"fold{fold}/seed{s}/{split}/{key}"][:, 0]  # noqa: E731

            def cols(split: str) -> np.ndarray:
                net = np.mean([get(split, "pred", s) for s in seeds], 0)
                return np.stack([net, *[get(split, b) for b in baselines]], 1)

            val_idx = torch.from_numpy(preds[f"fold{fold}/seed{seeds[0]}/val/index"])
            train_idx = torch.from_numpy(preds[f"fold{fold}/seed{seeds[0]}/train/index"])
            groups = heldout_genes(ds, val_idx, train_idx)
            xv, yv = cols("val"), get("val", "y")
            row = {"file": path.name, "split_seed": meta["split_seed"], "fold": fold,
                   "val_rows": int(yv.size), "val_genes": int(np.unique(groups[groups >= 0]).size)}
            arms: dict[str, tuple[np.ndarray, float]] = {
                "network": (np.eye(xv.shape[1])[0], 0.0), "trees": (np.eye(xv.shape[1])[1], 0.0)}
            info: dict[str, dict] = {}
            for rule in rules:
                fit = fit_blend(xv, yv, groups, rule=rule, folds=folds_cv, seed=seed)
                arms[rule] = (fit.weights, fit.intercept)
                info[rule] = {"weights": [round(float(w), 3) for w in fit.weights],
                              **{k: v for k, v in fit.info.items() if k in ("lambda", "chosen")}}
            for split in ("val", *SPLITS):
                if f"fold{fold}/seed{seeds[0]}/{split}/y" not in preds:  # e.g. no two-unseen pairs (Kuzmin)
                    continue
                x, y = cols(split), get(split, "y")
                for arm, (w, b) in arms.items():
                    row.setdefault(arm, {})[split] = _pearson(x @ w + b, y)
            row["fits"] = info
            rows.append(row)
            print(f"{path.name} fold {fold}: " + "  ".join(
                f"{arm} " + "/".join(f"{row[arm][sp]:.3f}" for sp in SPLITS if sp in row[arm]) for arm in arms)
                + "  " + " ".join(f"{r}={info[r]}" for r in rules), flush=True)
    return {"rows": rows, "summary": summarize(rows, ["network", "trees", *rules])}


def summarize(rows: list[dict], arms: list[str]) -> dict:
    out: dict[str, dict] = {}
    for split in ("val", *SPLITS):
        if any(split not in rows[0][arm] for arm in arms):
            continue
        for arm in arms:
            v = np.array([r[arm][split] for r in rows])
            d_trees = v - np.array([r["trees"][split] for r in rows])
            d_nnls = v - np.array([r["nnls"][split] for r in rows]) if "nnls" in rows[0] else v * np.nan
            out.setdefault(split, {})[arm] = {
                "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None,
                "minus_trees": float(d_trees.mean()), "minus_trees_sd": float(d_trees.std(ddof=1)) if v.size > 1 else None,
                "above_trees": int((d_trees > 0).sum()),
                "minus_nnls": float(d_nnls.mean()), "above_nnls": int((d_nnls > 0).sum()), "n": int(v.size)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="real_data.py results files (with .predictions.npz)")
    ap.add_argument("--rules", default="nnls,average,shrink,select")
    ap.add_argument("--folds", type=int, default=5, help="groups of validation genes (shrink, select)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args(argv)
    out = evaluate(args.results, args.rules.split(","), args.folds, args.seed)
    n = len(out["rows"])
    for split, per in out["summary"].items():
        print(f"\n{split} ({n} folds): Pearson mean ± sd; minus trees (mean ± sd, folds above); minus nnls (folds above)")
        for arm, s in per.items():
            print(f"  {arm:8s} {s['mean']:.3f} ± {s['sd']:.3f}   {s['minus_trees']:+.3f} ± {s['minus_trees_sd']:.3f} "
                  f"({s['above_trees']}/{n})   {s['minus_nnls']:+.3f} ({s['above_nnls']}/{n})")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"inputs": [str(p) for p in args.results], "cv_folds": args.folds, **out},
                                          indent=1))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
