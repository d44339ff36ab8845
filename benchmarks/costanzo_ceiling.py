"""How far per-gene knowledge alone goes on the held-out pairs of the Costanzo 2010 screen.

Issue 24 asks for AUPRC of negative interactions >= 0.08 on pairs of two genes that were never screened.
On such a pair nothing of the screen touches either gene: what can be known is each gene's own
propensity to interact (its "hubness", the share of its screened pairs that are negative interactions),
which features predict only in part, and whatever links the two genes (networks, shared annotations).
This script measures, on the gene folds of ``configs/costanzo_genome.yaml`` (the same splits the runs use),

- ``oracle rate product``: each test gene's true negative share against the training genes, read from the
  held-out test pairs themselves (an oracle no predictor has), and a pair scored by the product of its
  two genes' shares (for a one-unseen pair: the seen gene's training share times the unseen gene's oracle
  share);
- ``predicted rate product``: the same with each unseen gene's share predicted from its per-gene inputs
  (the log1p degree in every graph, the spec's ``data.features``, GO-slim terms) by gradient-boosted trees
  fitted on the training genes' shares: a legitimate predictor of hubness, the inputs and trees of the
  ``propagation`` baseline's ``hub_trees`` (:func:`cellgi.baselines.propagation.predicted_share`);

and prints AUPRC of negative interactions (label ``epsilon < -0.08``, the metrics' default threshold) and
Pearson per kind of pair, with the fold's prevalence, beside the stack's numbers (``stack_of_results_file``) from
``benchmarks/results/costanzo_folds.json`` when that file has the fold.

    python benchmarks/costanzo_ceiling.py configs/costanzo_genome.yaml --folds 0,1,2,3,4 \
        -o benchmarks/results/costanzo_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from cellgi.baselines import SetFeaturizer
from cellgi.baselines.propagation import hub_inputs, predicted_share
from cellgi.data import build_data
from cellgi.metrics import DEFAULT_THRESHOLDS
from cellgi.metrics.interaction import weighted_average_precision, weighted_pearson
from cellgi.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("test_one_unseen", "test_two_unseen")


def negative_share(pairs: np.ndarray, negative: np.ndarray, num_genes: int) -> np.ndarray:
    """``[N]`` share of each gene's pairs (rows of ``pairs [P, 2]``) that are negative; NaN for a gene with none."""
    count = np.bincount(pairs.ravel(), minlength=num_genes).astype(np.float64)
    hits = np.bincount(pairs.ravel(), weights=np.repeat(negative.astype(np.float64), 2), minlength=num_genes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, hits / count, np.nan)


def _scores(pairs: np.ndarray, share: np.ndarray) -> np.ndarray:
    return share[pairs[:, 0]] * share[pairs[:, 1]]


def _metrics(score: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, float]:
    s, t = torch.from_numpy(score), torch.from_numpy(target.astype(np.float64))
    # a higher rate product ranks a pair as more likely negative: AUPRC of label t < threshold by score s;
    # Pearson against epsilon is negative for such a score, so it is reported against -s
    return {
        "auprc_neg": weighted_average_precision(s, t < threshold),
        "pearson": weighted_pearson(-s, t),
        "prevalence_neg": float((target < threshold).mean()),
    }


def fold_ceiling(spec_path: str, fold: int, overrides: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{kind: {scorer: metrics}}`` of one gene fold (see the module docstring)."""
    spec = load_spec(spec_path, overrides=[f"data.split.fold={fold}", *overrides])
    bundle = build_data(spec.data, progress=False)
    ds, n = bundle.dataset, bundle.graph.num_nodes
    threshold = DEFAULT_THRESHOLDS["negative_threshold"]

    def rows(split: str) -> tuple[np.ndarray, np.ndarray]:
        idx = bundle.splits[split]
        return ds.pairs(idx).numpy(), ds.targets(idx).numpy()[:, 0]

    train_p, train_y = rows("train")
    train_share = negative_share(train_p, train_y < threshold, n)
    one_p, one_y = rows("test_one_unseen")
    seen = np.isfinite(train_share)
    # the oracle: each test gene's share over its held-out pairs with training genes
    one_train = seen[one_p[:, 0]] | seen[one_p[:, 1]]
    oracle = negative_share(one_p[one_train], one_y[one_train] < threshold, n)
    # predicted: the hub_trees of the propagation baseline, fitted on the training genes' shares
    x = hub_inputs(SetFeaturizer(bundle.graph, bundle.gene_features, bundle.feature_names))
    predicted = predicted_share(x, train_share)[0].astype(np.float64)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        p, y = rows(kind)
        out[kind] = {}
        for name, unseen_share in (("oracle_rate_product", oracle), ("predicted_rate_product", predicted)):
            share = np.where(seen, train_share, unseen_share)
            score = np.nan_to_num(_scores(p, share), nan=0.0)
            out[kind][name] = _metrics(score, y, threshold)
    test_genes = np.isfinite(oracle) & ~seen
    out["genes"] = {"hubness": {
        "test_genes": int(test_genes.sum()),
        "pearson_predicted_vs_oracle": float(np.corrcoef(predicted[test_genes], oracle[test_genes])[0, 1]),
    }}
    return out


def _mean_sd(vals: list[float]) -> str:
    """``mean ± sd`` over folds (sample sd, as benchmarks/costanzo_folds.py reports; 0 for one fold)."""
    return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0.0:.4f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--stack-results", default=str(ROOT / "benchmarks/results/costanzo_folds.json"))
    ap.add_argument("-o", "--output")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE spec overrides")
    args = ap.parse_args(argv)
    stack_path = Path(args.stack_results)
    stack = json.loads(stack_path.read_text())["folds"] if stack_path.exists() else {}
    folds = [int(f) for f in args.folds.split(",")]
    result: dict[str, dict] = {"folds": {}}
    for fold in folds:
        res = fold_ceiling(args.spec, fold, args.overrides)
        shipped = stack.get(str(fold), {}).get("members", {}).get("stack")
        for kind in KINDS:
            if shipped:
                res[kind]["stack_of_results_file"] = {m: shipped[kind][m] for m in ("auprc_neg", "pearson", "prevalence_neg")}
            for name, m in res[kind].items():
                print(f"fold {fold} {kind:16s} {name:24s} AUPRC neg {m['auprc_neg']:.4f}  Pearson {m['pearson']:+.3f}"
                      f"  prevalence {m['prevalence_neg']:.4f}", flush=True)
        print(f"fold {fold} hubness of {res['genes']['hubness']['test_genes']} test genes: Pearson predicted vs "
              f"oracle {res['genes']['hubness']['pearson_predicted_vs_oracle']:.3f}", flush=True)
        result["folds"][str(fold)] = res
    summary: dict[str, dict[str, dict[str, str]]] = {}
    for kind in KINDS:
        names = sorted({k for f in result["folds"].values() for k in f[kind]})
        for name in names:
            vals = [f[kind][name] for f in result["folds"].values() if name in f[kind]]
            summary.setdefault(kind, {})[name] = {m: _mean_sd([v[m] for v in vals]) for m in ("auprc_neg", "pearson")}
            print(f"mean over {len(vals)} folds {kind:16s} {name:24s} {summary[kind][name]}")
    result["summary"] = summary
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
