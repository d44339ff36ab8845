"""Metrics of a trained model on a file of measured samples (the library behind ``cellgi evaluate``).

Genes of the file are mapped with the checkpoint's own gene list and mapper (ORFs, case variants,
STRING ids, common names and aliases of the training data). A sample with a gene the model does not
know cannot be evaluated: it is skipped, counted (``n_unmapped``) and reported with the reason. A sample
whose targets are all unmeasured (NaN) for the model's targets is skipped and counted too, so ``n``
always counts samples that enter the metrics; when none is left, :class:`EvaluateError` says why.

Example::

    from cellgi.evaluate import evaluate_screen, screen_description
    from cellgi.train.checkpoint import load_model

    loaded = load_model("runs/my-run/2026-01-01T00-00-00")
    desc = screen_description("emap.tsv", "table", loaded.target_names,
                              gene_columns=["gene_a", "gene_b"], target_columns={"gene_interaction": "epsilon"})
    report = evaluate_screen(loaded, desc)
    report["metrics"]["gene_interaction.pearson"], report["n_samples"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from cellgi.errors import CellgiError

__all__ = ["EvaluateError", "evaluate_screen", "screen_description"]

#: skip reason of samples with no measured value for any of the model's targets
NO_TARGET = "no measured value for the model's targets"


class EvaluateError(CellgiError):
    """Nothing could be evaluated, or the request is inconsistent (``str()`` says what and where)."""

    exit_code = 2


def screen_description(
    path: str | Path,
    format: str,
    targets: Sequence[str],
    *,
    gene_columns: Sequence[str] | None = None,
    genes_column: str | None = None,
    target_columns: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ``load_screen`` description of a file to evaluate.

    Args:
        path: the file.
        format: ``kuzmin`` or ``table``.
        targets: the model's targets.
        gene_columns: table: one gene per column (e.g. ``["gene_a", "gene_b"]``).
        genes_column: table: a column of ``;``-joined genes (default ``genes``).
        target_columns: table: target name -> column (default: a column named like the target).

    Raises:
        EvaluateError: a target name that is not the model's, or table options with the kuzmin format.
    """
    p = str(Path(path).resolve())
    if format == "kuzmin":
        if gene_columns or genes_column or target_columns:
            raise EvaluateError("--gene-columns, --genes-column and --target-column apply to --format table only")
        return {"format": "kuzmin", "path": p, "duplicates": "keep_all"}
    if format != "table":
        raise EvaluateError(f"unknown format {format!r} (kuzmin or table)")
    cols: dict[str, str] = {t: t for t in targets}
    for name, col in (target_columns or {}).items():
        if name not in targets:
            raise EvaluateError(f"target {name!r} is not a target of this model ({', '.join(targets)})")
        cols[name] = col
    used = list(cols.values())
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        raise EvaluateError(f"column(s) {dup} are given for more than one target")
    desc: dict[str, Any] = {"format": "table", "path": p, "target_columns": cols, "duplicates": "keep_all"}
    if gene_columns:
        if genes_column:
            raise EvaluateError("give --gene-columns or --genes-column, not both")
        desc["gene_columns"] = list(gene_columns)
    else:
        desc["genes_column"] = genes_column or "genes"
    return desc


def evaluate_screen(
    loaded: Any,
    screen: dict[str, Any],
    *,
    batch_size: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate a :class:`~cellgi.train.checkpoint.LoadedModel` on a screen description; the JSON report.

    Keys: ``checkpoint, predictor, data, format, targets, missing_targets, unmeasured_targets, n_rows,
    n_samples, n_unmapped, n_no_target, skipped, unmapped_identifiers, kinds, metrics`` (``metrics`` keys
    are ``<target>.<metric>``, e.g. ``gene_interaction.pearson``), and for a stacked run ``members``: the
    same metrics of each member alone (``network``, ``baseline_features``, ...).

    Raises:
        EvaluateError: no sample left (all genes unknown, or no measured value for any model target).
        DataError: the file is unusable (named, with the line).
    """
    import torch

    from cellgi.data.screens import load_screen
    from cellgi.train.metrics import InteractionMetrics

    if device is not None:
        try:
            loaded.model.to(device)
        except (RuntimeError, AssertionError, ValueError) as exc:  # torch says "not compiled with CUDA" etc.
            raise EvaluateError(f"device {device!r} is not usable here: {exc}") from None
    targets = list(loaded.target_names)
    load = load_screen(screen, loaded.mapper, targets, root=".")
    ds = load.dataset
    missing = [t for t in targets if t in load.missing_targets]
    provided = [t for t in targets if t not in missing]
    if not provided:
        raise EvaluateError(f"{screen['path']}: the file provides none of the model's targets {targets}")
    y = ds.y
    measured = ~torch.isnan(y).all(dim=1) if len(ds) else torch.zeros(0, dtype=torch.bool)
    n_no_target = int((~measured).sum())
    keep = torch.nonzero(measured).flatten()
    skipped = {str(k): int(v) for k, v in load.reasons.items()}
    if n_no_target:
        skipped[NO_TARGET] = skipped.get(NO_TARGET, 0) + n_no_target
    if keep.numel() == 0:
        why = (
            f"{load.n_rows} rows read, {load.n_unmapped} with genes unknown to the model, "
            f"{n_no_target} with no measured value of {provided}"
        )
        raise EvaluateError(f"{screen['path']}: no sample can be evaluated ({why}; skipped: {skipped})")
    from cellgi.scoring import dataset_sets, iter_batches, scorer_for

    scorer = scorer_for(loaded, batch_size=batch_size)  # the wildtype once; big batches for local-only models
    bs = scorer.batch_size
    padded, pmask = dataset_sets(ds, keep)
    metrics = InteractionMetrics(targets, loaded.spec.training.metrics.strong_threshold, sync=False)
    counts = torch.zeros(len(targets), dtype=torch.long)
    members: dict[str, Any] = {}  # a stacked run: each member alone too
    for part, p_b, m_b in zip(iter_batches(keep, bs), iter_batches(padded, bs), iter_batches(pmask, bs)):
        out = scorer.score_padded(p_b, m_b)
        y_b = ds.y[part]
        metrics.update(out["pred"], y_b)
        for name, p in (out.get("members") or {}).items():
            if name not in members:
                members[name] = InteractionMetrics(targets, loaded.spec.training.metrics.strong_threshold, sync=False)
            members[name].update(p.float().cpu(), y_b)
        counts += (~torch.isnan(y_b)).sum(dim=0).cpu()
    values = metrics.compute()
    unmeasured = [t for t, c in zip(targets, counts.tolist()) if c == 0 and t not in missing]
    unmapped = load.unmapped.to_dict(limit=20)
    kinds = ds.kind_counts() if n_no_target == 0 else ds.subset(keep).kind_counts()
    return {
        "checkpoint": str(loaded.path),
        "predictor": describe_predictor(loaded),
        "data": screen["path"],
        "format": screen["format"],
        "targets": targets,
        "missing_targets": missing,
        "unmeasured_targets": unmeasured,
        "n_rows": int(load.n_rows),
        "n_samples": int(keep.numel()),
        "n_measured": {t: int(c) for t, c in zip(targets, counts.tolist())},
        "n_unmapped": int(load.n_unmapped),
        "n_no_target": n_no_target,
        "skipped": skipped,
        "unmapped_identifiers": unmapped["items"],
        "kinds": kinds,
        "metrics": {k.replace("/", "."): float(v) for k, v in values.items()},
        **({"members": {name: {k.replace("/", "."): float(v) for k, v in m.compute().items()}
                        for name, m in members.items()}} if members else {}),
    }


def describe_predictor(loaded: Any) -> str:
    """What a loaded run predicts with, in words: one model, a seed ensemble, or a stack with its weights."""
    from cellgi.ensemble import LoadedEnsemble
    from cellgi.stack import LoadedStack

    if isinstance(loaded, LoadedStack):
        inner = describe_predictor(loaded.network)
        w = loaded.stack.weights[0].tolist()
        parts = [f"{wk:.2f} x {inner if name == 'network' else name}" for name, wk in zip(loaded.stack.members, w)]
        return "stack (weights fitted on validation): " + " + ".join(parts)
    if isinstance(loaded, LoadedEnsemble):
        return f"seed ensemble of {len(loaded.members)} runs"
    return "one network model"

