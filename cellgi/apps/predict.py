"""Predictions for gene sets: parse, map, predict in batches and stream the rows to a TSV.

The library behind ``cellgi predict`` (and the notebook API). Input is one gene set per line, genes
separated by ``;`` (``YAL015C;YBL007C`` or ``ho;abf1``), as ORFs, case variants, STRING ids, common
names or aliases known to the checkpoint's mapper; blank lines and lines starting with ``#`` are ignored.

:func:`predict_file` never holds the input or the output in memory: it reads lines as it goes, predicts
``batch_size`` sets at a time and appends each batch's rows to the output, flushed, so an interrupted
run keeps every batch it finished. Beside the output, ``OUT.predict.json`` records what made it: the
model's digest, the input file's digest and the columns (:mod:`cellgi.provenance`). ``resume=True``
continues such a file: it refuses an output another model, another input or other columns made (naming
what differs), checks the header, drops a partly written last row and skips input lines up to the last
line already written, so no row is written twice.

Speed: the gene sets are scored by the predictor's scorer
(:meth:`~cellgi.predictors.base.TrainedPredictor.scorer`: the wildtype cell computed once; for models
that read only the wildtype, batches of 16,384 sets are gathers and small MLPs). A line that cannot be predicted (unknown gene, a gene named twice, an empty name) is
skipped, counted by reason and reported with its line number. Sets whose size the model never saw in
training (1 gene, or 10, for a model trained on pairs and triples) are predicted but counted and
warned about: such predictions are extrapolations.

Example::

    from cellgi.apps.predict import predict_file
    from cellgi.predictors import load_predictor

    loaded = load_predictor("runs/my-run/2026-01-01T00-00-00")
    report = predict_file(loaded, "sets.txt", "predictions.tsv", batch_size=512)
    report.written, report.skipped, report.unusual_sizes
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from cellgi.apps.interrupt import RowsInterrupted
from cellgi.data.batch import iter_batches, pad_sets
from cellgi.data.genes import GeneMapper
from cellgi.errors import CellgiError
from cellgi.fileio import write_text_atomic
from cellgi.predictors.base import TrainedPredictor
from cellgi.predictors.scoring import Scorer, gene_labels
from cellgi.provenance import check_resume, file_digest, read_record, record

__all__ = [
    "PredictError",
    "PredictInterrupted",
    "PredictReport",
    "iter_gene_sets",
    "output_header",
    "parse_gene_set_line",
    "predict_file",
    "predict_sets",
    "provenance_path",
    "trained_set_sizes",
]

#: how many skipped lines and unusual-size lines a report keeps as examples
EXAMPLES = 20


class PredictError(CellgiError):
    """Unusable input or output for a prediction (``str()`` names the file and, where known, the line)."""

    exit_code = 2


class PredictInterrupted(RowsInterrupted):
    """Ctrl-C (or a signal turned into it) during :func:`predict_file`; ``report`` says what was kept."""

    report: PredictReport


def _category(reason: str) -> str:
    """The kind of a skip reason (``unknown identifier``, ``a gene is named twice``, ...)."""
    if reason.startswith(("empty gene name", "a gene is named twice")):
        return reason
    return reason.split("; ")[0].split(": ", 1)[-1]


def parse_gene_set_line(text: str, mapper: GeneMapper) -> tuple[list[int] | None, str]:
    """Map one ``;``-separated gene set to gene indices: ``(indices, "")`` or ``(None, reason)``."""
    idents = [x.strip() for x in text.strip().split(";")]
    if any(not x for x in idents):
        return None, "empty gene name (check the ';' separators)"
    idx: list[int] = []
    problems: list[str] = []
    for ident in idents:
        gene, reason = mapper.resolve(ident)
        if gene is None:
            problems.append(f"{ident}: {reason}")
        else:
            idx.append(mapper.index(gene))
    if problems:
        return None, "; ".join(problems)
    if len(set(idx)) != len(idx):
        return None, "a gene is named twice"
    return idx, ""


def iter_gene_sets(
    path: str | Path, mapper: GeneMapper, *, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[int, str, list[int] | None, str]]:
    """``(line_number, text, indices or None, reason)`` for every non-blank, non-comment line of ``path``.

    Reads one line at a time (binary, decoded per line, so ``on_bytes`` can report progress in bytes).

    Raises:
        PredictError: the file cannot be read or a line is not UTF-8 (naming the line).
    """
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise PredictError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with fh:
        for no, raw in enumerate(fh, start=1):
            if on_bytes is not None:
                on_bytes(len(raw))
            try:
                line = raw.decode("utf-8-sig" if no == 1 else "utf-8").strip()
            except UnicodeDecodeError as exc:
                raise PredictError(f"{p}:{no}: not UTF-8 text ({exc.reason})") from None
            if not line or line.startswith("#"):
                continue
            idx, reason = parse_gene_set_line(line, mapper)
            yield no, line, idx, reason


def predict_sets(loaded: TrainedPredictor, sets: Sequence[Sequence[int]], *, batch_size: int | None = None,
                 scorer: Scorer | None = None) -> dict[str, Tensor | None]:
    """Predictions for index sets: ``{"pred": [S, T], "local": [S, T] | None, "global": [S, T] | None,
    "gate": [S, 2] | None}`` (float tensors on the CPU, original units for the first three).

    Scored by the predictor's scorer (:meth:`~cellgi.predictors.base.TrainedPredictor.scorer`: the wildtype
    cell once; ``scorer``: one already made for ``loaded``), in batches of ``batch_size`` (default the
    predictor's :meth:`~cellgi.predictors.base.TrainedPredictor.default_batch_size`)."""

    scorer = scorer if scorer is not None else loaded.scorer(batch_size)
    bs = batch_size or scorer.batch_size
    t = len(loaded.target_names)
    padded, mask = pad_sets(sets) if len(sets) else (torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.bool))
    parts = [scorer.score_padded(p, m) for p, m in zip(iter_batches(padded, bs), iter_batches(mask, bs))]

    def cat(key: str) -> Tensor | None:
        xs = [o[key] for o in parts if o.get(key) is not None]
        return torch.cat(xs) if xs and len(xs) == len(parts) else None

    empty = torch.zeros(0, t)
    return {"pred": cat("pred") if parts else empty, "local": cat("local"), "global": cat("global"),
            "gate": cat("gate")}


def trained_set_sizes(loaded: TrainedPredictor) -> set[int] | None:
    """Gene-set sizes the model was trained on (from the checkpoint), or None when not recorded."""
    extra = (loaded.meta or {}).get("extra") or {}
    sizes = extra.get("train_set_sizes")
    if sizes:
        return {int(k) for k in sizes}
    return None


def _sizes_text(sizes: Iterable[int]) -> str:
    s = sorted(sizes)
    if s and s == list(range(s[0], s[-1] + 1)) and len(s) > 1:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


def output_header(names: Sequence[str], out: dict[str, Any]) -> list[str]:
    """Columns of the output TSV for targets ``names`` and the keys present in ``out``: ``line``,
    ``input``, ``genes`` (the mapped ORFs), ``names`` (their standard names, e.g. ``RAD52``; the ORF where
    a gene has none), the targets, then ``local_*``, ``global_*``, ``gate_*``."""
    header = ["line", "input", "genes", "names", *names]
    if out.get("local") is not None:
        header += [f"local_{n}" for n in names]
    if out.get("global") is not None:
        header += [f"global_{n}" for n in names]
    if out.get("gate") is not None:
        header += ["gate_local", "gate_global"]
    return header


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _format_table(values: Any) -> list[str]:
    """Each row of a float array ``[S, C]`` as tab-joined ``%.6g`` cells (``nan`` for NaN)."""
    return ["\t".join([f"{v:.6g}" for v in row]) for row in values.tolist()]


def provenance_path(out: str | Path) -> Path:
    """The record of what made the predictions ``out`` (``OUT.tsv`` -> ``OUT.predict.json``)."""
    p = Path(out)
    return p.with_name(p.stem + ".predict.json") if p.suffix else p.with_name(p.name + ".predict.json")


@dataclass
class PredictReport:
    """What :func:`predict_file` did.

    Attributes:
        output: the TSV written.
        written: rows written by this call.
        already_written: rows found in the output when resuming (kept, not recomputed).
        resumed_after_line: input line after which this call started (0 when not resuming).
        skipped: input lines that could not be predicted.
        skipped_by_reason: count per reason (the first reason of a line).
        skipped_examples: ``(line, text, reason)`` of the first :data:`EXAMPLES` skipped lines.
        trained_sizes: gene-set sizes seen in training (None: not recorded in the checkpoint).
        unusual_sizes: set size -> rows predicted with a size outside ``trained_sizes``.
        unusual_examples: ``(line, text)`` of the first such rows.
        truncated_partial_row: a partly written last row was removed before resuming.
        complete: the whole input was processed.
    """

    output: Path
    written: int = 0
    already_written: int = 0
    resumed_after_line: int = 0
    skipped: int = 0
    skipped_by_reason: Counter = field(default_factory=Counter)
    skipped_examples: list[tuple[int, str, str]] = field(default_factory=list)
    trained_sizes: set[int] | None = None
    unusual_sizes: Counter = field(default_factory=Counter)
    unusual_examples: list[tuple[int, str]] = field(default_factory=list)
    truncated_partial_row: bool = False
    complete: bool = False

    @property
    def unusual(self) -> int:
        return int(sum(self.unusual_sizes.values()))

    def size_warning(self) -> str | None:
        """One line about sets of sizes the model was not trained on, or None."""
        if not self.unusual_sizes:
            return None
        parts = ", ".join(f"{n} with {k} gene{'s' if k != 1 else ''}" for k, n in sorted(self.unusual_sizes.items()))
        return (
            f"{self.unusual} gene set(s) have a size the model was not trained on "
            f"(trained on sets of {_sizes_text(self.trained_sizes or ())} genes): {parts}; "
            f"their predictions are extrapolations"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "written": self.written,
            "already_written": self.already_written,
            "resumed_after_line": self.resumed_after_line,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "trained_set_sizes": sorted(self.trained_sizes) if self.trained_sizes else None,
            "unusual_sizes": {str(k): v for k, v in sorted(self.unusual_sizes.items())},
            "complete": self.complete,
        }


def _existing_output(path: Path) -> tuple[list[str] | None, int, int, bool]:
    """``(header, last_line, rows, truncated)`` of a TSV written by :func:`predict_file`; a partly written
    last row (no newline) is cut off the file. Reads the file once, line by line."""
    header: list[str] | None = None
    last_line = rows = 0
    good_end = 0  # byte offset just after the last complete row
    truncated = False
    with path.open("rb") as fh:
        pos = 0
        for raw in fh:
            pos += len(raw)
            if not raw.endswith(b"\n"):
                truncated = True  # a row cut short by an interruption
                break
            cells = raw.decode("utf-8").rstrip("\n").split("\t")
            if header is None:
                header = cells
            else:
                try:
                    last_line = int(cells[0])
                except ValueError:
                    raise PredictError(f"{path}:{rows + 2}: not a row written by cellgi predict: {raw[:60]!r}") from None
                rows += 1
            good_end = pos
    if truncated:
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return header, last_line, rows, truncated


def predict_file(
    loaded: TrainedPredictor,
    genes_path: str | Path,
    out_path: str | Path,
    *,
    batch_size: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = False,
    on_skip: Callable[[int, str, str], None] | None = None,
) -> PredictReport:
    """Predict every gene set of ``genes_path`` and stream the rows to ``out_path`` (see the module docs).

    Args:
        loaded: a trained predictor (:func:`cellgi.predictors.load_predictor`).
        genes_path: one ``;``-separated gene set per line.
        out_path: output TSV; columns ``line, input, genes, names, <targets>, local_*, global_*, gate_*``;
            beside it ``<out>.predict.json`` records the model's digest, the input's digest and the columns
            (:mod:`cellgi.provenance`).
        batch_size: gene sets per forward pass (and per write); default the predictor's
            :meth:`~cellgi.predictors.base.TrainedPredictor.default_batch_size` (16,384 for models that read
            only the wildtype).
        resume: continue an output left by an interrupted call of the same model on the same input (no
            row written twice; another model, input or column set is refused, naming what differs).
        overwrite: replace an existing output (default: an existing output is an error unless resuming).
        strict: check every line first and write nothing if any cannot be predicted.
        progress: a rich progress bar on stderr (bytes of input read).
        on_skip: called with ``(line, text, reason)`` for every skipped line.

    Raises:
        PredictError: unreadable input, an existing output without ``resume``/``overwrite``, an output
            that does not match this model's columns, ``strict`` failures, or no predictable line.
        ProvenanceError: ``resume`` of an output another model, input or column set made.
    """

    gp, op = Path(genes_path), Path(out_path)
    if op.is_dir():
        raise PredictError(f"{op}: is a folder; give the output file name (e.g. {op / 'predictions.tsv'})")
    if gp.resolve() == op.resolve():
        raise PredictError(f"{op}: the output would overwrite the input")
    if batch_size is not None and batch_size < 1:
        raise PredictError(f"batch size must be at least 1, got {batch_size}")
    try:
        input_digest = file_digest(gp)
    except OSError as exc:
        raise PredictError(f"{gp}: cannot read: {exc.strerror or exc}") from None
    report = PredictReport(output=op, trained_sizes=trained_set_sizes(loaded))
    scorer = loaded.scorer(batch_size)
    batch_size = batch_size or scorer.batch_size
    names = list(loaded.target_names)
    probe = [[0, 1]] if len(loaded.mapper.genes) > 1 else [[0]]
    header = output_header(names, scorer.score_padded(*pad_sets(probe)))  # which parts the predictor has
    prov_path = provenance_path(op)
    prov = record("predict", loaded, input_digest, {"columns": header}, input_path=str(gp))
    old_header: list[str] | None = None
    if op.exists() and resume:
        check_resume(read_record(prov_path), prov, op, prov_path)
        old_header, report.resumed_after_line, report.already_written, report.truncated_partial_row = (
            _existing_output(op)
        )
        if old_header is not None and old_header != header:
            raise PredictError(f"{op}: its columns {old_header} are not this model's {header}; cannot resume it")
    elif op.exists() and not overwrite:
        raise PredictError(f"{op}: exists; --resume continues it, --overwrite replaces it")

    if strict:
        bad = [(no, text, reason) for no, text, idx, reason in iter_gene_sets(gp, loaded.mapper) if idx is None]
        if bad:
            for item in bad[:EXAMPLES]:
                report.skipped_examples.append(item)
            report.skipped = len(bad)
            raise PredictError(
                f"{gp}: {len(bad)} line(s) cannot be predicted (--strict), e.g. line {bad[0][0]}: {bad[0][2]}"
            )

    total = gp.stat().st_size if gp.exists() else None
    bar = _Bar(progress, total, gp.name)
    genes = loaded.mapper.genes
    labels = gene_labels(loaded.mapper)
    fh = None

    def predictable() -> Iterator[tuple[int, str, list[int]]]:
        """The input lines to predict, in order; skipped lines and unusual sizes counted on the way."""
        for no, text, idx, reason in iter_gene_sets(gp, loaded.mapper, on_bytes=bar.advance):
            if no <= report.resumed_after_line:
                continue
            if idx is None:
                report.skipped += 1
                report.skipped_by_reason[_category(reason)] += 1
                if len(report.skipped_examples) < EXAMPLES:
                    report.skipped_examples.append((no, text, reason))
                if on_skip is not None:
                    on_skip(no, text, reason)
                continue
            if report.trained_sizes is not None and len(idx) not in report.trained_sizes:
                report.unusual_sizes[len(idx)] += 1
                if len(report.unusual_examples) < EXAMPLES:
                    report.unusual_examples.append((no, text))
            yield no, text, idx

    def write(pending: list[tuple[int, str, list[int]]]) -> None:
        nonlocal fh
        out = predict_sets(loaded, [s for _, _, s in pending], scorer=scorer)
        if fh is None:
            if old_header is not None:
                fh = op.open("a", encoding="utf-8", newline="")
            else:

                write_text_atomic(prov_path, json.dumps(prov, indent=1) + "\n")
                fh = op.open("w", encoding="utf-8", newline="")
                fh.write("\t".join(header) + "\n")
        cols = [out["pred"]] + [out[k] for k in ("local", "global", "gate") if out[k] is not None]

        values = _format_table(torch.cat(cols, dim=1).numpy())
        fh.write("".join(
            f"{no}\t{text}\t{';'.join([genes[g] for g in s])}\t{';'.join([labels[g] for g in s])}\t{v}\n"
            for (no, text, s), v in zip(pending, values)))
        fh.flush()
        report.written += len(pending)

    try:
        with bar:
            for pending in iter_batches(predictable(), batch_size):
                write(pending)
    except KeyboardInterrupt:
        raise PredictInterrupted(report) from None
    finally:
        if fh is not None:
            fh.close()
    if report.written == 0 and report.already_written == 0:
        raise PredictError(f"{gp}: no line could be predicted ({report.skipped} skipped)")
    report.complete = True
    return report


class _Bar:
    """A rich progress bar over bytes read (stderr); does nothing when disabled."""

    def __init__(self, enabled: bool, total: int | None, label: str):
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self.total, self.label = total, label

    def __enter__(self) -> "_Bar":
        if self.enabled:

            self._progress = Progress(
                TextColumn("predict {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
