"""Real-data accuracy on genes the model has never seen: model vs the additive and feature-boosting baselines.

For each spec, fold and seed: the data is built with ``data.split`` overridden to ``gene_folds`` (fold k of
K, the given seed) or ``random``; the spec's baselines are fitted on the training split
(:func:`cellgi.baselines.run_baselines`); the model (``LazyDango`` from the spec's ``model:``) is
trained on the same split with AdamW, the spec's loss, learning rate and weight decay, and early stopping
on the validation Pearson (gene-disjoint under ``gene_folds``: hyperparameters and the stopping epoch
never see test genes). Pearson / Spearman on every split (test, test_one_unseen, test_two_unseen) are
written per replicate and as mean ± sd to ``benchmarks/results/<name>.json``.

The loop is a plain PyTorch loop over the same model, data and loss code as ``cellgi train`` (without
Lightning's run folder, checkpoints and plots), so that folds x seeds fit on a small CPU.

    python benchmarks/real_data.py configs/emap_real.yaml --folds 0,1,2 --seeds 0 --split gene_folds
    python benchmarks/real_data.py configs/emap_real.yaml --split random --seeds 0,1,2
    python benchmarks/real_data.py --table benchmarks/results/*.json     # markdown tables of the results
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", message=r".*will save all targets and predictions.*")
warnings.filterwarnings("ignore", message=r".*variance of predictions or target is close to zero.*")


def _override(spec, split_kind: str, fold: int, seed: int, num_folds: int, split_seed: int | None = None):
    d = spec.model_dump(mode="json")
    d["seed"] = seed
    sp = d["data"]["split"]
    sp["kind"] = split_kind
    sp["seed"] = seed if split_seed is None else split_seed
    if split_kind == "gene_folds":
        sp["fold"], sp["num_folds"] = fold, num_folds
    d["data"]["cache"] = True
    return type(spec).model_validate(d)


def _predict(model, ds, idx, norm, batch_size):
    model.eval()
    outs = []
    with torch.no_grad():
        for lo in range(0, idx.numel(), batch_size):
            b = ds.batch(idx[lo : lo + batch_size])
            pred, _ = model(b)
            outs.append(pred.float())
    return norm.inverse(torch.cat(outs)) if outs else torch.zeros(0, len(norm.mean))


def _metrics(pred, y, names, thr):
    from cellgi.metrics import InteractionMetrics

    m = InteractionMetrics(names, thr, sync=False)
    m.update(pred, y)
    return m.compute()


def train_model(spec, bundle, *, max_epochs: int, patience: int, log=print):
    from cellgi.nn.model import LazyDango
    from cellgi.registry import get_registry

    torch.manual_seed(spec.seed)
    ds, norm, splits = bundle.dataset, bundle.normalizer, bundle.splits
    model = LazyDango.from_spec(spec.model, bundle.graph, len(bundle.target_names), node_features=bundle.gene_features,
                               feature_names=bundle.feature_names)
    tr = splits["train"]
    model.set_training_genes(torch.unique(ds.subset(tr).pert_idx.to(torch.long)))
    from cellgi.baselines import additive_alpha, warm_start_model

    warm_start_model(model, bundle, alpha=additive_alpha(spec))
    t = spec.training
    opt = torch.optim.AdamW(model.parameters(), lr=t.optimizer.lr, weight_decay=t.optimizer.weight_decay)
    loss_fn = get_registry("loss").build(t.loss)
    bs = spec.data.batch_size
    ebs = spec.data.eval_batch_size or 4 * bs
    g = torch.Generator().manual_seed(spec.seed)
    steps_per_epoch = math.ceil(tr.numel() / bs)
    total = steps_per_epoch * max_epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.optimizer.lr, total_steps=total, pct_start=0.05,
                                                anneal_strategy="cos")
    best, best_state, best_epoch, bad = -math.inf, None, -1, 0
    va = splits["val"]

    for epoch in range(max_epochs):
        model.train()
        t0 = time.perf_counter()
        perm = tr[torch.randperm(tr.numel(), generator=g)]
        tot = 0.0
        for lo in range(0, perm.numel(), bs):
            b = ds.batch(perm[lo : lo + bs], y_transform=norm.transform)
            pred, _ = model(b)
            loss = loss_fn(pred, b.y, b.weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) * b.num_samples
        vp = _predict(model, ds, va, norm, ebs)
        vr = _metrics(vp, ds.y[va], bundle.target_names, t.metrics.strong_threshold)["pearson"]
        vr = -math.inf if vr is None or vr != vr else vr
        log(f"  epoch {epoch + 1}: train loss {tot / perm.numel():.4f} val pearson {vr:.4f} ({time.perf_counter() - t0:.1f}s)")
        if vr > best:
            best, best_epoch, bad = vr, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    return model, best_epoch


def run_one(spec, *, max_epochs, patience, log=print, model_too=True, predictions: dict | None = None):
    from cellgi.data import build_data
    from cellgi.baselines import BaselineData, fit_baselines, run_baselines

    bundle = build_data(spec.data, progress=False)
    res: dict[str, dict] = {}
    t0 = time.perf_counter()
    data = BaselineData.of_bundle(bundle, int(spec.seed))  # shared by the baselines (set features once)
    fitted = fit_baselines(bundle, spec, data=data)
    for name, per in run_baselines(bundle, spec, fitted=fitted, data=data).items():
        res[name.removeprefix("baseline_")] = per
    if predictions is not None:  # the baselines' predictions too (for the stack)
        for s, idx in bundle.splits.items():
            for name, fit in fitted.items() if idx.numel() else ():
                p = fit.predict_samples(data, idx)
                predictions.setdefault(s, {})[name.removeprefix("baseline_")] = bundle.normalizer.inverse(p.float()).numpy()
    tb = time.perf_counter() - t0
    sizes = {k: int(v.numel()) for k, v in bundle.splits.items()}
    res["sizes"] = sizes
    res["targets"] = list(bundle.target_names)
    if model_too:
        t0 = time.perf_counter()
        model, best_epoch = train_model(spec, bundle, max_epochs=max_epochs, patience=patience, log=log)
        ebs = spec.data.eval_batch_size or 4 * spec.data.batch_size
        res["model"] = {}
        for s, idx in bundle.splits.items():
            if idx.numel():
                pred = _predict(model, bundle.dataset, idx, bundle.normalizer, ebs)
                if predictions is not None:  # raw predictions (for ensembles, the stack and error analysis)
                    predictions.setdefault(s, {}).update(
                        index=idx.numpy(), pred=pred.numpy(), y=bundle.dataset.y[idx].numpy())
                res["model"][s] = _metrics(pred, bundle.dataset.y[idx], bundle.target_names,
                                           spec.training.metrics.strong_threshold)
        if predictions is not None and bundle.splits["val"].numel():  # the stack's blend groups by these
            from cellgi.experiments.blend import heldout_genes

            predictions["val"]["heldout"] = heldout_genes(bundle.dataset, bundle.splits["val"], bundle.splits["train"])
        res["best_epoch"] = best_epoch + 1
        res["model_seconds"] = round(time.perf_counter() - t0, 1)
    res["baseline_seconds"] = round(tb, 1)
    return res


def stack_fold(members: list[dict], stack, targets, threshold, seed: int = 0) -> dict:
    """The spec's stack (``training.stack``) on one fold, as ``cellgi train`` fits it: the seed ensemble's and
    the baselines' predictions blended with non-negative weights chosen on the validation split by the
    spec's blend rule (:func:`cellgi.experiments.blend.fit_blend`; one target)."""
    from cellgi.experiments.blend import fit_blend

    def cols(split):
        return np.stack([np.mean([m[split]["pred"][:, 0] for m in members], 0),
                         *[members[0][split][b][:, 0] for b in stack.baselines]], 1)

    bl = stack.blend
    fit = fit_blend(cols("val"), members[0]["val"]["y"][:, 0], members[0]["val"].get("heldout"), rule=bl.rule,
                    folds=bl.folds, bootstraps=bl.bootstraps, confidence=bl.confidence, seed=seed)
    w, b = fit.weights, fit.intercept
    out = {"weights": [round(float(x), 3) for x in w], "rule": bl.rule, "model": {}}
    for split in members[0]:
        pred = torch.from_numpy((b + cols(split) @ w)[:, None]).float()
        out["model"][split] = _metrics(pred, torch.from_numpy(members[0][split]["y"]), targets, threshold)
    return out


def summarize(reps: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for method in ("model", "additive", "features"):
        for rep in reps:
            for split, m in rep.get(method, {}).items():
                for key in ("pearson", "spearman"):
                    v = m.get(key)
                    out.setdefault(method, {}).setdefault(split, {}).setdefault(key, []).append(
                        float("nan") if v is None else float(v))
    summary: dict[str, dict] = {}
    for method, per in out.items():
        for split, mm in per.items():
            for key, vals in mm.items():
                a = np.array(vals, dtype=float)
                ok = a[~np.isnan(a)]
                summary.setdefault(method, {}).setdefault(split, {})[key] = {
                    "mean": float(ok.mean()) if ok.size else None,
                    "sd": float(ok.std(ddof=1)) if ok.size > 1 else None,
                    "n": int(ok.size),
                }
    return summary


def markdown_table(path: str | Path) -> str:
    """A markdown table (rows = splits, columns = methods; Pearson mean ± sd over replicates) of a results file."""
    d = json.loads(Path(path).read_text())
    summ = d["summary"]
    methods = [m for m in ("model", "additive", "features") if m in summ]
    splits = [s for s in ("val", "test", "test_one_unseen", "test_two_unseen") if any(s in summ[m] for m in methods)]
    head = {"model": "model", "additive": "additive (ridge)", "features": "feature boosting"}

    def cell(m: str, s: str) -> str:
        v = summ.get(m, {}).get(s, {}).get("pearson")
        if not v or v["mean"] is None:
            return "-"
        sd = "" if v["sd"] is None else f" ± {v['sd']:.3f}"
        return f"{v['mean']:.3f}{sd}"

    if "ensemble" in d:  # seed ensembles per fold (several model seeds on one split)
        summ = {**summ, "ensemble": d["ensemble"]["summary"]}
        methods.insert(1, "ensemble")
        head["ensemble"] = f"{len(d['seeds'])}-seed ensemble"
    if "stack" in d:  # the ensemble blended with the trees (training.stack)
        summ = {**summ, "stack": d["stack"]["summary"]}
        methods.insert(2, "stack")
        head["stack"] = "stack (ensemble + trees)"
    n = len(d["replicates"])
    lines = [f"{d['name']}, split {d['split']} ({n} replicates: folds {d['folds']} x seeds {d['seeds']}); Pearson",
             "", "| split | " + " | ".join(head[m] for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for s in splits:
        lines.append(f"| {s} | " + " | ".join(cell(m, s) for m in methods) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--table":
        for path in sys.argv[2:]:
            print(markdown_table(path) + "\n")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--split", choices=("gene_folds", "random"), default="gene_folds")
    ap.add_argument("--folds", default="0,1,2", help="gene folds to hold out (gene_folds)")
    ap.add_argument("--num-folds", type=int, default=5)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--split-seed", type=int, default=None,
                    help="keep the split's seed fixed (default: each replicate's seed also re-deals the split)")
    ap.add_argument("--max-epochs", type=int, default=None, help="default: the spec's training.max_epochs")
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--baselines-only", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=YAML", help="spec override (dotted key)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core machine)")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--save-predictions", action="store_true",
                    help="also write every replicate's predictions per split to <output>.predictions.npz")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cellgi.spec import load_spec
    import yaml

    spec = load_spec(args.spec)
    if args.set:
        d = spec.model_dump(mode="json")
        for item in args.set:
            k, v = item.split("=", 1)
            cur = d
            parts = k.split(".")
            for p in parts[:-1]:
                cur = cur[p]
            cur[parts[-1]] = yaml.safe_load(v)
        spec = type(spec).model_validate(d)
    folds = [int(x) for x in args.folds.split(",")] if args.split == "gene_folds" else [0]
    seeds = [int(x) for x in args.seeds.split(",")]
    max_epochs = args.max_epochs or spec.training.max_epochs
    reps = []
    saved: dict[str, np.ndarray] = {}
    # several model seeds on one split: their seed ensemble (members' predictions averaged) per fold too
    ensemble = args.split_seed is not None and len(seeds) > 1 and not args.baselines_only
    ens_reps: list[dict] = []
    stack_reps: list[dict] = []
    t0 = time.perf_counter()
    for fold in folds:
        members: list[dict] = []
        for seed in seeds:
            s = _override(spec, args.split, fold, seed, args.num_folds, args.split_seed)
            print(f"== {spec.name} {args.split} fold {fold} seed {seed}", flush=True)
            preds: dict | None = {} if args.save_predictions or ensemble else None
            r = run_one(s, max_epochs=max_epochs, patience=args.patience, model_too=not args.baselines_only,
                        log=lambda m: print(m, flush=True), predictions=preds)
            for split, arrs in (preds if args.save_predictions else {}).items():
                for key, arr in arrs.items():
                    saved[f"fold{fold}/seed{seed}/{split}/{key}"] = arr
            r.update(fold=fold, seed=seed)
            reps.append(r)
            if ensemble:
                members.append(preds)
            line = []
            for method in ("model", "additive", "features"):
                if method in r:
                    line.append(method + " " + " ".join(
                        f"{sp}={r[method][sp]['pearson']:.3f}" for sp in r[method] if sp != "train"
                        and r[method][sp].get("pearson") is not None))
            print("   " + " | ".join(line), flush=True)
        if ensemble:
            ens = {"fold": fold, "seeds": seeds, "model": {}}
            for split in members[0]:
                mean = np.mean([m[split]["pred"] for m in members], 0)
                ens["model"][split] = _metrics(torch.from_numpy(mean), torch.from_numpy(members[0][split]["y"]),
                                               reps[-1]["targets"],
                                               spec.training.metrics.strong_threshold)
            ens_reps.append(ens)
            print(f"   ensemble of {len(seeds)} seeds: " + " ".join(
                f"{sp}={m['pearson']:.3f}" for sp, m in ens["model"].items()
                if sp != "train" and m.get("pearson") is not None), flush=True)
            if spec.training.stack is not None:
                st = stack_fold(members, spec.training.stack, reps[-1]["targets"],
                                spec.training.metrics.strong_threshold, seed=int(spec.seed))
                st.update(fold=fold, seeds=seeds)
                stack_reps.append(st)
                print(f"   stack (weights {st['weights']}): " + " ".join(
                    f"{sp}={m['pearson']:.3f}" for sp, m in st["model"].items()
                    if sp != "train" and m.get("pearson") is not None), flush=True)
    out = {
        "spec": str(args.spec), "name": spec.name, "split": args.split, "folds": folds, "num_folds": args.num_folds,
        "seeds": seeds, "split_seed": args.split_seed, "max_epochs": max_epochs, "patience": args.patience, "overrides": args.set,
        "seconds": round(time.perf_counter() - t0, 1), "replicates": reps, "summary": summarize(reps),
        "torch_threads": torch.get_num_threads(),
    }
    if ensemble:
        out["ensemble"] = {"replicates": ens_reps, "summary": summarize(ens_reps)["model"]}
    if stack_reps:
        out["stack"] = {"replicates": stack_reps, "summary": summarize(stack_reps)["model"]}
    path = Path(args.output or f"benchmarks/results/{spec.name}_{args.split}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=lambda o: None))
    if saved:
        np.savez_compressed(path.with_suffix(".predictions.npz"), **saved)
    print(json.dumps(out["summary"], indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
