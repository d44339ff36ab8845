"""Virtual screens: score every array gene (or every pair of a gene list) against query genes or pairs.

The library behind ``cellgi screen`` (and the notebook API). A *query* is a set of one or more genes (a
query gene, or a query pair for trigenic screens); for each query the screen predicts

- ``arrays`` mode: every array gene ``a`` (default: every gene of the model) as the set ``query + {a}``;
- ``pairs`` mode: every unordered pair ``{a, b}`` of a gene list as ``query + {a, b}`` (the query may be
  empty: then every pair of the list, a digenic screen).

Array genes that belong to the query are left out (a set never names a gene twice).

Speed, exactly: the screen scores with the predictor's scorer
(:meth:`~cellgi.predictors.base.TrainedPredictor.scorer`, as ``cellgi predict`` and ``evaluate`` do), which computes the model's initial gene states and the wildtype cell once per screen
instead of once per batch (:meth:`~cellgi.nn.model.LazyDango.wildtype_states`) and runs each batch's
perturbed columns only; a model without a global part (``local_only``) runs no message passing per
batch at all, only gathers, table look-ups and its heads, on 16,384 sets at a time. Predictions equal
``LazyDango.forward`` on the same sets up to float rounding (tests/predictors/test_scoring.py, tests/apps/test_screen.py).
The sets of a batch are made without Python loops (:meth:`ScreenPlan.array_block`), the Parquet columns
with pyarrow kernels, and the top-K is merged with numpy, labels made for candidates only, so a
whole-genome pairs screen (17 million pairs) is bound by the model, not by the bookkeeping. What a fixed query shares
beyond that is small on a yeast-scale graph: its deletions change about 12% of the first layer's rows,
which the first-layer delta already recomputes only where they change, and from the second layer on
nearly every gene is within reach of the array gene's neighbours through the dense STRING edge types
(docs/performance.md, "Virtual screens").

Output, streamed while the screen runs (nothing is held in memory):

- ``OUT.tsv``: one row per prediction, in plan order: ``query``, ``query_names``, ``array``,
  ``array_names`` (gene names joined by ``;``, then their standard names, e.g. ``RAD52`` for
  ``YML032C``), one column per target in original units; or ``OUT.parquet``: the same rows as a folder
  of Parquet part files (``part-000000.parquet``, ..., up to 1,048,576 rows each, one row group per
  batch; read it with ``pandas.read_parquet("OUT.parquet")``; needs ``pip install cellgi[parquet]``);
- ``OUT.top.tsv``: per query, the ``top_k`` strongest negative and positive predictions of the ranking
  target (with the same name columns), rewritten (atomically) whenever a query completes;
- ``OUT.screen.json``: what made the output (:mod:`cellgi.provenance`): the model's digest, the plan's
  digest and the options that change rows, so that ``resume=True`` refuses to continue another model's,
  another plan's or other options' output, naming what differs.

Resuming: TSV rows are flushed batch by batch; a Parquet part is written to ``part-N.parquet.tmp`` and
renamed when full or when the screen stops (Ctrl-C included; a ``kill -9`` loses the open part only,
whose ``.tmp`` a resume removes), so an interrupted screen keeps every finished batch; ``resume=True`` counts the rows already there (a partly written TSV row is
dropped), skips that many predictions of the plan and continues, so no row is written twice. The top-K of
a query that was cut is rebuilt from its rows in the output.

Example::

    from cellgi.apps.screen import plan_screen, run_screen
    from cellgi.predictors import load_predictor

    loaded = load_predictor("runs/my-run/2026-01-01T00-00-00")
    plan = plan_screen(loaded.mapper, queries=["YAL015C;YBL007C"])  # one query pair x every gene
    report = run_screen(loaded, plan, "screen.parquet", top_k=50)
    report.written, report.predictions_per_s
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cellgi.apps.interrupt import RowsInterrupted
from cellgi.data.batch import iter_batches
from cellgi.data.genes import GeneMapper
from cellgi.errors import CellgiError
from cellgi.fileio import write_text_atomic
from cellgi.predictors.base import TrainedPredictor
from cellgi.predictors.scoring import gene_labels
from cellgi.provenance import ProvenanceError, check_resume, read_record, record, text_digest

# pyarrow is optional (the parquet extra): the Parquet writer imports it where it is used, so that a TSV
# screen runs without it and a Parquet one without it is a clear ScreenError

__all__ = [
    "ScreenError",
    "ScreenInterrupted",
    "ScreenPlan",
    "ScreenReport",
    "plan_screen",
    "read_gene_list",
    "run_screen",
]

MODES = ("arrays", "pairs")


class ScreenError(CellgiError):
    """Unusable screen input or output (names the file and line, or the option)."""

    exit_code = 2


class ScreenInterrupted(RowsInterrupted):
    """Ctrl-C (or a signal turned into it) during :func:`run_screen`; ``report`` says what was kept."""

    report: ScreenReport


# ------------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class ScreenPlan:
    """Which gene sets a screen predicts, in which order.

    Attributes:
        queries: gene indices of each query (an empty tuple only in ``pairs`` mode).
        genes: the array genes (``arrays`` mode) or the gene list whose pairs are screened (``pairs``).
        mode: ``arrays`` or ``pairs``.
        gene_names: name of every gene index of the model (for labels).
    """

    queries: tuple[tuple[int, ...], ...]
    genes: tuple[int, ...]
    mode: str
    gene_names: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ScreenError(f"screen mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.queries:
            raise ScreenError("a screen needs at least one query")
        if self.mode == "arrays" and any(len(q) == 0 for q in self.queries):
            raise ScreenError("an arrays screen needs at least one gene per query")

    def label(self, idx: Sequence[int]) -> str:
        return ";".join(self.gene_names[i] for i in idx)

    def _others(self, q: Sequence[int]) -> list[int]:
        qs = set(q)
        return [g for g in self.genes if g not in qs]

    def count(self, qi: int) -> int:
        """Predictions for query ``qi``."""
        m = len(self._others(self.queries[qi]))
        return m if self.mode == "arrays" else m * (m - 1) // 2

    @property
    def total(self) -> int:
        return sum(self.count(i) for i in range(len(self.queries)))

    def arrays_of(self, qi: int, start: int = 0) -> Iterator[tuple[int, ...]]:
        """The array genes of query ``qi``'s predictions, in order, from its ``start``-th on."""
        others = self._others(self.queries[qi])
        it = ((a,) for a in others) if self.mode == "arrays" else itertools.combinations(others, 2)
        return itertools.islice(it, start, None)

    def array_block(self, qi: int, start: int, count: int) -> np.ndarray:
        """The array genes of query ``qi``'s predictions ``start .. start+count-1`` as ``[count, k]`` gene
        indices (``k`` = 1 for arrays, 2 for pairs), in the order of :meth:`arrays_of`; vectorised (the
        ``r``-th pair of ``m`` genes is found from the row offsets of the upper triangle)."""
        others = np.asarray(self._others(self.queries[qi]), dtype=np.int64)
        r = np.arange(start, start + count, dtype=np.int64)
        if self.mode == "arrays":
            return others[r].reshape(-1, 1)
        m = others.size
        i_all = np.arange(m, dtype=np.int64)
        offsets = i_all * m - i_all * (i_all + 1) // 2  # pairs before row i: (i, i+1), ..., (i, m-1)
        i = np.searchsorted(offsets, r, side="right") - 1
        j = r - offsets[i] + i + 1
        return np.stack([others[i], others[j]], axis=1)

    def fingerprint(self, full: bool = False) -> str:
        """A digest of the plan (mode, queries, genes and their names); 16 hex digits, or all 64."""
        text = json.dumps({"mode": self.mode, "queries": self.queries, "genes": self.genes,
                           "names": [self.gene_names[i] for i in self.genes]})
        digest = hashlib.sha256(text.encode()).hexdigest()
        return digest if full else digest[:16]


def read_gene_list(path: str | Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every non-blank, non-comment line of a gene list or query file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScreenError(f"{p}: cannot read: {exc.strerror or exc}") from None
    out = []
    for no, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8-sig" if no == 1 else "utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ScreenError(f"{p}:{no}: not UTF-8 text ({exc.reason})") from None
        if text and not text.startswith("#"):
            out.append((no, text))
    return out


def _resolve(mapper: GeneMapper, ident: str, where: str) -> int:
    gene, reason = mapper.resolve(ident)
    if gene is None:
        raise ScreenError(f"{where}: gene {ident!r}: {reason}")
    return mapper.index(gene)


def plan_screen(
    mapper: GeneMapper,
    queries: Sequence[str] | None = None,
    *,
    queries_file: str | Path | None = None,
    arrays: Sequence[str] | None = None,
    arrays_file: str | Path | None = None,
    pairs_of: Sequence[str] | None = None,
    pairs_file: str | Path | None = None,
) -> ScreenPlan:
    """A :class:`ScreenPlan` from gene identifiers (anything the model's mapper resolves: ORFs, names,
    aliases). ``queries``: ``;``-separated gene sets (``"YAL015C;YBL007C"``); ``arrays``/``pairs_of``
    (or the ``*_file`` variants, one gene per line) choose the mode; neither: every gene as an array.

    Raises:
        ScreenError: an unknown or repeated gene (naming where), an empty selection, both modes at once.
    """
    qtexts: list[tuple[str, str]] = [(f"query {i + 1}", q) for i, q in enumerate(queries or [])]
    if queries_file is not None:
        qtexts += [(f"{queries_file}:{no}", t) for no, t in read_gene_list(queries_file)]
    mode = "pairs" if (pairs_of is not None or pairs_file is not None) else "arrays"
    if mode == "pairs" and (arrays is not None or arrays_file is not None):
        raise ScreenError("choose arrays (query x array gene) or pairs (query x pair of a list), not both")
    qsets: list[tuple[int, ...]] = []
    for where, text in qtexts:
        idents = [x.strip() for x in text.split(";")]
        if any(not x for x in idents):
            raise ScreenError(f"{where}: empty gene name in {text!r} (genes are separated by ';')")
        idx = tuple(_resolve(mapper, x, where) for x in idents)
        if len(set(idx)) != len(idx):
            raise ScreenError(f"{where}: {text!r} names a gene twice")
        qsets.append(idx)
    if len(set(qsets)) != len(qsets):
        raise ScreenError("a query is listed twice")
    if not qsets:
        if mode == "arrays":
            raise ScreenError("no query: give query genes or pairs (e.g. --query YAL015C;YBL007C)")
        qsets = [()]  # pairs of the list alone
    names = list((pairs_of if mode == "pairs" else arrays) or [])
    sources = [(f"gene {i + 1}", x) for i, x in enumerate(names)]
    listed = pairs_file if mode == "pairs" else arrays_file
    if listed is not None:
        sources += [(f"{listed}:{no}", t) for no, t in read_gene_list(listed)]
    if mode == "arrays" and arrays is None and arrays_file is None:
        genes = list(range(len(mapper.genes)))
    else:
        genes, seen = [], {}
        for where, ident in sources:
            g = _resolve(mapper, ident, where)
            if g in seen:
                raise ScreenError(f"{where}: gene {ident!r} is listed twice (first at {seen[g]})")
            seen[g] = where
            genes.append(g)
        if not genes:
            raise ScreenError(f"the {'pair' if mode == 'pairs' else 'array'} gene list is empty")
    plan = ScreenPlan(tuple(qsets), tuple(genes), mode, tuple(mapper.genes))
    if plan.total == 0:
        raise ScreenError("the screen has no gene set to predict (every listed gene is a query gene)")
    return plan


# --------------------------------------------------------------------------------------------- writers
class _Labels:
    """Gene labels by index: the gene list's names (ORFs) and their standard names (``RAD52``)."""

    def __init__(self, genes: Sequence[str], names: Sequence[str]):
        self.genes, self.names = list(genes), list(names)

    def join(self, idx: Sequence[int], standard: bool = False) -> str:
        table = self.names if standard else self.genes
        return ";".join(table[i] for i in idx)


class _TsvRows:
    suffix = ".tsv"

    def __init__(self, path: Path, header: list[str], labels: _Labels):
        self.path, self.header, self.labels = path, header, labels
        self._fh: Any = None

    def existing_rows(self) -> int:
        """Complete rows already in the file (after checking the header and dropping a partial row)."""
        with self.path.open("rb+") as fh:
            first = fh.readline()
            if first.decode("utf-8", "replace").rstrip("\n").split("\t") != self.header:
                raise ScreenError(f"{self.path}: its header is not this screen's; cannot resume")
            rows, good = 0, fh.tell()
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                rows += 1
                good += len(line)
            fh.truncate(good)
        return rows

    def open(self, fresh: bool) -> None:
        self._fh = self.path.open("w" if fresh else "a", encoding="utf-8", newline="")
        if fresh:
            self._fh.write("\t".join(self.header) + "\n")
            self._fh.flush()

    def append(self, query: Sequence[int], arrays: Any, values: Any) -> None:
        """Rows of query ``query`` (gene indices) x ``arrays [S, k]`` (gene indices), ``values [S, T]``."""
        lab = self.labels
        q, qn = lab.join(query), lab.join(query, True)
        g, n = lab.genes, lab.names
        self._fh.write("".join(
            f"{q}\t{qn}\t{';'.join([g[i] for i in a])}\t{';'.join([n[i] for i in a])}\t"
            + "\t".join([f"{v:.6g}" for v in vals]) + "\n"
            for a, vals in zip(arrays.tolist(), values.tolist())
        ))
        self._fh.flush()

    def read_from(self, start: int, count: int, column: str) -> tuple[list[str], list[str], list[float]]:
        """``(array labels, array names, values of column)`` of ``count`` rows from the ``start``-th on."""
        ci = self.header.index(column)
        arr, names, vals = [], [], []
        with self.path.open(encoding="utf-8") as fh:
            next(fh)
            for i, line in enumerate(fh):
                if i >= start + count:
                    break
                if i >= start:
                    f = line.rstrip("\n").split("\t")
                    arr.append(f[2])
                    names.append(f[3])
                    vals.append(float(f[ci]))
        return arr, names, vals

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class _ParquetRows:
    """A folder of Parquet parts, each written to ``part-NNNNNN.parquet.tmp`` batch by batch (one row group
    per batch) and renamed into place when it holds :attr:`part_rows` rows or the screen stops (Ctrl-C
    included): every complete part is final. A ``kill -9`` loses the open part only (its ``.tmp`` is
    removed on resume, and its rows are scored again)."""

    suffix = ".parquet"
    #: rows per part file (about 20 MB at one target)
    part_rows = 1 << 20

    def __init__(self, path: Path, header: list[str], labels: _Labels):
        try:
            import pyarrow as pa
        except ImportError:
            raise ScreenError(
                f"{path}: writing Parquet needs pyarrow: pip install 'cellgi[parquet]' (or write .tsv)"
            ) from None
        self.path, self.header, self.labels = path, header, labels
        self._next = 0
        self._writer: Any = None
        self._rows_in_part = 0
        self._genes = pa.array(labels.genes, pa.string())
        self._names = pa.array(labels.names, pa.string())
        self._schema = pa.schema([(c, pa.string()) for c in header[:4]] + [(c, pa.float32()) for c in header[4:]])

    def _parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet"))

    def existing_rows(self) -> int:
        import pyarrow.parquet as pq

        if not self.path.is_dir():
            raise ScreenError(f"{self.path}: not a folder of Parquet parts; cannot resume")
        for tmp in self.path.glob("part-*.parquet.tmp"):  # a part open when the process was killed
            tmp.unlink()
        rows = 0
        for i, part in enumerate(self._parts()):
            if part.name != f"part-{i:06d}.parquet":
                raise ScreenError(f"{part}: parts are not numbered 0, 1, 2, ...; cannot resume")
            meta = pq.read_metadata(part)
            if meta.schema.names != self.header:
                raise ScreenError(f"{part}: its columns are not this screen's; cannot resume")
            rows += meta.num_rows
        self._next = len(self._parts())
        return rows

    def open(self, fresh: bool) -> None:
        if fresh:
            if self.path.exists():
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            self.path.mkdir(parents=True)
            self._next = 0

    def _tmp(self) -> Path:
        return self.path / f"part-{self._next:06d}.parquet.tmp"

    def _join(self, table: Any, idx: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = [table.take(pa.array(idx[:, j])) for j in range(idx.shape[1])]
        return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, ";")

    def append(self, query: Sequence[int], arrays: Any, values: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = arrays.shape[0]
        cols = [pa.array([self.labels.join(query)] * n, pa.string()),
                pa.array([self.labels.join(query, True)] * n, pa.string()),
                self._join(self._genes, arrays), self._join(self._names, arrays)]
        vals = np.asarray(values, dtype=np.float32)
        cols += [pa.array(vals[:, j]) for j in range(vals.shape[1])]
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp(), self._schema)
        self._writer.write_table(pa.Table.from_arrays(cols, schema=self._schema))
        self._rows_in_part += n
        if self._rows_in_part >= self.part_rows:
            self._finish_part()

    def _finish_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        tmp = self._tmp()
        os.replace(tmp, self.path / f"part-{self._next:06d}.parquet")
        self._next += 1
        self._rows_in_part = 0

    def read_from(self, start: int, count: int, column: str) -> tuple[list[str], list[str], list[float]]:
        import pyarrow.parquet as pq

        self._finish_part()
        seen = 0
        arr: list[str] = []
        names: list[str] = []
        vals: list[float] = []
        for part in self._parts():
            m = pq.read_metadata(part).num_rows
            if seen + m > start and seen < start + count:
                t = pq.read_table(part, columns=["array", "array_names", column])
                lo, hi = max(0, start - seen), min(m, start + count - seen)
                t = t.slice(lo, hi - lo)
                arr += t.column("array").to_pylist()
                names += t.column("array_names").to_pylist()
                vals += [float(v) for v in t.column(column).to_numpy(zero_copy_only=False)]
            seen += m
        return arr, names, vals

    def close(self) -> None:
        self._finish_part()


def _writer(path: Path, header: list[str], labels: _Labels) -> _TsvRows | _ParquetRows:
    if path.suffix == ".parquet":
        return _ParquetRows(path, header, labels)
    if path.suffix == ".tsv":
        return _TsvRows(path, header, labels)
    raise ScreenError(f"{path}: the output must end in .tsv or .parquet")


# ----------------------------------------------------------------------------------------------- top-k
class _TopK:
    """The ``k`` most negative and most positive values seen, with their row keys (merged batch by batch,
    vectorised; ties keep the earlier row)."""

    def __init__(self, k: int):
        self.k = k
        self.low_v, self.high_v = np.zeros(0), np.zeros(0)
        self.low_r: list[Any] = []
        self.high_r: list[Any] = []

    def add(self, values: Any, rows: Callable[[Any], list[Any]]) -> None:
        """``values [S]`` of a batch; ``rows(indices)`` gives the row keys of the batch's chosen indices (so
        labels are made for candidates only)."""

        if self.k <= 0:
            return
        v = np.asarray(values, dtype=np.float64)
        ok = np.flatnonzero(~np.isnan(v))
        if ok.size == 0:
            return
        for side in ("low", "high"):
            key = v[ok] if side == "low" else -v[ok]
            cand = ok[np.argsort(key, kind="stable")[: self.k]]
            old_v = getattr(self, f"{side}_v")
            all_v = np.concatenate([old_v, v[cand]])
            all_r = getattr(self, f"{side}_r") + rows(cand)
            order = np.argsort(all_v if side == "low" else -all_v, kind="stable")[: self.k]
            setattr(self, f"{side}_v", all_v[order])
            setattr(self, f"{side}_r", [all_r[i] for i in order])

    def rows(self, query: str, query_names: str) -> list[str]:
        out = [f"{query}\t{query_names}\tnegative\t{r}\t{a}\t{n}\t{v:.6g}"
               for r, (v, (a, n)) in enumerate(zip(self.low_v.tolist(), self.low_r), 1) if v < 0]
        out += [f"{query}\t{query_names}\tpositive\t{r}\t{a}\t{n}\t{v:.6g}"
                for r, (v, (a, n)) in enumerate(zip(self.high_v.tolist(), self.high_r), 1) if v > 0]
        return out


# ------------------------------------------------------------------------------------------------- run
@dataclass
class ScreenReport:
    """What :func:`run_screen` did.

    Attributes:
        output: the rows' file (TSV) or folder (Parquet).
        top_path: the per-query top-K TSV.
        total: predictions in the plan.
        written: rows written by this call.
        already_written: rows found in the output when resuming.
        seconds: time spent predicting and writing in this call (after the wildtype pass).
        setup_seconds: the once-per-screen work (initial states and the wildtype cell).
        complete: every prediction of the plan is in the output.
    """

    output: Path
    top_path: Path
    total: int
    written: int = 0
    already_written: int = 0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    complete: bool = False

    @property
    def predictions_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else float("nan")


def _paths(output: str | Path) -> tuple[Path, Path, Path]:
    out = Path(output)
    stem = out.with_suffix("")
    return out, Path(f"{stem}.top.tsv"), Path(f"{stem}.screen.json")


def run_screen(
    loaded: TrainedPredictor,
    plan: ScreenPlan,
    output: str | Path,
    *,
    top_k: int = 20,
    batch_size: int | None = None,
    rank_target: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> ScreenReport:
    """Run ``plan`` with a trained predictor (:func:`cellgi.predictors.load_predictor`: one network, a seed
    ensemble, a stacked folder, a plugin's kind), streaming rows to ``output`` (see the module docs).

    Args:
        top_k: strongest negative and positive predictions kept per query (0: no top file).
        batch_size: gene sets per forward pass and per write (default the predictor's
            :meth:`~cellgi.predictors.base.TrainedPredictor.default_batch_size`: 16,384 for models that read
            only the wildtype).
        rank_target: target ranked for the top-K (default the first).
        resume: continue an interrupted screen of the same plan, model and options in ``output``.
        overwrite: replace an existing ``output``.
        progress: show a progress bar with predictions/s (stderr).
        on_batch: called with (rows written so far in this call, total still to do) after each batch.

    Raises:
        ScreenError: unusable output (exists without resume/overwrite; another plan, model or options;
            bad header).
        ScreenInterrupted: Ctrl-C; every finished batch is kept.
    """

    if batch_size is not None and batch_size < 1:
        raise ScreenError(f"batch size must be at least 1, got {batch_size}")
    if top_k < 0:
        raise ScreenError(f"top-k must be >= 0, got {top_k}")
    if resume and overwrite:
        raise ScreenError("resume and overwrite exclude each other")
    targets = list(loaded.target_names)
    rank_target = rank_target or targets[0]
    if rank_target not in targets:
        raise ScreenError(f"rank target {rank_target!r} is not a target of the model ({', '.join(targets)})")
    out, top_path, state_path = _paths(output)
    header = ["query", "query_names", "array", "array_names", *targets]
    labels = _Labels(plan.gene_names, gene_labels(loaded.mapper) if len(loaded.mapper.genes) == len(plan.gene_names)
                     else plan.gene_names)
    writer = _writer(out, header, labels)
    options = {"mode": plan.mode, "queries": [plan.label(q) for q in plan.queries], "total": plan.total,
               "columns": header, "top_k": top_k, "rank_target": rank_target, "format": writer.suffix.lstrip(".")}
    state = record("screen", loaded, text_digest(plan.fingerprint(full=True)), options)
    state.update(fingerprint=plan.fingerprint(), total=plan.total, targets=targets)
    done_rows = 0
    top_lines: list[str] = []
    done_queries: set[str] = set()
    if out.exists() and not (resume or overwrite):
        raise ScreenError(f"{out} exists: use resume to continue it or overwrite to replace it")
    if resume and out.exists():
        try:
            check_resume(read_record(state_path), state, out, state_path)
        except ProvenanceError as exc:
            raise ScreenError(f"{out} holds another screen, or another model's rows: {exc}") from None
        done_rows = writer.existing_rows()
        if top_path.exists():
            top_lines = top_path.read_text(encoding="utf-8").splitlines()[1:]
            done_queries = {line.split("\t", 1)[0] for line in top_lines}
        writer.open(fresh=False)
    else:

        write_text_atomic(state_path, json.dumps(state, indent=1) + "\n")
        writer.open(fresh=True)
        top_path.unlink(missing_ok=True)
    if done_rows > plan.total:
        raise ScreenError(f"{out} has {done_rows} rows, more than the plan's {plan.total}; cannot resume")

    report = ScreenReport(out, top_path, plan.total, already_written=done_rows)
    counts = [plan.count(i) for i in range(len(plan.queries))]
    ti = targets.index(rank_target)
    t_setup = time.perf_counter()
    scorer = loaded.scorer(batch_size)
    batch_size = batch_size or scorer.batch_size
    report.setup_seconds = time.perf_counter() - t_setup
    bar = _Progress(plan.total, done_rows) if progress else None
    t0 = time.perf_counter()
    try:

        first_row = 0
        for qi, q in enumerate(plan.queries):
            qlabel, qnames = labels.join(q), labels.join(q, True)
            end_row = first_row + counts[qi]
            if end_row <= done_rows and (qlabel in done_queries or top_k == 0):
                first_row = end_row
                continue
            tracker = _TopK(top_k)
            start = max(0, done_rows - first_row)
            if start and top_k:  # rows of this query written before the interruption
                arr, names, vals = writer.read_from(first_row, start, rank_target)
                tracker.add(vals, lambda idx, arr=arr, names=names: [(arr[i], names[i]) for i in idx])
            for rows in iter_batches(range(start, counts[qi]), batch_size):  # plan rows of this query
                arrays = plan.array_block(qi, rows.start, len(rows))  # [S, k]
                sets = np.concatenate([np.broadcast_to(np.asarray(q, dtype=np.int64), (arrays.shape[0], len(q))),
                                       arrays], axis=1)
                padded = torch.from_numpy(np.ascontiguousarray(sets))
                pred = scorer.score_padded(padded, torch.ones(padded.shape, dtype=torch.bool))["pred"].numpy()
                writer.append(q, arrays, pred)
                tracker.add(pred[:, ti], lambda idx, arrays=arrays: [
                    (labels.join(arrays[i]), labels.join(arrays[i], True)) for i in idx])
                report.written += arrays.shape[0]
                report.seconds = time.perf_counter() - t0
                if bar is not None:
                    bar.advance(arrays.shape[0], qlabel, report.predictions_per_s)
                if on_batch is not None:
                    on_batch(report.written, plan.total - done_rows)
            if top_k:
                top_lines = [x for x in top_lines if x.split("\t", 1)[0] != qlabel] + tracker.rows(qlabel, qnames)
                _write_top(top_path, rank_target, top_lines)
            first_row = end_row
    except KeyboardInterrupt:
        report.seconds = time.perf_counter() - t0
        raise ScreenInterrupted(report) from None
    finally:
        writer.close()
        if bar is not None:
            bar.stop()
    report.seconds = time.perf_counter() - t0
    report.complete = True
    return report


def _write_top(path: Path, target: str, lines: list[str]) -> None:
    write_text_atomic(path, "\t".join(["query", "query_names", "direction", "rank", "array", "array_names", target])
                      + "\n" + "".join(line + "\n" for line in lines))


class _Progress:
    """A rich progress bar on stderr: predictions done of the plan, predictions/s, time left."""

    def __init__(self, total: int, done: int):
        self._p = Progress(
            TextColumn("[bold]screen[/] {task.fields[query]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True),
            transient=False,
        )
        self._task = self._p.add_task("screen", total=total, completed=done, query="", rate="")
        self._p.start()

    def advance(self, n: int, query: str, rate: float) -> None:
        self._p.update(self._task, advance=n, query=query, rate=f"{rate:,.1f} predictions/s")

    def stop(self) -> None:
        self._p.stop()
