"""Correlations on a screen of mostly neutral pairs (heavy ties at 0): cellgi's metrics vs scipy vs torchmetrics.

Builds a table of the Costanzo 2010 dev file (``interactions/costanzo2010_sga_stringent_dev.txt``: query,
query name, array, array name, epsilon, sd, p; allele suffix after the last ``_`` stripped; a pair measured
twice keeps its first row) plus random unmeasured pairs of the same genes at epsilon 0 up to ``--pairs`` rows
(80% neutral at 150,000), splits it at random 80/10/10 (seed 0), fits the additive baseline on the training
split and prints, per split, Pearson and Spearman of its predictions computed by
:class:`cellgi.metrics.InteractionMetrics`, by scipy, and by torchmetrics' ``SpearmanCorrCoef`` (what
cellgi used before: its tied-rank sums are int32 and overflow on the training split), with AUPRC of negative
and positive interactions beside their shares. Every number is printed, none is asserted.

    python benchmarks/metrics_ties.py                       # data from ../shared/data/yeast
    python benchmarks/metrics_ties.py --pairs 20000         # too small to overflow: all three agree
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "yeast"


def build_table(root: Path, out: Path, pairs: int, seed: int = 0) -> tuple[int, int]:
    """Write ``gene_a gene_b epsilon``: the measured pairs, then neutral pairs (epsilon 0); (measured, rows)."""

    def strip(s: str) -> str:
        return s[: s.rindex("_")] if "_" in s else s

    rows: dict[tuple[str, str], float] = {}
    for line in open(root / "interactions" / "costanzo2010_sga_stringent_dev.txt"):
        f = line.rstrip("\n").split("\t")
        a, b = strip(f[0]), strip(f[2])
        if a != b:
            rows.setdefault((min(a, b), max(a, b)), float(f[4]))
    measured = len(rows)
    genes = sorted({g for k in rows for g in k})
    rng = random.Random(seed)
    while len(rows) < pairs:
        a, b = rng.sample(genes, 2)
        rows.setdefault((min(a, b), max(a, b)), 0.0)
    items = list(rows.items())
    rng.shuffle(items)
    with open(out, "w") as fh:
        fh.write("gene_a\tgene_b\tepsilon\n")
        fh.writelines(f"{a}\t{b}\t{e}\n" for (a, b), e in items)
    return measured, len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the yeast data folder")
    ap.add_argument("--pairs", type=int, default=150_000, help="rows of the table (measured + neutral)")
    args = ap.parse_args()

    import warnings

    from scipy.stats import pearsonr, spearmanr
    from torchmetrics.regression import SpearmanCorrCoef

    from cellgi.data.build import build_data
    from cellgi.spec import validate_spec
    from cellgi.baselines import BaselineData, fit_baselines
    from cellgi.metrics import InteractionMetrics

    warnings.filterwarnings("ignore", message=r".*will save all targets and predictions.*")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "costanzo_pairs.tsv"
        measured, rows = build_table(args.root.resolve(), table, args.pairs)
        spec = validate_spec({
            "name": "metrics-ties",
            "data": {
                "root": str(args.root.resolve()),
                "genes": {"source": "sgd_features", "path": "genes/SGD_features.tab"},
                "graphs": [{"name": "physical", "format": "edgelist", "path": "networks/other/physical_krogan2006.txt"}],
                "screens": [{"format": "table", "path": str(table), "gene_columns": ["gene_a", "gene_b"],
                             "target_columns": {"gene_interaction": "epsilon"}}],
                "targets": ["gene_interaction"],
                "split": {"kind": "random", "fractions": [0.8, 0.1, 0.1], "seed": 0},
                "cache": False,
            },
            "training": {"baselines": [{"type": "additive", "alpha": 1.0}]},
        })
        bundle = build_data(spec.data, progress=False, cache=False)
    print(f"table: {rows} pairs, {measured} measured in the Costanzo dev file, the rest neutral (epsilon 0)")
    data = BaselineData.of_bundle(bundle, 0)
    fit = fit_baselines(bundle, spec, features=False, data=data)["baseline_additive"]
    for split, idx in bundle.splits.items():
        if idx.numel() == 0:
            continue
        p = bundle.normalizer.inverse(fit.predict_samples(data, idx).to(torch.float32))[:, 0]
        y = bundle.dataset.y[idx, 0]
        m = InteractionMetrics(bundle.target_names, sync=False)
        m.update(p, y)
        v = m.compute()
        tm = SpearmanCorrCoef()
        tm.set_dtype(torch.float64)
        tm.update(p.double(), y.double())
        print(f"{split:>5}: n {int(v['n'])}, {float((y == 0).float().mean()):.0%} at 0 | cellgi pearson "
              f"{v['pearson']:+.4f} spearman {v['spearman']:+.4f} | scipy pearson "
              f"{pearsonr(p.double(), y.double()).statistic:+.4f} spearman {spearmanr(p, y).statistic:+.4f} | "
              f"torchmetrics spearman {float(tm.compute()):+.4f} | auprc_neg {v['auprc_neg']:.4f} (share "
              f"{v['prevalence_neg']:.4f}), auprc_pos {v['auprc_pos']:.4f} (share {v['prevalence_pos']:.4f})",
              flush=True)


if __name__ == "__main__":
    main()
