"""Virtual screens: score every array gene (or every pair of a gene list) against query genes or pairs.

The library behind ``cellgi screen`` (and the notebook API). A *query* is a set of one or more genes (a
query gene, or a query pair for trigenic screens); for each query the screen predicts

- ``arrays`` mode: every array gene ``a`` (default: every gene of the model) as the set ``query + {a}``;
- ``pairs`` mode: every unordered pair ``{a, b}`` of a gene list as ``query + {a, b}`` (the query may be
  empty: then every pair of the list, a digenic screen).

Array genes that belong to the query are left out (a set never names a gene twice).

Speed, exactly: :class:`ScreenScorer` computes the model's initial gene states and the wildtype cell (every
layer, the pooled ``z_w`` column and the wildtype states the local head reads) once per screen instead
of once per batch, and runs each batch's perturbed columns only, through the model's own fused,
first-layer-delta forward. Its predictions equal ``LazyDango.forward`` on the same sets up to float
rounding (tests/test_screen.py checks it against ``cellgi predict``'s path). What a fixed query shares
beyond that is small on a yeast-scale graph: its deletions change about 12% of the first layer's rows,
which the first-layer delta already recomputes only where they change, and from the second layer on
nearly every gene is within reach of the array gene's neighbours through the dense STRING edge types
(docs/performance.md, "Virtual screens").

Output, streamed while the screen runs (nothing is held in memory):

- ``OUT.tsv``: one row per prediction, in plan order: ``query``, ``array`` (gene names joined by ``;``),
  one column per target in original units; or ``OUT.parquet``: the same rows as a folder of Parquet
  part files (``part-000000.parquet``, ...; read it with ``pandas.read_parquet("OUT.parquet")``; needs
  ``pip install cellgi[parquet]``);
- ``OUT.top.tsv``: per query, the ``top_k`` strongest negative and positive predictions of the ranking
  target, rewritten (atomically) whenever a query completes;
- ``OUT.screen.json``: the plan's fingerprint, so that ``resume=True`` refuses to continue a different
  screen.

Resuming: rows are flushed batch by batch (Parquet parts are written atomically), so an interrupted screen
keeps every finished batch; ``resume=True`` counts the rows already there (a partly written TSV row is
dropped), skips that many predictions of the plan and continues, so no row is written twice. The top-K of
a query that was cut is rebuilt from its rows in the output.

Example::

    from cellgi.screen import plan_screen, run_screen
    from cellgi.train.checkpoint import load_model

    loaded = load_model("runs/my-run/2026-01-01T00-00-00")
    plan = plan_screen(loaded.mapper, queries=["YAL015C;YBL007C"])  # one query pair x every gene
    report = run_screen(loaded, plan, "screen.parquet", top_k=50)
    report.written, report.predictions_per_s
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from cellgi.errors import CellgiError

__all__ = [
    "ScreenError",
    "ScreenInterrupted",
    "ScreenPlan",
    "ScreenReport",
    "ScreenScorer",
    "plan_screen",
    "read_gene_list",
    "run_screen",
    "scorer_for",
]

MODES = ("arrays", "pairs")


class ScreenError(CellgiError):
    """Unusable screen input or output (names the file and line, or the option)."""

    exit_code = 2


class ScreenInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal turned into it) during :func:`run_screen`; ``report`` says what was kept."""

    def __init__(self, report: "ScreenReport"):
        super().__init__(f"interrupted after writing {report.written} rows to {report.output}")
        self.report = report


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

    def fingerprint(self) -> str:
        text = json.dumps({"mode": self.mode, "queries": self.queries, "genes": self.genes,
                           "names": [self.gene_names[i] for i in self.genes]})
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _resolve(mapper: Any, ident: str, where: str) -> int:
    gene, reason = mapper.resolve(ident)
    if gene is None:
        raise ScreenError(f"{where}: gene {ident!r}: {reason}")
    return mapper.index(gene)


def plan_screen(
    mapper: Any,
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
    names = list(pairs_of if mode == "pairs" else arrays or [])
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


# ---------------------------------------------------------------------------------------------- scorer
class ScreenScorer:
    """Predictions for many gene sets of one model with the wildtype computed once (see the module docs).

    Args:
        model: a :class:`~cellgi.nn.model.LazyDango` (put in evaluation mode here).
        normalizer: maps predictions back to original units (None: model units).
    """

    def __init__(self, model: Any, normalizer: Any = None):
        import torch

        self.model, self.normalizer = model.eval(), normalizer
        self.device = next(model.parameters()).device
        with torch.inference_mode():
            self.x0 = model.initial_states()  # [N, H]
            ones = torch.ones(model.num_genes, 1, dtype=torch.bool, device=self.device)
            self.x_wt, _ = model.gene_states(ones, x0=self.x0)  # [N, 1, H]

    def score(self, sets: Sequence[Sequence[int]]) -> Any:
        """``[S, T]`` predictions (CPU float tensor) for the index sets, as ``model(batch)`` gives them."""
        import torch

        from cellgi.data.batch import collate_index_sets

        chunk = [torch.as_tensor(list(s), dtype=torch.long) for s in sets]
        batch = collate_index_sets(chunk, torch.full((len(chunk), self.model.num_targets), float("nan")))
        batch = batch.to(self.device)
        with torch.inference_mode():
            if not self.model.uses_global:  # local heads only: they read the wildtype states alone
                pred, _ = self.model.readout_wildtype(batch, self.x0, self.x_wt[:, 0])
            else:
                keep = self.model.keep_mask(batch)  # [N, S+1], last column the wildtype
                x, _ = self.model.gene_states(keep[:, :-1], x0=self.x0)
                x = torch.cat([x, self.x_wt], dim=1)
                pred, _ = self.model._readout(x, keep, batch, [], None, x0=self.x0)
            pred = pred.float()
            if not bool(torch.isfinite(pred).all()):
                raise ScreenError("the model predicted NaN/inf for a gene set of this batch")
            if self.normalizer is not None:
                pred = self.normalizer.inverse(pred)
        return pred.cpu()


class _MeanScorer:
    """A seed ensemble's screen: each member's :class:`ScreenScorer`, predictions (original units)
    averaged, as :class:`cellgi.ensemble.LoadedEnsemble` predicts."""

    def __init__(self, scorers: Sequence[Any]):
        self.scorers = list(scorers)

    def score(self, sets: Sequence[Sequence[int]]) -> Any:
        import torch

        return torch.stack([s.score(sets) for s in self.scorers]).mean(0)


class _StackScorer:
    """A stacked folder's screen (``training.stack``): the network's screen blended with the stored
    baselines, as :class:`cellgi.stack.LoadedStack` predicts."""

    def __init__(self, network: Any, loaded: Any):
        self.network, self.loaded = network, loaded

    def score(self, sets: Sequence[Sequence[int]]) -> Any:
        import torch

        from cellgi.data.batch import collate_index_sets

        pred = self.network.score(sets)  # original units
        batch = collate_index_sets([torch.as_tensor(list(s), dtype=torch.long) for s in sets],
                                   torch.full((len(sets), pred.shape[1]), float("nan")))
        st, norm = self.loaded.stack, self.loaded.normalizer
        others = st.baseline_predictions(batch)
        return norm.inverse(st.combine(norm.transform(pred), others))


def scorer_for(loaded: Any) -> Any:
    """The fastest exact scorer of what ``loaded`` predicts: one model (:class:`ScreenScorer`), a seed
    ensemble (its members' scorers, averaged) or a stacked folder (the network's scorer blended with
    its baselines). Its ``score(sets)`` equals ``loaded.predict`` on the same sets."""
    from cellgi.ensemble import LoadedEnsemble
    from cellgi.stack import LoadedStack

    if isinstance(loaded, LoadedStack):
        return _StackScorer(scorer_for(loaded.network), loaded)
    if isinstance(loaded, LoadedEnsemble):
        return _MeanScorer([ScreenScorer(m.model, m.normalizer) for m in loaded.members])
    return ScreenScorer(loaded.model, getattr(loaded, "normalizer", None))


# --------------------------------------------------------------------------------------------- writers
class _TsvRows:
    suffix = ".tsv"

    def __init__(self, path: Path, header: list[str]):
        self.path, self.header = path, header
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

    def append(self, labels_q: list[str], labels_a: list[str], values: list[list[float]]) -> None:
        self._fh.write("".join(
            f"{q}\t{a}\t" + "\t".join(f"{v:.6g}" for v in vals) + "\n"
            for q, a, vals in zip(labels_q, labels_a, values)
        ))
        self._fh.flush()

    def read_from(self, start: int, column: str) -> Iterator[tuple[str, float]]:
        """``(array label, value of column)`` of the rows from the ``start``-th on."""
        ci = self.header.index(column)
        with self.path.open(encoding="utf-8") as fh:
            next(fh)
            for i, line in enumerate(fh):
                if i >= start:
                    f = line.rstrip("\n").split("\t")
                    yield f[1], float(f[ci])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class _ParquetRows:
    suffix = ".parquet"

    def __init__(self, path: Path, header: list[str]):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ScreenError(
                f"{path}: writing Parquet needs pyarrow: pip install 'cellgi[parquet]' (or write .tsv)"
            ) from None
        self.path, self.header = path, header
        self._next = 0

    def _parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet"))

    def existing_rows(self) -> int:
        import pyarrow.parquet as pq

        if not self.path.is_dir():
            raise ScreenError(f"{self.path}: not a folder of Parquet parts; cannot resume")
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
        import shutil

        if fresh:
            if self.path.exists():
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            self.path.mkdir(parents=True)
            self._next = 0

    def append(self, labels_q: list[str], labels_a: list[str], values: list[list[float]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from cellgi.fileio import atomic_open

        cols = {"query": pa.array(labels_q, pa.string()), "array": pa.array(labels_a, pa.string())}
        for j, name in enumerate(self.header[2:]):
            cols[name] = pa.array([v[j] for v in values], pa.float32())
        with atomic_open(self.path / f"part-{self._next:06d}.parquet") as fh:
            pq.write_table(pa.table(cols), fh)
        self._next += 1

    def read_from(self, start: int, column: str) -> Iterator[tuple[str, float]]:
        import pyarrow.parquet as pq

        seen = 0
        for part in self._parts():
            t = pq.read_table(part, columns=["array", column])
            n = t.num_rows
            if seen + n > start:
                arr, val = t.column("array").to_pylist(), t.column(column).to_pylist()
                for i in range(max(0, start - seen), n):
                    yield arr[i], float(val[i])
            seen += n

    def close(self) -> None:
        pass


def _writer(path: Path, header: list[str]) -> _TsvRows | _ParquetRows:
    if path.suffix == ".parquet":
        return _ParquetRows(path, header)
    if path.suffix == ".tsv":
        return _TsvRows(path, header)
    raise ScreenError(f"{path}: the output must end in .tsv or .parquet")


# ----------------------------------------------------------------------------------------------- top-k
class _TopK:
    """The ``k`` most negative and most positive values seen, with their labels (merged batch by batch)."""

    def __init__(self, k: int):
        self.k = k
        self.low: list[tuple[float, str]] = []
        self.high: list[tuple[float, str]] = []

    def add(self, labels: Sequence[str], values: Sequence[float]) -> None:
        if self.k <= 0:
            return
        pairs = [(v, a) for a, v in zip(labels, values) if not math.isnan(v)]
        self.low = sorted(self.low + pairs, key=lambda t: t[0])[: self.k]
        self.high = sorted(self.high + pairs, key=lambda t: -t[0])[: self.k]

    def rows(self, query: str, target: str) -> list[str]:
        out = [f"{query}\tnegative\t{r}\t{a}\t{v:.6g}" for r, (v, a) in enumerate(self.low, 1) if v < 0]
        out += [f"{query}\tpositive\t{r}\t{a}\t{v:.6g}" for r, (v, a) in enumerate(self.high, 1) if v > 0]
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
    loaded: Any,
    plan: ScreenPlan,
    output: str | Path,
    *,
    top_k: int = 20,
    batch_size: int = 32,
    rank_target: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> ScreenReport:
    """Run ``plan`` with a loaded model (``cellgi.train.checkpoint.LoadedModel``, a seed ensemble or a
    stacked folder, or anything with ``model``, ``normalizer`` and ``target_names``), streaming rows to
    ``output`` (see the module docs).

    Args:
        top_k: strongest negative and positive predictions kept per query (0: no top file).
        batch_size: gene sets per forward pass and per write.
        rank_target: target ranked for the top-K (default the first).
        resume: continue an interrupted screen of the same plan in ``output``.
        overwrite: replace an existing ``output``.
        progress: show a progress bar with predictions/s (stderr).
        on_batch: called with (rows written so far in this call, total still to do) after each batch.

    Raises:
        ScreenError: unusable output (exists without resume/overwrite, other plan, bad header).
        ScreenInterrupted: Ctrl-C; every finished batch is kept.
    """
    if batch_size < 1:
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
    header = ["query", "array", *targets]
    writer = _writer(out, header)
    state = {"fingerprint": plan.fingerprint(), "total": plan.total, "mode": plan.mode,
             "queries": [plan.label(q) for q in plan.queries], "targets": targets, "top_k": top_k,
             "rank_target": rank_target, "format": writer.suffix.lstrip(".")}
    done_rows = 0
    top_lines: list[str] = []
    done_queries: set[str] = set()
    if out.exists() and not (resume or overwrite):
        raise ScreenError(f"{out} exists: use resume to continue it or overwrite to replace it")
    if resume and out.exists():
        try:
            old = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ScreenError(f"{state_path}: missing or unreadable; cannot tell which screen {out} holds") from None
        if old.get("fingerprint") != state["fingerprint"] or old.get("targets") != targets:
            raise ScreenError(f"{out} holds another screen (other queries, genes, mode or model targets)")
        if old.get("top_k") != top_k or old.get("rank_target") != rank_target:
            raise ScreenError(f"{out} was started with top_k={old.get('top_k')} and rank target "
                              f"{old.get('rank_target')!r}; resume with the same")
        done_rows = writer.existing_rows()
        if top_path.exists():
            top_lines = top_path.read_text(encoding="utf-8").splitlines()[1:]
            done_queries = {line.split("\t", 1)[0] for line in top_lines}
        writer.open(fresh=False)
    else:
        from cellgi.fileio import write_text_atomic

        write_text_atomic(state_path, json.dumps(state, indent=1) + "\n")
        writer.open(fresh=True)
        top_path.unlink(missing_ok=True)
    if done_rows > plan.total:
        raise ScreenError(f"{out} has {done_rows} rows, more than the plan's {plan.total}; cannot resume")

    report = ScreenReport(out, top_path, plan.total, already_written=done_rows)
    counts = [plan.count(i) for i in range(len(plan.queries))]
    ti = targets.index(rank_target)
    t_setup = time.perf_counter()
    scorer = scorer_for(loaded)
    report.setup_seconds = time.perf_counter() - t_setup
    bar = _Progress(plan.total, done_rows) if progress else None
    t0 = time.perf_counter()
    try:
        first_row = 0
        for qi, q in enumerate(plan.queries):
            qlabel = plan.label(q)
            end_row = first_row + counts[qi]
            if end_row <= done_rows and (qlabel in done_queries or top_k == 0):
                first_row = end_row
                continue
            tracker = _TopK(top_k)
            start = max(0, done_rows - first_row)
            if start and top_k:  # rows of this query written before the interruption
                labels, vals = [], []
                for a, v in writer.read_from(first_row, rank_target):
                    if len(labels) == start:
                        break
                    labels.append(a)
                    vals.append(v)
                tracker.add(labels, vals)
            it = plan.arrays_of(qi, start)
            while True:
                arrays = list(itertools.islice(it, batch_size))
                if not arrays:
                    break
                pred = scorer.score([q + a for a in arrays])
                values = pred.tolist()
                alabels = [plan.label(a) for a in arrays]
                writer.append([qlabel] * len(arrays), alabels, values)
                tracker.add(alabels, [v[ti] for v in values])
                report.written += len(arrays)
                report.seconds = time.perf_counter() - t0
                if bar is not None:
                    bar.advance(len(arrays), qlabel, report.predictions_per_s)
                if on_batch is not None:
                    on_batch(report.written, plan.total - done_rows)
            if top_k:
                top_lines = [x for x in top_lines if x.split("\t", 1)[0] != qlabel] + tracker.rows(qlabel, rank_target)
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
    from cellgi.fileio import write_text_atomic

    write_text_atomic(path, "\t".join(["query", "direction", "rank", "array", target]) + "\n"
                      + "".join(line + "\n" for line in lines))


class _Progress:
    """A rich progress bar on stderr: predictions done of the plan, predictions/s, time left."""

    def __init__(self, total: int, done: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
