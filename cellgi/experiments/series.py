"""Seeds -> ensemble -> stack -> report: the one path above the training layer (``cellgi train``, and
:func:`cellgi.train` / :func:`cellgi.fit`).

:func:`train_series` trains a spec once per seed with :func:`cellgi.training.runner.train` (one run each),
then, on the runs' results: the seed ensemble's metrics (two seeds or more; the members' predictions
averaged, :mod:`cellgi.predictors.ensemble`), the stack (``training.stack``;
:mod:`cellgi.experiments.stacking`), and the files that say what came out, each written once. It returns
one value, :class:`SeriesResult`, which the caller renders (:func:`cellgi.experiments.report.report`).

A single run is a series of one seed (``seeds=None``) in a plain run folder: the spec's own seed, the
folder's ``metrics.json`` written once with the model's, the baselines' and (with a stack) the stack's
metrics. A seed series (``seeds`` given, ``cellgi train SPEC --seeds 0,1,2``) has a parent folder with one
complete run folder per seed, ``<parent>/seed_<s>`` (the spec's ``seed`` replaced: model initialisation,
dropout and batch order; ``data.split.seed`` is kept, so every replicate sees the same split), each with
its own ``metrics.json``; the parent gets ``replicates.json``: per metric of ``metrics.json`` (the model's
and the baselines') the values per seed, their mean and sample standard deviation (``sd``, n-1; ``null``
for one seed), with two seeds or more ``ensemble`` (the same metrics for the seed ensemble), and with a
stack ``stack``. The parent folder itself then loads as that ensemble (``cellgi predict``,
``cellgi evaluate``, ``cellgi.load``).

Resume (``resume=FOLDER``, ``cellgi train --resume FOLDER``): a run continues from its last checkpoint; a
run whose training finished but whose stack or ``metrics.json`` was not written is tested again and
completed; a complete run is reported as such. A series (its parent's ``replicates.plan.json`` holds the
spec and the seeds): finished members are read back, the stopped one continues, the missing ones start,
then the ensemble, the stack and ``replicates.json``.

As a library call the path leaves the process's global state as it found it
(:func:`cellgi.training.runner.global_state_kept`) and turns SIGINT/SIGTERM into
:class:`~cellgi.training.runner.TrainingInterrupted` throughout, the stack included.
"""

from __future__ import annotations

import math
import signal
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lightning.pytorch.callbacks import Callback
from rich.console import Console
from rich.rule import Rule

from cellgi.data.batch import dataset_sets, iter_batches
from cellgi.data.build import DataBundle, build_data
from cellgi.experiments.stacking import stack_folder
from cellgi.metrics import InteractionMetrics
from cellgi.predictors import load_predictor
from cellgi.predictors.ensemble import EnsembleError, LoadedEnsemble, load_ensemble
from cellgi.spec import Spec, SpecError, load_spec, validate_spec
from cellgi.training import runner
from cellgi.training.callbacks import flatten_metrics
from cellgi.training.runner import TrainerConfigError, TrainingInterrupted, TrainResult
from cellgi.runfolder.runs import (
    CKPT_DIR,
    METRICS_FILE,
    PLAN_FILE,
    REPLICATES_FILE,
    SPEC_FILE,
    RunDirError,
    claim_run_dir,
    create_run_dir,
    read_json,
    release_run_dir,
    run_completed,
    timestamp,
    update_run_status,
    write_error,
    write_json,
)

__all__ = ["SeriesResult", "check_series_settings", "check_stack_settings", "evaluate_ensemble",
           "is_replicates_plan", "parse_seeds", "summarize", "train_series"]


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


@dataclass
class SeriesResult:
    """What :func:`train_series` produced: a single run (``series`` False) or a seed series.

    ``run_dir``: the run folder, or the series' parent folder (``cellgi.load`` gives the seed ensemble);
    ``seeds``; ``runs`` (seed -> member folder name, ``"."`` for a single run); ``members`` (seed -> the
    run's :class:`~cellgi.training.runner.TrainResult`); ``summary`` (mean ± sd of every metric over the
    seeds); ``ensemble`` (the seed ensemble's metrics; two seeds or more) and ``stack``
    (``stack.<split>.<metric>`` of the blend, with ``training.stack``).
    """

    run_dir: Path
    seeds: list[int]
    runs: dict[str, str]
    summary: dict[str, dict[str, Any]]
    ensemble: dict[str, float] | None = None
    stack: dict[str, float] | None = None
    members: dict[int, TrainResult] = field(default_factory=dict, repr=False)
    series: bool = True
    spec_name: str = ""
    #: first process (a DDP worker's result has no metrics)
    primary: bool = True
    #: a single run that was complete before (``--resume`` of a finished run): nothing ran
    complete_before: bool = False

    @property
    def run(self) -> TrainResult:
        """The one run of a single run (checkpoints, epochs, ...); the first member of a series."""
        return self.members[self.seeds[0]]

    @property
    def metrics(self) -> dict[str, float]:
        """Keys as in ``metrics.json`` (``test.pearson``, ``stack.test.pearson``, ...): a single run's
        ``metrics.json``; for a series the ensemble's metrics where there is one, else the members' means,
        and the stack's."""
        if not self.series:
            return self.run.metrics
        out = dict(self.ensemble) if self.ensemble else {
            k: v["mean"] for k, v in self.summary.items() if v.get("mean") is not None}
        return {**out, **(self.stack or {})}


def check_stack_settings(spec: Spec) -> None:
    """``training.stack`` needs validation samples to fit its weights: refused before anything runs."""
    if spec.training.stack is not None and not spec.data.split.has_validation:
        raise TrainerConfigError(
            "training.stack: the blend's weights are fitted on the validation split, and data.split gives "
            "none (add a validation fraction, or drop training.stack)"
        )


def check_series_settings(spec: Spec) -> None:
    """A seed series runs its members one after another in this process: no multi-process strategy."""
    tr = spec.training.trainer
    if "ddp" in str(tr.strategy) or tr.num_nodes > 1:
        raise TrainerConfigError(
            f"training.trainer.strategy: seed replicates run in one process and do not combine with "
            f"{tr.strategy!r} (num_nodes {tr.num_nodes}); run one `cellgi train SPEC seed=S training.seeds=null` "
            f"per seed instead"
        )


def train_series(
    spec: Spec | None = None,
    seeds: Sequence[int] | None = None,
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    callbacks: Sequence[Callback] = (),
) -> SeriesResult:
    """Train ``spec`` once per seed, then the ensemble, the stack and the files (see the module docstring).

    Args:
        spec: the validated spec (with ``resume`` optional; a series resumes with its own).
        seeds: ``None``: a single run of the spec's own seed in a plain run folder; a list: a series under
            one parent folder (``run_dir``, default ``runs_root/<name>/<timestamp>``).
        resume: a run folder or a series' parent folder to continue.
        progress: show the rich progress bar.
        console: where progress messages go (default: stdout); the report is the caller's to print.
        callbacks: more Lightning callbacks for each run's trainer.

    A member that fails stops the series; the members finished before it keep their folders.

    Raises:
        TrainerConfigError: a stack without validation split, or a series with a multi-process strategy.
        TrainingInterrupted: SIGINT/SIGTERM (``run_dir``: the run or the series' parent, to resume).
        RunDirError: a run folder that cannot be used; and whatever :func:`cellgi.training.runner.train`
            raises.
    """
    with runner.global_state_kept(), runner.signals_interrupt():
        if resume is not None and is_replicates_plan(resume) and seeds is None:
            return _resume_series(Path(resume), progress=progress, console=console, callbacks=callbacks)
        if seeds is None:
            if spec is not None and resume is None:
                check_stack_settings(spec)
            return _run(spec, None, _Layout(None, run_dir, runs_root, resume), progress=progress,
                        console=console, callbacks=callbacks)
        if spec is None or resume is not None:
            raise ValueError("a seed series starts from a spec; resume one with resume=PARENT and no seeds")
        seeds = list(seeds)
        check_stack_settings(spec)  # the members run without the stack: check the series' own here
        check_series_settings(spec)
        parent = create_run_dir(spec.name, runs_root=runs_root, run_dir=run_dir)  # claimed: run.lock
        try:
            if runner.is_primary_process():
                write_json(parent / PLAN_FILE, {"spec_name": spec.name, "seeds": seeds,
                                                "spec": spec.model_dump(mode="json")})
            return _run(spec, seeds, _Layout(parent), progress=progress, console=console, callbacks=callbacks)
        finally:
            release_run_dir(parent)


def _resume_series(parent: Path, *, progress: bool, console: Console | None,
                   callbacks: Sequence[Callback]) -> SeriesResult:
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
        return _run(spec, seeds, _Layout(parent, resumed=True), progress=progress, console=console,
                    callbacks=callbacks)
    finally:
        release_run_dir(parent)


@dataclass
class _Layout:
    """Where the runs go: a series' parent folder (claimed by the caller), or a single run's folder
    (``run_dir``/``runs_root``, or the run to ``resume``)."""

    parent: Path | None
    run_dir: str | Path | None = None
    runs_root: str | Path = "runs"
    resume: str | Path | None = None
    resumed: bool = False


def _run(spec: Spec | None, seeds: list[int] | None, layout: _Layout, *, progress: bool,
         console: Console | None, callbacks: Sequence[Callback]) -> SeriesResult:
    """The one path: each seed's run, then the ensemble, the stack, and the files."""
    console = console or Console(soft_wrap=True)
    primary = runner.is_primary_process()
    members: dict[int, TrainResult] = {}
    runs: dict[str, str] = {}
    if seeds is not None:  # a series: one member folder per seed under the (claimed) parent
        assert spec is not None and layout.parent is not None
        parent = layout.parent
        if primary:
            console.print(f"replicates: seeds {', '.join(map(str, seeds))} in [bold]{parent}[/bold]"
                          + (" (resumed)" if layout.resumed else ""))
        for s in seeds:
            # at most 100 columns: piped output is 4,000 columns wide (no wrapping), a rule would fill them
            if primary:
                console.print(Rule(f"seed {s}"), width=min(console.width, 100))
            members[s] = _train_member(spec, s, parent / f"seed_{s}", parent, resumed=layout.resumed,
                                       progress=progress, console=console, callbacks=callbacks)
            runs[str(s)] = f"seed_{s}"
    else:  # a single run: a series of its own seed, in a plain run folder
        result = runner.train(spec, run_dir=layout.run_dir, runs_root=layout.runs_root, resume=layout.resume,
                              progress=progress, console=console, callbacks=callbacks)
        if spec is None or layout.resume is not None:  # a resumed run keeps its own spec
            spec = load_spec(result.run_dir / SPEC_FILE)
        members[spec.seed] = result
        runs[str(spec.seed)] = "."
    out = SeriesResult(layout.parent if seeds is not None else result.run_dir, list(members), runs, {},
                       members=members, series=seeds is not None, spec_name=spec.name, primary=primary)
    if primary and seeds is None and not out.run.complete_before:
        _finish_run(spec, out.run, console)
    for r in members.values():  # used by the stack only: the result does not keep the data alive
        r.bundle, r.baselines = None, {}
    out.summary = summarize({s: r.metrics for s, r in members.items()})
    if not primary:
        return out
    if seeds is None:
        out.complete_before = out.run.complete_before
        out.stack = {k: v for k, v in out.run.metrics.items() if k.startswith("stack.")} or None
        return out
    parent = layout.parent
    if len(seeds) > 1 or spec.training.stack is not None:
        # the members and the data once, for the ensemble's metrics and the stack
        ens = load_ensemble([parent / sub for sub in runs.values()])
        bundle = build_data(spec.data, progress=False)
        # the members' own split (one for the series), mapped by sample onto the data as it is now
        runner.apply_saved_splits(bundle, parent / runs[str(seeds[0])], console)
        if len(seeds) > 1:
            out.ensemble = evaluate_ensemble(spec, ens, bundle=bundle)
        if spec.training.stack is not None:
            out.stack = stack_folder(parent, spec, ens, bundle, say=console.print) or None
    record: dict[str, Any] = {"spec": spec.name, "seeds": out.seeds, "runs": runs, "summary": out.summary}
    if out.ensemble is not None:
        record["ensemble"] = out.ensemble
    if out.stack:
        record["stack"] = out.stack
    write_json(parent / REPLICATES_FILE, record)
    return out


def _train_member(spec: Spec, seed: int, sub: Path, parent: Path, *, resumed: bool, progress: bool,
                  console: Console, callbacks: Sequence[Callback]) -> TrainResult:
    """One member of a series: trained, continued or read back; its ``metrics.json`` written once."""
    try:
        if resumed and (run_completed(sub) or (sub / CKPT_DIR / "last.ckpt").is_file()):
            # a finished member is read back at once; a stopped one continues from its last checkpoint
            result = runner.train(None, resume=sub, progress=progress, console=console, callbacks=callbacks)
        else:
            if resumed and sub.exists():  # stopped before its first checkpoint: kept aside, started again
                sub.rename(sub.with_name(f"{sub.name}.incomplete-{timestamp()}"))
            # each member is one run: its spec names its own seed and no replicate list of its own
            # (the stack, if any, is fitted once for the series' ensemble)
            member = spec.model_copy(update={"seed": seed, "training": spec.training.model_copy(
                update={"seeds": None, "stack": None})})
            result = runner.train(member, run_dir=sub, progress=progress, console=console, callbacks=callbacks)
        if not result.complete_before and result.primary:
            _write_metrics(sub, result.metrics)
    except TrainingInterrupted as exc:  # point the user at the series, not at the member
        raise TrainingInterrupted(exc.signum, parent) from None
    return result


def _finish_run(spec: Spec, run: TrainResult, console: Console) -> None:
    """A single run's outputs after training: its stack (``training.stack``) and its ``metrics.json``,
    written once and complete. The folder is claimed while they are written; a signal or an error here
    marks the run interrupted or failed, and its resume tests the trained model again and completes them."""
    rdir = run.run_dir
    claim_run_dir(rdir)
    try:
        if spec.training.stack is not None:
            if run.bundle is not None and runner.measured_sizes(run.bundle)["val"] > 0:
                # the baselines the run fitted for its metrics are the ones blended (fitted once per run)
                run.metrics.update(stack_folder(rdir, spec, load_predictor(rdir, stack=False), run.bundle,
                                                console.print, fitted=run.baselines))
            else:
                console.print("[yellow]warning:[/yellow] training.stack not fitted: the validation split has no "
                              "measured rows; the run folder predicts with the network alone")
        _write_metrics(rdir, run.metrics)
    except TrainingInterrupted as exc:
        exc.run_dir = rdir
        _mark(rdir, status="interrupted", signal=signal.Signals(exc.signum).name)
        raise
    except (KeyboardInterrupt, SystemExit):
        _mark(rdir, status="interrupted")
        raise
    except BaseException as exc:
        _mark(rdir, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        release_run_dir(rdir)


def _write_metrics(folder: Path, metrics: dict[str, float]) -> None:
    """``metrics.json`` of a run folder: its one writer."""
    path = folder / METRICS_FILE
    try:
        write_json(path, metrics)
    except OSError as exc:
        raise write_error(path, exc) from exc


def _mark(rdir: Path, **fields: Any) -> None:
    """Record a stop after training in run.json (best effort: a full disk must not hide the real error)."""
    try:
        update_run_status(rdir, **fields)
    except OSError:
        pass


def evaluate_ensemble(spec: Spec, members: Sequence[str | Path] | LoadedEnsemble, *, device: str = "cpu",
                      bundle: DataBundle | None = None) -> dict[str, float]:
    """Metrics of the averaged predictions of ``members`` (run folders of ``spec`` with other seeds, or
    their :func:`load_ensemble`) on every non-empty split of ``spec``'s data (``bundle`` when the caller
    built it already), keyed as in ``metrics.json`` (``test.pearson``, ...)."""
    ens = members if isinstance(members, LoadedEnsemble) else load_ensemble(members, map_location="cpu")
    ens.model.to(device)
    bundle = build_data(spec.data, progress=False) if bundle is None else bundle
    if list(bundle.graph.genes) != list(ens.mapper.genes) or list(bundle.target_names) != list(ens.target_names):
        raise EnsembleError("the members were not trained on this spec's data (genes or targets differ)")
    ds = bundle.dataset
    scorer = ens.scorer()
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
