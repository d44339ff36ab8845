"""Metrics of a trained model on a file of measured samples (the library behind ``cellgi evaluate``).

Genes of the file are mapped with the checkpoint's own gene list and mapper (ORFs, case variants,
STRING ids, common names and aliases of the training data). A sample with a gene the model does not
know cannot be evaluated: it is skipped, counted (``n_unmapped``) and reported with the reason. A sample
whose targets are all unmeasured (NaN) for the model's targets is skipped and counted too, so ``n``
always counts samples that enter the metrics; when none is left, :class:`EvaluateError` says why.

Example::

    from cellgi.apps.evaluate import evaluate_screen, screen_description
    from cellgi.predictors import load_predictor

    loaded = load_predictor("runs/my-run/2026-01-01T00-00-00")
    desc = screen_description("emap.tsv", "table", loaded.target_names,
                              gene_columns=["gene_a", "gene_b"], target_columns={"gene_interaction": "epsilon"})
    report = evaluate_screen(loaded, desc)
    report["metrics"]["gene_interaction.pearson"], report["n_samples"]

With ``predictions="eval_rows.tsv"`` every evaluated row is also written, in input order and as the
batches go (never held in memory): the input's gene columns, each with the standard names of its genes
beside it (``gene_a``, ``gene_a_name``), the measured targets and ``prediction`` (``prediction_<target>``
with several targets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, TextIO

import torch
from torch import Tensor

from cellgi.data.batch import dataset_sets, iter_batches
from cellgi.data.readers._table import read_table
from cellgi.data.readers.kuzmin import _ARRAY, _QUERY, _pick, strain_genes
from cellgi.data.screens import load_screen
from cellgi.errors import CellgiError
from cellgi.fileio import atomic_open
from cellgi.metrics import InteractionMetrics

if TYPE_CHECKING:  # pragma: no cover - types only
    from cellgi.data.genes import GeneMapper
    from cellgi.predictors.base import TrainedPredictor

__all__ = ["EvaluateError", "check_output_file", "evaluate_screen", "prediction_columns", "screen_description"]

#: skip reason of samples with no measured value for any of the model's targets
NO_TARGET = "no measured value for the model's targets"


class EvaluateError(CellgiError):
    """Nothing could be evaluated, or the request is inconsistent (``str()`` says what and where)."""

    exit_code = 2


def check_output_file(path: str | Path, flag: str, *, inputs: Sequence[str | Path] = ()) -> Path:
    """``path`` as an output file that can be written, checked before any work.

    Raises:
        EvaluateError: ``path`` is a folder, its folder does not exist or is not writable, the file
            exists and is not writable, or it is one of ``inputs`` (one line naming ``flag``).
    """
    out = Path(path)
    if out.is_dir():
        raise EvaluateError(f"{flag} {out}: is a folder; give a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise EvaluateError(f"{flag} {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise EvaluateError(f"{flag} {out}: not writable (permission denied)")
    resolved = out.resolve()
    if any(resolved == Path(i).resolve() for i in inputs):
        raise EvaluateError(f"{flag} {out}: would overwrite the input")
    return out


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
    loaded: TrainedPredictor,
    screen: dict[str, Any],
    *,
    batch_size: int | None = None,
    device: str | None = None,
    predictions: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a trained predictor (:func:`cellgi.predictors.load_predictor`) on a screen description; the
    JSON report.

    Keys: ``checkpoint, predictor, data, format, targets, missing_targets, unmeasured_targets, n_rows``
    (every data row of the file), ``n_samples`` (rows evaluated; ``n_samples + sum(skipped) == n_rows``),
    ``n_unmapped, n_no_target, skipped, unmapped_identifiers, kinds, metrics`` (``metrics`` keys are
    ``<target>.<metric>``, e.g. ``gene_interaction.pearson``), for a stacked run ``members``: the same
    metrics of each member alone (``network``, ``baseline_features``, ...), and with ``predictions``
    the file written.

    Args:
        loaded: the predictor.
        screen: a :func:`screen_description`.
        batch_size: samples per batch (default: the predictor's
            :meth:`~cellgi.predictors.base.TrainedPredictor.default_batch_size`).
        device: torch device.
        predictions: write every evaluated row to this TSV (see the module docstring), atomically.

    Raises:
        EvaluateError: no sample left (all genes unknown, or no measured value for any model target), or
            ``predictions`` cannot be written (checked before any work).
        DataError: the file is unusable (named, with the line).
    """
    if predictions is not None:
        check_output_file(predictions, "predictions", inputs=[screen["path"]])

    if device is not None:
        try:
            loaded.to(device)
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
    # every data row of the file: the samples mapped plus every row left out on the way, by reason
    n_rows = len(ds) + sum(skipped.values())
    if n_no_target:
        skipped[NO_TARGET] = skipped.get(NO_TARGET, 0) + n_no_target
    if keep.numel() == 0:
        why = (
            f"{n_rows} rows read, {load.n_unmapped} with genes unknown to the model, "
            f"{n_no_target} with no measured value of {provided}"
        )
        raise EvaluateError(f"{screen['path']}: no sample can be evaluated ({why}; skipped: {skipped})")
    scorer = loaded.scorer(batch_size)  # the wildtype once; big batches for local-only models
    bs = scorer.batch_size
    padded, pmask = dataset_sets(ds, keep)
    mspec = loaded.spec.training.metrics
    metrics = InteractionMetrics.from_spec(targets, mspec, sync=False)
    counts = torch.zeros(len(targets), dtype=torch.long)
    members: dict[str, InteractionMetrics] = {}  # a stacked run: each member alone too

    def run(write: Callable[[Tensor, Tensor, Tensor], None] | None) -> None:
        for part, p_b, m_b in zip(iter_batches(keep, bs), iter_batches(padded, bs), iter_batches(pmask, bs)):
            out = scorer.score_padded(p_b, m_b)
            pred = out["pred"].float().cpu()
            y_b, w_b = ds.y[part], ds.weight[part]
            metrics.update(pred, y_b, w_b)
            for name, p in (out.get("members") or {}).items():
                if name not in members:
                    members[name] = InteractionMetrics.from_spec(targets, mspec, sync=False)
                members[name].update(p.float().cpu(), y_b, w_b)
            counts.add_((~torch.isnan(y_b)).sum(dim=0).cpu())
            if write is not None:
                write(part, y_b, pred)

    if predictions is None:
        run(None)
    else:
        rows = _InputGenes(screen, loaded.mapper)
        try:
            with atomic_open(predictions, "w") as fh:
                fh.write("\t".join(rows.header(targets)) + "\n")
                run(lambda part, y_b, pred: rows.write(fh, ds.line[part].tolist(), y_b, pred))
        except OSError as exc:  # a full disk, a folder removed meanwhile: the partial file is removed
            raise EvaluateError(f"predictions {predictions}: could not be written ({exc.strerror or exc})") from None
    values = metrics.compute()
    unmeasured = [t for t, c in zip(targets, counts.tolist()) if c == 0 and t not in missing]
    unmapped = load.unmapped.to_dict(limit=20)
    kinds = ds.kind_counts() if n_no_target == 0 else ds.subset(keep).kind_counts()
    return {
        "checkpoint": str(loaded.path),
        "predictor": loaded.describe(),
        "data": screen["path"],
        "format": screen["format"],
        "targets": targets,
        "missing_targets": missing,
        "unmeasured_targets": unmeasured,
        "n_rows": int(n_rows),
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
        **({"predictions": str(predictions)} if predictions is not None else {}),
    }


def prediction_columns(targets: Sequence[str]) -> list[str]:
    """The prediction columns of ``--predictions``: ``prediction``, or ``prediction_<target>`` per target."""
    return ["prediction"] if len(targets) == 1 else [f"prediction_{t}" for t in targets]


def _number(v: float) -> str:
    return "" if v != v else format(v, ".7g")


class _InputGenes:
    """The gene columns of the evaluated rows, read again from the input file line by line as the batches
    are written, with the standard names of their genes (the ORF where the gene list has no name)."""

    def __init__(self, screen: dict[str, Any], mapper: GeneMapper):
        path = screen["path"]
        self._mapper = mapper
        self._std = {orf: name for name, orf in mapper.names.items()}  # ORF -> standard name (SGD column 5)
        self._names: dict[str, str] = {}
        self._split: Callable[[str], list[str]]
        if screen["format"] == "kuzmin":
            t = read_table(path, None, "Kuzmin screen")
            cols = [_pick(t, _QUERY, None, "query strain", True), _pick(t, _ARRAY, None, "array strain", True)]
            self._split, self._sep = (lambda c: strain_genes(c) if c.strip() else []), "+"
        else:
            t = read_table(path, None, "screen table")
            if screen.get("gene_columns"):
                cols = [t.column(c, "gene column") for c in screen["gene_columns"]]
                self._split, self._sep = (lambda c: [c.strip()] if c.strip() else []), ""
            else:
                cols = [t.column(screen["genes_column"], "genes column")]
                self._split, self._sep = (lambda c: [g.strip() for g in c.split(";") if g.strip()]), ";"
        self._cols: list[int] = [int(c) for c in cols if c is not None]
        self._header = [t.header[c].strip() for c in self._cols]
        self._rows: Iterator[tuple[int, list[str]]] = t.rows
        self._path = path

    def header(self, targets: Sequence[str]) -> list[str]:
        genes = [x for h in self._header for x in (h, f"{h}_name")]
        return genes + list(targets) + prediction_columns(targets)

    def _name(self, ident: str) -> str:
        name = self._names.get(ident)
        if name is None:
            orf = self._mapper.map(ident)
            name = "" if orf is None else self._std.get(orf, orf)
            self._names[ident] = name
        return name

    def _cells(self, line: int) -> list[str]:
        for lineno, fields in self._rows:
            if lineno == line:
                return [fields[c] for c in self._cols]
            if lineno > line:
                break
        raise EvaluateError(f"{self._path}: line {line} was not found again while writing the predictions "
                            "(did the file change during the evaluation?)")

    def write(self, fh: TextIO, lines: Sequence[int], y: Tensor, pred: Tensor) -> None:
        """Append one batch: its input lines (increasing), measured ``y [B, T]`` and ``pred [B, T]``."""
        out = []
        for line, yr, pr in zip(lines, y.tolist(), pred.tolist()):
            row: list[str] = []
            for cell in self._cells(int(line)):
                text = cell.strip()
                row += [text, self._sep.join(self._name(g) for g in self._split(text))]
            row += [_number(v) for v in yr] + [_number(v) for v in pr]
            out.append("\t".join(row) + "\n")
        fh.write("".join(out))

