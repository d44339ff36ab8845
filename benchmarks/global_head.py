"""What the global head adds and costs on real data: local-only vs gated global + local on a Costanzo sub-grid.

The global head runs per-sample masked message passing over the whole cell (every gene of the spec's gene
list, 6,607 ORFs): on 2 CPU cores it is about 15x slower per step than the local-only model (docs/
performance.md), too slow for the whole dev grid. This script shrinks the *screen*: ``--queries`` query
genes and ``--arrays`` array genes drawn at random (``--grid-seed``) from those of the dev file, as the
grid's ``query_genes`` / ``array_genes`` lists; ``--cell whole`` keeps the spec's whole cell (every gene
and edge of ``configs/costanzo_genome.yaml``), ``--cell grid`` cuts the gene list (the cell the global
head passes messages over) to the sub-grid's genes, which makes several epochs fit on a CPU. Both arms
train on the same split (gene folds, fold 0), with the same sampler (every listed training pair plus
``--share`` of the neutral ones per epoch, weighted), batch size, epochs,
optimiser (AdamW, the spec's learning rate and weight decay, gradient clipping 1.0) and seed; then both
score the whole validation grid once. Prints, per arm: training wall seconds per epoch and pairs/s,
validation inference pairs/s, validation AUPRC / AUROC of negative interactions and Pearson.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/global_head.py --cell grid --queries 200 --arrays 400 \\
        --epochs 6 --seed 0 -o benchmarks/results/global_head/grid571_seed0.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"local_only": {"type": "local_only"}, "gate": {"type": "gate"}}


def _sub_grid_spec(spec_path: Path, queries: int, arrays: int, seed: int, folder: Path, share: float,
                   batch_size: int, cell: str, grid_seed: int):
    """The spec with its grid cut to ``queries`` x ``arrays`` genes of the dev file (lists in ``folder``);
    ``cell == "grid"``: the gene list (the cell the global head passes messages over) cut to those genes too."""
    from cellgi.data.readers.sga_grid import strain_gene
    from cellgi.spec import load_spec

    spec = load_spec(spec_path)
    screen = spec.data.screens[0]
    root = (spec_path.parent / spec.data.root).resolve()
    q_genes, a_genes = set(), set()
    with open(root / screen.path) as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if len(f) >= 4:
                q_genes.add(strain_gene(f[0]))
                a_genes.add(strain_gene(f[2]))
    rng = np.random.default_rng(grid_seed)
    q = sorted(rng.choice(sorted(q_genes), size=min(queries, len(q_genes)), replace=False).tolist())
    a = sorted(rng.choice(sorted(a_genes), size=min(arrays, len(a_genes)), replace=False).tolist())
    (folder / "queries.txt").write_text("\n".join(q) + "\n")
    (folder / "arrays.txt").write_text("\n".join(a) + "\n")
    d = spec.model_dump(mode="json")
    d["data"]["root"] = str(root)
    if cell == "grid":
        (folder / "genes.txt").write_text("\n".join(sorted(set(q) | set(a))) + "\n")
        d["data"]["genes"] = {"source": "list", "path": str(folder / "genes.txt"),
                              "aliases": d["data"]["genes"].get("aliases") or d["data"]["genes"]["path"]}
    d["data"]["screens"][0].update(query_genes=str(folder / "queries.txt"), array_genes=str(folder / "arrays.txt"))
    d["data"]["neutral_sampling"]["share"] = share
    d["data"]["batch_size"] = batch_size
    d["seed"] = seed
    return type(spec).model_validate(d), len(q), len(a)


def _score(model, ds, idx, norm, batch_size: int, target_names, mspec) -> tuple[dict, float]:
    from cellgi.metrics import InteractionMetrics

    model.eval()
    m = InteractionMetrics.from_spec(target_names, mspec, sync=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, idx.numel(), batch_size):
            b = ds.batch(idx[lo : lo + batch_size])
            pred, _ = model(b)
            m.update(norm.inverse(pred.float()), b.y, b.weight)
    return m.compute(), time.perf_counter() - t0


def run_arm(name: str, spec, bundle, *, epochs: int, eval_batch: int, log=print) -> dict:
    from cellgi.baselines import additive_alpha, warm_start_model
    from cellgi.data.grid_sampler import GridEpochSampler
    from cellgi.nn.model import LazyDango
    from cellgi.registry import get_registry

    d = spec.model_dump(mode="json")
    d["model"]["combiner"] = ARMS[name]
    spec = type(spec).model_validate(d)
    torch.manual_seed(spec.seed)
    ds, norm, splits = bundle.dataset, bundle.normalizer, bundle.splits
    model = LazyDango.from_spec(spec.model, bundle.graph, len(bundle.target_names), node_features=bundle.gene_features,
                               feature_names=bundle.feature_names)
    tr = splits["train"]
    model.set_training_genes(torch.unique(ds.genes_in(tr)))
    warm_start_model(model, bundle, alpha=additive_alpha(spec))
    t = spec.training
    opt = torch.optim.AdamW(model.parameters(), lr=t.optimizer.lr, weight_decay=t.optimizer.weight_decay)
    loss_fn = get_registry("loss").build(t.loss)
    sampler = GridEpochSampler(ds, tr, spec.data.batch_size, share=spec.data.neutral_sampling.share, seed=spec.seed)
    epochs_out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        t0, n, tot = time.perf_counter(), 0, 0.0
        for idx, w in sampler.epoch_batches():
            b = ds.batch(idx, y_transform=norm.transform)
            b.weight = b.weight * w.to(b.weight.dtype)
            pred, _ = model(b)
            loss = loss_fn(pred, b.y, b.weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            n += idx.numel()
            tot += float(loss.detach()) * idx.numel()
        sec = time.perf_counter() - t0
        epochs_out.append({"epoch": epoch + 1, "seconds": round(sec, 1), "pairs": n, "pairs_per_s": round(n / sec, 1),
                           "train_loss": round(tot / n, 4)})
        log(f"  {name} epoch {epoch + 1}: loss {tot / n:.4f}, {n:,} pairs in {sec:.1f}s ({n / sec:.0f} pairs/s)")
    val = splits["val"]
    metrics, sec = _score(model, ds, val, norm, eval_batch, bundle.target_names, t.metrics)
    keep = ("pearson", "spearman", "auprc_neg", "auroc_neg", "prevalence_neg")
    out = {"epochs": epochs_out, "val": {k: metrics.get(k) for k in keep}, "val_pairs": int(val.numel()),
           "val_seconds": round(sec, 1), "val_pairs_per_s": round(val.numel() / sec, 1),
           "parameters": int(sum(p.numel() for p in model.parameters())),
           "train_seconds_per_epoch": round(float(np.mean([e["seconds"] for e in epochs_out])), 1),
           "train_pairs_per_s": round(float(np.mean([e["pairs_per_s"] for e in epochs_out])), 1)}
    log(f"  {name}: val " + ", ".join(f"{k} {v:.4f}" for k, v in out["val"].items() if v is not None)
        + f"; {out['val_pairs']:,} val pairs in {sec:.1f}s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "configs" / "costanzo_genome.yaml")
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--arrays", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--share", type=float, default=0.05, help="neutral training pairs drawn per epoch")
    ap.add_argument("--batch-size", type=int, default=32, help="training pairs per step, both arms")
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="the model's seed (initial weights, sampler draws)")
    ap.add_argument("--grid-seed", type=int, default=0, help="which genes make the sub-grid")
    ap.add_argument("--cell", choices=("whole", "grid"), default="whole",
                    help="the gene list: the spec's whole cell (6,607 ORFs) or only the sub-grid's genes")
    ap.add_argument("--arms", default="local_only,gate")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cellgi.data import build_data

    with tempfile.TemporaryDirectory() as tmp:
        spec, nq, na = _sub_grid_spec(args.spec, args.queries, args.arrays, args.seed, Path(tmp), args.share,
                                      args.batch_size, args.cell, args.grid_seed)
        t0 = time.perf_counter()
        bundle = build_data(spec.data, progress=False)
    sizes = {k: int(v.numel()) for k, v in bundle.splits.items()}
    ds = bundle.dataset
    listed = {k: int(ds.listed(v).sum()) for k, v in bundle.splits.items() if v.numel()}
    print(f"grid {nq} x {na} of the dev file, {bundle.graph.num_nodes:,} genes in the cell; splits {sizes}; "
          f"listed pairs {listed}; data build {time.perf_counter() - t0:.1f}s", flush=True)
    out = {"spec": str(args.spec), "cell": args.cell, "queries": nq, "arrays": na, "epochs": args.epochs, "share": args.share,
           "batch_size": args.batch_size, "seed": args.seed, "grid_seed": args.grid_seed, "genes": int(bundle.graph.num_nodes), "splits": sizes,
           "listed": listed, "torch_threads": torch.get_num_threads(), "arms": {}}
    for arm in args.arms.split(","):
        out["arms"][arm] = run_arm(arm, spec, bundle, epochs=args.epochs, eval_batch=args.eval_batch,
                                   log=lambda m: print(m, flush=True))
    arms = out["arms"]
    if {"local_only", "gate"} <= set(arms):
        lo, gl = arms["local_only"], arms["gate"]
        print(f"gate / local_only: training {gl['train_seconds_per_epoch'] / lo['train_seconds_per_epoch']:.1f}x the "
              f"time per epoch, validation inference {lo['val_pairs_per_s'] / gl['val_pairs_per_s']:.1f}x slower; "
              + ", ".join(f"{k} {gl['val'][k] - lo['val'][k]:+.4f}" for k in ("auprc_neg", "pearson")
                          if gl["val"].get(k) is not None and lo["val"].get(k) is not None))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
