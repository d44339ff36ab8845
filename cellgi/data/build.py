"""``build_data``: from a validated ``data:`` spec to graph, samples, splits and normaliser, cached."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cellgi.data.cache import cache_dir, cache_key, read_cache, write_cache
from cellgi.data.cellgraph import CellGraph, EdgeType
from cellgi.data.errors import DataError
from cellgi.data.features import compute_gene_features, feature_input_files, feature_report_lines
from cellgi.data.genes import GeneMapper
from cellgi.data.grid import GridDataset, dataset_from_state, is_grid, map_grid, uniform_sample
from cellgi.data.graphs import graph_input_files, load_graph, read_raw_edges
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import PerturbationDataset, concat_datasets, merge_duplicates
from cellgi.data.readers import read_gene_list, read_sgd_features
from cellgi.data.readers.sga_grid import RawGrid
from cellgi.data.screens import map_screen, read_raw_screen, screen_input_files
from cellgi.data.splits import make_splits
from cellgi.data.synthetic import generate_dataset
from cellgi.errors import resolve_path
from cellgi.spec.data import DataSpec, NeutralSamplingSpec

__all__ = ["DataBundle", "DataReport", "build_data"]

#: DataSpec fields that do not change the processed data (left out of the cache key)
_LOADER_FIELDS = {"batch_size", "eval_batch_size", "num_workers", "persistent_workers", "cache_dir", "cache", "root"}


@dataclass
class DataReport:
    """What was read and what was left out, for ``cellgi data summary`` and run logs.

    Attributes:
        source: ``synthetic`` or ``files``.
        genes: number of genes (graph nodes).
        edges: edge type -> ``{edges, directed, weighted, rows, unmapped_rows, ...}``.
        samples: kind -> count (``digenic``, ``trigenic``, ``other``).
        screens: per-screen counts (rows, kept samples, unmapped rows, reasons, duplicates).
        duplicates: ``{groups, extra_rows}`` of gene sets repeated across screens (kept).
        unmapped: per source ``UnmappedLog.to_dict(limit=None)`` (every identifier).
        splits: split -> samples; ``split_dropped`` samples dropped by a strict split.
        normalizer: ``{kind, mean, std}`` per target.
        warnings: human-readable lines.
        build_seconds: time to build (0 when loaded from the cache).
        grid: a grid screen's counts (rows, listed pairs, grid pairs, alleles merged, reciprocal pairs, self
            pairs dropped, unmapped strains, ...; see :func:`cellgi.data.grid.map_grid`), empty otherwise;
            ``grid["evaluated"]`` gives, per split sampled by ``data.neutral_sampling``, ``{pairs, of}``.
    """

    source: str = "files"
    genes: int = 0
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    screens: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    split_dropped: int = 0
    normalizer: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    grid: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataReport":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def num_samples(self) -> int:
        return int(sum(self.samples.values()))

    @property
    def num_unmapped(self) -> int:
        """Distinct unmapped identifiers over all sources."""
        return int(sum(u["identifiers"] for u in self.unmapped))


@dataclass
class DataBundle:
    """Everything a run needs from its data.

    Attributes:
        graph: the shared cell graph.
        dataset: all samples (raw targets).
        splits: ``train``/``val``/``test`` -> sorted LongTensor of sample indices.
        normalizer: fitted on the training split.
        target_names: names of the target columns.
        report: counts and warnings.
        mapper: identifier -> gene mapping (for synthetic data: the gene names, case-insensitive);
            store ``mapper.to_dict()`` in checkpoints.
        cache_path: the cache file used or written (None when caching is off).
        from_cache: True when loaded from the cache.
    """

    graph: CellGraph
    dataset: PerturbationDataset | GridDataset
    splits: dict[str, Tensor]
    normalizer: TargetNormalizer
    target_names: list[str]
    report: DataReport
    mapper: GeneMapper | None = None
    cache_path: Path | None = None
    from_cache: bool = False
    #: ``[N, F]`` per-gene input features of ``data.features`` (None without), their column names and
    #: what each source read (see cellgi/data/features)
    gene_features: Tensor | None = None
    feature_names: list[str] = field(default_factory=list)
    feature_report: list[dict[str, Any]] = field(default_factory=list)
    #: ``data.neutral_sampling`` of the spec (how a grid's epochs and baseline fits sample neutral pairs);
    #: not part of the processed data, set by :func:`build_data`
    sampling: NeutralSamplingSpec | None = None

    def state_dict(self) -> dict[str, Any]:
        """Tensors/strings/numbers only (``torch.load(weights_only=True)``-safe)."""
        return {
            "graph": self.graph.state_dict(),
            "dataset": self.dataset.state_dict(),
            "splits": _pack_splits(self.splits, len(self.dataset)) if is_grid(self.dataset) else dict(self.splits),
            "normalizer": self.normalizer.state_dict(),
            "target_names": list(self.target_names),
            "report": self.report.to_dict(),
            "mapper": None if self.mapper is None else self.mapper.to_dict(),
            "gene_features": self.gene_features,
            "feature_names": list(self.feature_names),
            "feature_report": list(self.feature_report),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "DataBundle":
        return cls(
            graph=CellGraph.from_state_dict(state["graph"]),
            dataset=dataset_from_state(state["dataset"]),
            splits=_unpack_splits(state["splits"]),
            normalizer=TargetNormalizer.from_state_dict(state["normalizer"]),
            target_names=list(state["target_names"]),
            report=DataReport.from_dict(state["report"]),
            mapper=None if state.get("mapper") is None else GeneMapper.from_dict(state["mapper"]),
            gene_features=state.get("gene_features"),
            feature_names=list(state.get("feature_names", [])),
            feature_report=list(state.get("feature_report", [])),
        )


def _pack_splits(splits: dict[str, Tensor], n: int) -> dict[str, Any]:
    """A grid's splits as bit masks over its pairs (``n / 8`` bytes a split instead of 8 bytes a pair)."""
    packed = {}
    for k, v in splits.items():
        mask = np.zeros(n, dtype=bool)
        mask[v.numpy()] = True
        packed[k] = torch.from_numpy(np.packbits(mask))
    return {"__packed__": n, "masks": packed}


def _unpack_splits(state: dict[str, Any]) -> dict[str, Tensor]:
    if "__packed__" not in state:
        return {k: v.to(torch.long) for k, v in state.items()}
    n = int(state["__packed__"])
    return {k: torch.from_numpy(np.flatnonzero(np.unpackbits(v.numpy(), count=n)).astype(np.int64))
            for k, v in state["masks"].items()}


class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[data {time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def _input_files(spec: DataSpec) -> list[Path]:
    if spec.synthetic is not None:
        return []
    root = spec.root
    files: list[Path] = []
    g = spec.genes
    if g is not None:
        if g.path:
            files.append(resolve_path(root, g.path))
        if g.aliases:
            files.append(resolve_path(root, g.aliases))
    for gs in spec.graphs:
        files += graph_input_files(gs, root)
    for ss in spec.screens:
        files += screen_input_files(ss, root)
    if getattr(spec, "features", None):
        files += feature_input_files(spec.features, root)
    for f in files:
        if not f.is_file():
            raise DataError("input file not found", f)
    return files


def _options(spec: DataSpec) -> dict[str, Any]:
    d = spec.model_dump(mode="json")
    return {k: v for k, v in d.items() if k not in _LOADER_FIELDS}


def build_data(spec: DataSpec, *, progress: bool = True, cache: bool | None = None) -> DataBundle:
    """Build (or load from the cache) the data of a run.

    Args:
        spec: a :class:`~cellgi.spec.data.DataSpec` (``spec.data`` of a loaded spec; its ``root``
            is absolute after ``load_spec``).
        progress: print progress lines to stderr.
        cache: override ``spec.cache`` (False: always rebuild, write nothing).

    Raises:
        DataError: any input problem (missing/malformed file, unknown target, empty split, ...).
    """
    say = _Progress(progress)
    use_cache = spec.cache if cache is None else cache
    path = None
    if use_cache:
        files = _input_files(spec)
        key = cache_key(_options(spec), files)
        path = cache_dir(spec.cache_dir) / f"data-{key}.pt"
        state, status = read_cache(path)
        if state is not None:
            try:
                bundle = DataBundle.from_state_dict(state)
            except Exception as exc:  # noqa: BLE001 - a structurally wrong entry is rebuilt too
                status = f"corrupt: {type(exc).__name__}: {exc}"
                path.unlink(missing_ok=True)
            else:
                bundle.cache_path, bundle.from_cache = path, True
                bundle.report.build_seconds = 0.0
                bundle.sampling = getattr(spec, "neutral_sampling", None)
                say(f"loaded processed data from cache {path}")
                return bundle
        if status.startswith("corrupt"):
            say(f"cache entry {path} was {status}; rebuilding")
    t0 = time.perf_counter()
    bundle = _build(spec, say)
    bundle.sampling = getattr(spec, "neutral_sampling", None)
    bundle.report.build_seconds = round(time.perf_counter() - t0, 3)
    if use_cache and path is not None:
        try:
            write_cache(path, bundle.state_dict())
        except OSError as exc:  # a read-only or full cache folder must not stop a run
            bundle.report.warnings.append(f"could not write the data cache {path}: {exc.strerror or exc}")
            say(bundle.report.warnings[-1])
        else:
            bundle.cache_path = path
            say(f"cached processed data at {path}")
    return bundle


def _build_synthetic(spec: DataSpec, say: _Progress) -> tuple[CellGraph, PerturbationDataset, DataReport, GeneMapper]:
    say(f"generating synthetic data ({spec.synthetic.num_genes} genes, {spec.synthetic.num_samples} samples)")
    try:
        graph, ds, info = generate_dataset(spec.synthetic, target_names=spec.targets)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    report = DataReport(source="synthetic", genes=graph.num_nodes)
    for name, et in graph.edge_types.items():
        report.edges[name] = {"edges": et.num_edges, "directed": et.directed, "weighted": False}
    report.screens.append({"path": ds.sources[0], "samples": len(ds), **{k: round(v, 4) for k, v in info.items()}})
    return graph, ds, report, GeneMapper(graph.genes)


def _make_mapper(spec: DataSpec, raw_graphs: list, raw_screens: list, say: _Progress) -> GeneMapper:
    g = spec.genes
    root = spec.root
    if g is not None and g.source == "sgd_features":
        say(f"reading genes from {g.path}")
        feats = read_sgd_features(resolve_path(root, g.path), g.qualifiers)
        mapper = feats.mapper()
        if g.aliases and resolve_path(root, g.aliases) != resolve_path(root, g.path):
            extra = read_sgd_features(resolve_path(root, g.aliases), None)
            mapper = extra.mapper(feats.genes)
        return mapper
    alias_feats = read_sgd_features(resolve_path(root, g.aliases), None) if (g is not None and g.aliases) else None
    if g is not None and g.source == "list":
        say(f"reading gene list {g.path}")
        genes = read_gene_list(resolve_path(root, g.path))
        return alias_feats.mapper(genes) if alias_feats is not None else GeneMapper(genes)
    # union of every identifier the inputs name, canonicalised through the alias table when given
    base = alias_feats.mapper(alias_feats.all_orfs) if alias_feats is not None else None
    seen: dict[str, None] = {}
    for raw in raw_graphs + raw_screens:
        for name in raw.names:
            if base is not None:
                canon = base.map(name)
                if canon is None:
                    continue  # reported as unmapped later
            else:
                canon = name.strip()
                canon = canon.split(".", 1)[1] if canon.split(".", 1)[0].isdigit() and "." in canon else canon
                canon = canon.upper()
            seen.setdefault(canon, None)
    genes = sorted(seen)
    if not genes:
        raise DataError("union gene list is empty: no identifier in the inputs could be mapped")
    return base.with_genes(genes) if base is not None else GeneMapper(genes)


def _build_files(spec: DataSpec, say: _Progress) -> tuple[CellGraph, PerturbationDataset, DataReport, GeneMapper]:
    root = spec.root
    report = DataReport(source="files")
    raw_graphs = []
    for gs in spec.graphs:
        say(f"reading graph {gs.name} ({gs.format}: {gs.path})")
        raw_graphs.append(read_raw_edges(gs, root))
    raw_screens = []
    for ss in spec.screens:
        say(f"reading screen {ss.path} ({ss.format})")
        raw_screens.append(read_raw_screen(ss, root))
    mapper = _make_mapper(spec, raw_graphs, raw_screens, say)
    report.genes = len(mapper.genes)
    types: dict[str, EdgeType] = {}
    for gs, raw in zip(spec.graphs, raw_graphs):
        et, log, rep = load_graph(gs, root, mapper, raw)
        types[gs.name] = et
        report.edges[gs.name] = rep
        if log.num_identifiers:
            report.unmapped.append(log.to_dict(limit=None))
            report.warnings.append(
                f"graph {gs.name}: {log.num_identifiers} identifiers unmapped "
                f"({rep['unmapped_rows']} rows dropped), e.g. {log.examples(3)}"
            )
        if rep["duplicates_merged"]:
            report.warnings.append(f"graph {gs.name}: {rep['duplicates_merged']} repeated rows merged ({gs.duplicates})")
    graph = CellGraph(list(mapper.genes), types)
    if any(isinstance(raw, RawGrid) for raw in raw_screens):
        return graph, _grid_screen(spec, raw_screens, mapper, report), report, mapper
    parts = []
    for ss, raw in zip(spec.screens, raw_screens):
        load = map_screen(raw, mapper, spec.targets, ss.duplicates)
        rep = load.report()
        report.screens.append(rep)
        if load.unmapped.num_identifiers:
            report.unmapped.append(load.unmapped.to_dict(limit=None))
            report.warnings.append(
                f"screen {raw.path.name}: {load.n_unmapped} samples dropped, {load.unmapped.num_identifiers} "
                f"identifiers unmapped, e.g. {load.unmapped.examples(3)}"
            )
        if rep["reasons"].get("all genes unmapped"):
            report.warnings.append(
                f"screen {raw.path.name}: {rep['reasons']['all genes unmapped']} samples have no gene in the graph"
            )
        if load.duplicates.rows:
            report.warnings.append(
                f"screen {raw.path.name}: {load.duplicates.rows} repeated measurements of "
                f"{load.duplicates.groups} gene sets ({ss.duplicates})"
            )
        if load.missing_targets:
            report.warnings.append(f"screen {raw.path.name}: does not provide targets {load.missing_targets} (NaN)")
        parts.append(load.dataset)
    provided = {t for ss, raw in zip(spec.screens, raw_screens) for t in raw.targets}
    absent = [t for t in spec.targets if t not in provided]
    if absent:
        raise DataError(f"no screen provides target(s) {absent}; screens provide {sorted(provided)}")
    ds = concat_datasets(parts)
    if len(ds) == 0:
        raise DataError("no samples left after mapping the screens to the gene list (see `cellgi data summary --unmapped`)")
    _, cross = merge_duplicates(ds, "keep_all")
    report.duplicates = {"groups": cross.groups, "extra_rows": cross.rows}
    return graph, ds, report, mapper


def _grid_screen(spec: DataSpec, raw_screens: list, mapper: GeneMapper, report: DataReport) -> GridDataset:
    """The one grid screen of a spec mapped to the gene list (counts into ``report.grid``)."""
    if len(raw_screens) != 1:
        raise DataError(f"a grid screen (format sga_grid) must be the only entry of data.screens; "
                        f"found {len(raw_screens)} screens")
    ss, raw = spec.screens[0], raw_screens[0]
    load = map_grid(raw, mapper, spec.targets, neutral=ss.neutral, alleles=ss.alleles)
    report.screens.append(load.report())
    report.grid = dict(load.counts)
    if load.unmapped.num_identifiers:
        report.unmapped.append(load.unmapped.to_dict(limit=None))
        report.warnings.append(
            f"screen {raw.path.name}: {load.counts['unmapped_strains']} strains unmapped "
            f"({load.counts['unmapped_rows']} rows dropped), e.g. {load.unmapped.examples(3)}")
    c = load.counts
    report.warnings.append(
        f"screen {raw.path.name}: grid of {c['query_genes']:,} query x {c['array_genes']:,} array genes = "
        f"{c['grid_pairs']:,} pairs, {c['listed_pairs']:,} listed; unlisted pairs count as neutral "
        f"({c['neutral']:g}), an approximation (their true score lies between the listing cutoffs)")
    return load.dataset


def _sample_eval(spec: DataSpec, ds: PerturbationDataset | GridDataset, splits: dict[str, Tensor], report: DataReport, seed: int) -> None:
    """A grid's validation/test splits cut to fixed uniform samples when ``data.neutral_sampling`` asks."""
    ns = getattr(spec, "neutral_sampling", None)
    if ns is not None and not is_grid(ds) and "neutral_sampling" in getattr(spec, "model_fields_set", ()):
        report.warnings.append("data.neutral_sampling is set but applies to grid screens (format sga_grid) only; "
                               "these screens train on every sample")
    if ns is None or not is_grid(ds):
        return
    evaluated = {}
    for name, size, salt in (("val", ns.val_pairs, 1), ("test", ns.test_pairs, 2)):
        full = splits.get(name)
        if size is None or full is None or full.numel() <= size:
            continue
        splits[name] = uniform_sample(full, size, seed * 1_000_003 + salt)
        evaluated[name] = {"pairs": int(splits[name].numel()), "of": int(full.numel())}
        if name == "test":
            for sub in ("test_one_unseen", "test_two_unseen"):
                if sub in splits:
                    n_of = int(splits[sub].numel())
                    splits[sub] = splits[sub][torch.isin(splits[sub], splits["test"])]
                    evaluated[sub] = {"pairs": int(splits[sub].numel()), "of": n_of}
    if evaluated:
        report.grid["evaluated"] = evaluated
        report.warnings.append("grid evaluated on fixed uniform samples: " + ", ".join(
            f"{k} {v['pairs']:,} of {v['of']:,} pairs" for k, v in evaluated.items()))


def _build(spec: DataSpec, say: _Progress) -> DataBundle:
    if spec.synthetic is not None:
        graph, ds, report, mapper = _build_synthetic(spec, say)
    else:
        graph, ds, report, mapper = _build_files(spec, say)
    report.samples = ds.kind_counts()
    sp = spec.split
    say(f"splitting {len(ds)} samples ({sp.kind}, seed {sp.seed})")
    result = make_splits(ds, sp.kind, sp.fractions, sp.seed, num_folds=sp.num_folds, fold=sp.fold,
                         val_fraction=sp.val_fraction, shared_gene_fraction=sp.shared_gene_fraction)
    _sample_eval(spec, ds, result.splits, report, sp.seed)
    report.splits = result.sizes()
    report.split_dropped = result.dropped
    if result.dropped:
        report.warnings.append(f"split {sp.kind}: {result.dropped} samples mixing train/val/test genes dropped")
    train_y = ds.targets(result.splits["train"]) if is_grid(ds) else ds.y[result.splits["train"]]
    norm = TargetNormalizer(spec.normalize, target_names=spec.targets).fit(train_y)
    report.warnings += norm.warnings
    report.normalizer = {
        "kind": norm.kind,
        "mean": norm.mean.tolist(),  # type: ignore[union-attr]
        "std": norm.std.tolist(),  # type: ignore[union-attr]
    }
    bundle = DataBundle(graph, ds, result.splits, norm, list(spec.targets), report, mapper)
    if getattr(spec, "features", None):
        say(f"computing {len(spec.features)} per-gene feature source(s)")
        root = spec.root if spec.synthetic is None else "."
        bundle.gene_features, bundle.feature_names, bundle.feature_report = compute_gene_features(
            spec.features, genes=graph.genes, mapper=mapper, graph=graph, root=root
        )
        report.warnings += feature_report_lines(bundle.feature_report, len(graph.genes))
    return bundle
