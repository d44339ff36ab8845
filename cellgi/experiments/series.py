"""Seed replicates: the same spec trained once per seed, and one summary with mean ± sd per metric.

``cellgi train SPEC --seeds 0,1,2`` runs :func:`train_replicates`: each seed is a complete run folder
``<parent>/seed_<s>`` (the spec's ``seed`` replaced: model initialisation, dropout and batch order;
``data.split.seed`` is kept, so every replicate sees the same split). The parent folder gets
``replicates.json``: per metric of ``metrics.json`` (the model's and the baselines') the values per seed,
their mean and sample standard deviation (``sd``, n-1; ``null`` for one seed), and with two seeds or more
``ensemble``: the same metrics for the seed ensemble (the members' predictions averaged;
:mod:`cellgi.predictors.ensemble`). The parent folder itself then loads as that ensemble (``cellgi predict``,
``cellgi evaluate``, ``cellgi.load``).

A series stopped midway (Ctrl-C, SIGTERM, a crash) continues with ``cellgi train --resume PARENT``
(:func:`resume_replicates`): the parent's ``replicates.plan.json`` holds the spec and the seeds; finished
members are read back, the stopped one continues from its last checkpoint, the missing ones start.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from cellgi.predictors.ensemble import EnsembleError, LoadedEnsemble, load_ensemble
from cellgi.runfolder.runs import (
    CKPT_DIR,
    PLAN_FILE,
    REPLICATES_FILE,
    claim_run_dir,
    create_run_dir,
    read_json,
    release_run_dir,
    run_completed,
    timestamp,
    write_json,
)

__all__ = ["ReplicatesResult", "is_replicates_plan", "parse_seeds",
           "evaluate_ensemble", "resume_replicates", "summarize", "summary_table", "train_replicates"]



def is_replicates_plan(path: str | Path) -> bool:
    """Whether ``path`` is the parent folder of a seed-replicate series (finished or not)."""
    return (Path(path) / PLAN_FILE).is_file()


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> seeds; a clear ValueError otherwise."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"--seeds: {part!r} is not a seed (give integers: 0,1,2 or 0-4)") from None
    if not seeds:
        raise ValueError("--seeds: no seed given (e.g. --seeds 0,1,2)")
    if any(s < 0 for s in seeds):
        raise ValueError("--seeds: seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: a seed is repeated in {text!r}")
    return seeds


def summarize(per_seed: dict[int, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "sd", "n", "values": {seed: v}}}`` over the seeds (NaN values left out)."""
    keys = list(dict.fromkeys(k for m in per_seed.values() for k in m))
    out: dict[str, dict[str, Any]] = {}
    for k in keys:
        vals = {s: m.get(k) for s, m in per_seed.items()}
        finite = [float(v) for v in vals.values() if v is not None and math.isfinite(float(v))]
        out[k] = {
            "mean": statistics.fmean(finite) if finite else None,
            "sd": statistics.stdev(finite) if len(finite) > 1 else None,
            "n": len(finite),
            "values": {str(s): v for s, v in vals.items()},
        }
    return out


def summary_table(summary: dict[str, dict[str, Any]], seeds: Sequence[int], title: str,
                  ensemble: dict[str, float] | None = None) -> Table:
    """Rich table: metric | mean ± sd | n (every metric of metrics.json) | the seed ensemble's value."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(f"mean ± sd over seeds {','.join(map(str, seeds))}", justify="right")
    table.add_column("n", justify="right")
    if ensemble:
        table.add_column("ensemble (mean prediction)", justify="right")
    for k, v in summary.items():
        if v["mean"] is None:
            cell = "-"
        elif v["sd"] is None:
            cell = f"{v['mean']:.4f}"
        else:
            cell = f"{v['mean']:.4f} ± {v['sd']:.4f}"
        row = [k, cell, str(v["n"])]
        if ensemble:
            e = ensemble.get(k)
            row.append("-" if e is None or not math.isfinite(e) else f"{e:.4f}")
        table.add_row(*row)
    return table


@dataclass
class ReplicatesResult:
    """What seed replicates produced (:func:`cellgi.train` of a spec with ``training.seeds``): ``run_dir``
    (the replicates folder: ``cellgi.load`` gives the seed ensemble), ``seeds``, ``runs`` (seed -> member
    folder), ``summary`` (mean ± sd of every metric), ``ensemble`` (the ensemble's metrics; two seeds
    or more) and ``stack`` (``stack.<split>.<metric>`` of the blend, with ``training.stack``)."""

    run_dir: Path
    seeds: list[int]
    runs: dict[str, str]
    summary: dict[str, dict[str, Any]]
    ensemble: dict[str, float] | None = None
    stack: dict[str, float] | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """The ensemble's metrics where there is one, else the members' means, and the stack's; keys as in
        ``metrics.json`` (``test.pearson``, ``stack.test.pearson``, ...)."""
        out = dict(self.ensemble) if self.ensemble else {
            k: v["mean"] for k, v in self.summary.items() if v.get("mean") is not None}
        return {**out, **(self.stack or {})}

    @classmethod
    def from_dict(cls, out: dict[str, Any]) -> "ReplicatesResult":
        return cls(Path(out["run_dir"]), list(out["seeds"]), dict(out["runs"]), out["summary"], out.get("ensemble"),
                   out.get("stack"))


def train_replicates(
    spec: Any,
    seeds: Sequence[int],
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train ``spec`` once per seed under one parent folder and write ``replicates.json``.

    Returns ``{"run_dir", "seeds", "runs", "summary"}`` (and ``"ensemble"``). A replicate that fails stops
    the series (its error propagates); the replicates finished before it keep their folders, and
    :func:`resume_replicates` (``cellgi train --resume PARENT``) continues the series. A signal raises
    ``TrainingInterrupted`` naming the parent folder.
    """
    from cellgi.training.runner import TrainerConfigError, check_stack_settings, is_primary_process

    seeds = list(seeds)
    check_stack_settings(spec)  # the members run without the stack: check the series' own here
    tr = spec.training.trainer
    if "ddp" in str(tr.strategy) or tr.num_nodes > 1:
        raise TrainerConfigError(
            f"training.trainer.strategy: seed replicates run in one process and do not combine with "
            f"{tr.strategy!r} (num_nodes {tr.num_nodes}); run one `cellgi train SPEC seed=S training.seeds=null` "
            f"per seed instead"
        )
    parent = create_run_dir(spec.name, runs_root=runs_root, run_dir=run_dir)  # claimed: run.lock
    try:
        if is_primary_process():
            write_json(parent / PLAN_FILE, {"spec_name": spec.name, "seeds": seeds,
                                            "spec": spec.model_dump(mode="json")})
        return _run_series(spec, seeds, parent, progress=progress, console=console)
    finally:
        release_run_dir(parent)


def resume_replicates(parent: str | Path, *, progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """Continue a stopped series in ``parent`` (see the module docstring); same return as
    :func:`train_replicates`.

    Raises:
        RunDirError: ``parent`` has no readable plan, or another process holds it.
    """
    from cellgi.spec import SpecError, validate_spec
    from cellgi.runfolder.runs import RunDirError

    parent = Path(parent)
    try:
        plan = read_json(parent / PLAN_FILE)
        spec = validate_spec(plan["spec"])  # SpecError when a plugin it names is gone
        seeds = [int(x) for x in plan["seeds"]]
    except SpecError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{parent / PLAN_FILE}: not a readable replicates plan ({exc})") from None
    claim_run_dir(parent)
    try:
        return _run_series(spec, seeds, parent, progress=progress, console=console, resume=True)
    finally:
        release_run_dir(parent)


def _run_series(spec: Any, seeds: list[int], parent: Path, *, progress: bool, console: Console | None,
                resume: bool = False) -> dict[str, Any]:
    from cellgi.training.runner import TrainingInterrupted, is_primary_process, train

    console = console or Console(soft_wrap=True)
    primary = is_primary_process()
    if primary:
        console.print(f"replicates: seeds {', '.join(map(str, seeds))} in [bold]{parent}[/bold]"
                      + (" (resumed)" if resume else ""))
    per_seed: dict[int, dict[str, float]] = {}
    runs: dict[str, str] = {}
    for s in seeds:
        if primary:
            # at most 100 columns: piped output is 4,000 columns wide (no wrapping), a rule would fill them
            console.print(Rule(f"seed {s}"), width=min(console.width, 100))
        sub = parent / f"seed_{s}"
        try:
            if resume and (run_completed(sub) or (sub / CKPT_DIR / "last.ckpt").is_file()):
                # a finished member is read back at once; a stopped one continues from its last checkpoint
                result = train(None, resume=sub, progress=progress, console=console)
            else:
                if resume and sub.exists():  # stopped before its first checkpoint: kept aside, started again
                    sub.rename(sub.with_name(f"{sub.name}.incomplete-{timestamp()}"))
                # each member is one run: its spec names its own seed and no replicate list of its own
                # (the stack, if any, is fitted once for the series' ensemble, below)
                member = spec.model_copy(update={"seed": s, "training": spec.training.model_copy(
                    update={"seeds": None, "stack": None})})
                result = train(member, run_dir=sub, progress=progress, console=console)
        except TrainingInterrupted as exc:  # point the user at the series, not at the member
            raise TrainingInterrupted(exc.signum, parent) from None
        per_seed[s] = result.metrics
        runs[str(s)] = sub.name
    summary = summarize(per_seed)
    out: dict[str, Any] = {"spec": spec.name, "seeds": seeds, "runs": runs, "summary": summary}
    if primary and (len(seeds) > 1 or spec.training.stack is not None):
        from cellgi.data import build_data
        from cellgi.experiments.stacking import stack_folder

        # the members and the data once, for the ensemble's metrics and the stack
        ens = load_ensemble([parent / sub for sub in runs.values()])
        bundle = build_data(spec.data, progress=False)
        from cellgi.training.runner import apply_saved_splits

        # the members' own split (one for the series), mapped by sample onto the data as it is now
        apply_saved_splits(bundle, parent / runs[str(seeds[0])], console)
        if len(seeds) > 1:
            out["ensemble"] = evaluate_ensemble(spec, ens, bundle=bundle)
        stacked = stack_folder(parent, spec, ens, bundle, say=console.print) if spec.training.stack is not None else {}
        if stacked:
            out["stack"] = stacked
    if primary:
        write_json(parent / REPLICATES_FILE, out)
        console.print(summary_table(summary, seeds, f"{spec.name}: {len(seeds)} replicates", out.get("ensemble")))
        if out.get("ensemble"):
            from cellgi.training.runner import baseline_verdicts

            # the baselines are the same for every seed (same split): their mean is their value
            merged = {k: v["mean"] for k, v in summary.items() if k.startswith("baseline_") and v["mean"] is not None}
            merged["test.pearson"] = out["ensemble"].get("test.pearson")
            for line in baseline_verdicts(merged, "ensemble test pearson"):
                console.print(line)
            if out.get("stack", {}).get("stack.test.pearson") is not None:
                merged["test.pearson"] = out["stack"]["stack.test.pearson"]
                for line in baseline_verdicts(merged, "stacked test pearson"):
                    console.print(line)
        console.print(f"wrote {parent / REPLICATES_FILE}")
    out["run_dir"] = parent
    return out


def evaluate_ensemble(spec: Any, members: Sequence[str | Path] | LoadedEnsemble, *, device: str = "cpu",
                      bundle: Any = None) -> dict[str, float]:
    """Metrics of the averaged predictions of ``members`` (run folders of ``spec`` with other seeds, or
    their :func:`load_ensemble`) on every non-empty split of ``spec``'s data (``bundle`` when the caller
    built it already), keyed as in ``metrics.json`` (``test.pearson``, ...)."""
    from cellgi.data import build_data
    from cellgi.training.callbacks import flatten_metrics
    from cellgi.metrics import InteractionMetrics

    ens = members if isinstance(members, LoadedEnsemble) else load_ensemble(members, map_location="cpu")
    ens.model.to(device)
    bundle = build_data(spec.data, progress=False) if bundle is None else bundle
    if list(bundle.graph.genes) != list(ens.mapper.genes) or list(bundle.target_names) != list(ens.target_names):
        raise EnsembleError("the members were not trained on this spec's data (genes or targets differ)")
    from cellgi.data.batch import dataset_sets, iter_batches
    from cellgi.predictors.scoring import scorer_for

    ds = bundle.dataset
    scorer = scorer_for(ens)
    out: dict[str, float] = {}
    for split, idx in bundle.splits.items():
        if idx.numel() == 0:
            continue
        metrics = InteractionMetrics.from_spec(bundle.target_names, spec.training.metrics, sync=False)
        padded, mask = dataset_sets(ds, idx)
        for part, p, m in zip(iter_batches(idx, scorer.batch_size), iter_batches(padded, scorer.batch_size),
                              iter_batches(mask, scorer.batch_size)):
            metrics.update(scorer.score_padded(p, m)["pred"], ds.y[part], ds.weight[part])
        out.update(flatten_metrics(split, metrics.compute()))
    return out
