"""The ``data:`` section of a spec: genes, gene graphs, perturbation screens, targets, splits, batching.

Relative paths are resolved against ``data.root``, which itself is relative to the spec file's folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from cellgi.spec.base import StrictModel, component, data_format, resolve_type

__all__ = [
    "DataSpec",
    "GeneListSpec",
    "GraphEntryBase",
    "GraphSpec",
    "NeutralSamplingSpec",
    "ScreenEntryBase",
    "ScreenSpec",
    "SplitSpec",
    "SyntheticSpec",
    "graph_entry",
    "screen_entry",
]


class GeneListSpec(StrictModel):
    """Where the ordered gene list (graph nodes) comes from."""

    source: Literal["sgd_features", "list", "union"] = Field(
        "sgd_features",
        description="sgd_features: ORFs of SGD_features.tab; list: one ORF per line; "
        "union: every gene seen in the graphs and screens",
    )
    path: str | None = Field(None, description="SGD_features.tab or the list file")
    qualifiers: list[str] = Field(
        default_factory=lambda: ["Verified", "Uncharacterized", "Dubious"],
        description="ORF qualifiers kept from SGD_features.tab",
    )
    aliases: str | None = Field(
        None,
        description="SGD_features.tab used to map common names and aliases to ORFs "
        "(defaults to path when source is sgd_features)",
    )

    @model_validator(mode="after")
    def _path_needed(self) -> "GeneListSpec":
        if self.source in ("sgd_features", "list") and not self.path:
            raise ValueError(f"genes.source {self.source!r} needs a path")
        return self


class GraphEntryBase(StrictModel):
    """Fields every ``data.graphs`` entry has, whatever its format."""

    name: str = Field(description="edge type name, e.g. physical, regulatory, string_coexpression")
    path: str = Field(description="file to read")
    directed: bool = Field(False, description="undirected graphs are stored in both directions")
    self_loops: Literal["drop", "keep"] = Field("drop", description="policy for A-A edges")
    min_weight: float | None = Field(None, description="drop edges with a lower weight")
    duplicates: Literal["merge_max", "merge_mean", "error"] = Field(
        "merge_max", description="policy for repeated edges (counted and reported)"
    )
    if TYPE_CHECKING:  # the model built for each format adds it (``Literal[<format name>]``), with its params
        format: str


#: a ``data.graphs`` entry: the shared fields above plus those of its ``format`` (a ``graph_format``
#: component: built-in readers in cellgi/data/readers/, or a plugin); the union is assembled after
#: plugin discovery like the model's component slots
GraphSpec = data_format("graph_format", GraphEntryBase)


class ScreenEntryBase(StrictModel):
    """Fields every ``data.screens`` entry has, whatever its format."""

    path: str
    duplicates: Literal["keep_all", "mean", "first", "error"] = Field(
        "mean", description="policy for repeated measurements of the same gene set"
    )
    if TYPE_CHECKING:  # the model built for each format adds it (``Literal[<format name>]``), with its params
        format: str


#: a ``data.screens`` entry: the shared fields above plus those of its ``format`` (``screen_format``)
ScreenSpec = data_format("screen_format", ScreenEntryBase)


def _entry(tp: Any, fields: dict[str, Any]) -> Any:
    fmt = fields.get("format")
    return TypeAdapter(resolve_type(tp, {fmt} if isinstance(fmt, str) else None)).validate_python(fields)


def graph_entry(fields: dict[str, Any]) -> Any:
    """Validate one ``data.graphs`` entry given as a dict (``{name, format, path, ...}``)."""
    return _entry(GraphSpec, fields)


def screen_entry(fields: dict[str, Any]) -> Any:
    """Validate one ``data.screens`` entry given as a dict (``{format, path, ...}``)."""
    return _entry(ScreenSpec, fields)


class SyntheticSpec(StrictModel):
    """A generated yeast-scale data set with a planted, graph-dependent signal (the built-in default)."""

    num_genes: int = Field(6607, ge=10)
    num_samples: int = Field(20000, ge=10)
    trigenic_fraction: float = Field(0.3, ge=0.0, le=1.0)
    edge_types: dict[str, int] = Field(
        default_factory=lambda: {"physical": 40000, "regulatory": 9753, "coexpression": 60000},
        description="edge type -> number of edges (before symmetrisation)",
    )
    directed: list[str] = Field(default_factory=lambda: ["regulatory"])
    noise: float = Field(0.1, ge=0.0, description="noise std relative to the signal std")
    additive: float = Field(
        0.3, ge=0.0, description="std of the per-gene additive part relative to the graph-dependent part"
    )
    multihop: float = Field(
        1.5, ge=0.0,
        description="weight of the multi-hop term (the dot product of a random gene field diffused 1-3 hops over "
        "the graph) relative to the pairwise rule; 0: the pairwise rule alone (cellgi/data/synthetic.py)",
    )
    trigenic_synergy: float = Field(
        1.0, ge=0.0,
        description="weight of the trigenic term that is not a sum of pair terms (a triple product of the "
        "diffused field) relative to the pair part of a trigenic score; 0: none",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _directed_known(self) -> "SyntheticSpec":
        unknown = sorted(set(self.directed) - set(self.edge_types))
        if unknown:
            raise ValueError(f"directed names edge types not in edge_types: {unknown}")
        return self


class SplitSpec(StrictModel):
    kind: Literal["random", "gene_holdout", "strict_gene_holdout", "column", "gene_folds"] = "random"
    fractions: list[float] = Field(default_factory=lambda: [0.8, 0.1, 0.1], description="train, val, test")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    # gene_folds (see cellgi/data/splits.py): genes in K seeded folds; fold k's genes are unseen in test
    num_folds: int = Field(5, ge=2, description="gene_folds: number of gene folds K")
    fold: int = Field(0, ge=0, description="gene_folds: the fold held out for test (0..K-1)")
    val_fraction: float = Field(
        0.1, ge=0, lt=1, description="gene_folds: share of the other genes held out (gene-disjoint) for validation"
    )
    shared_gene_fraction: float = Field(
        0.05, gt=0, le=1,
        description="gene_folds: genes in more than this share of samples (e.g. a screen's query genes) are "
        "never held out",
    )

    @property
    def has_validation(self) -> bool:
        """Whether the split asks for validation samples (``val_fraction`` for gene_folds, else
        ``fractions[1]``)."""
        return (self.val_fraction if self.kind == "gene_folds" else self.fractions[1]) > 0

    @model_validator(mode="after")
    def _fractions(self) -> "SplitSpec":
        if len(self.fractions) != 3 or any(f < 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValueError("fractions must be three non-negative numbers (train, val, test) summing to 1")
        if self.kind == "gene_folds" and self.fold >= self.num_folds:
            raise ValueError(f"fold must be in 0..num_folds-1 = 0..{self.num_folds - 1}, got {self.fold}")
        return self


class NeutralSamplingSpec(StrictModel):
    """Epochs of a grid screen (format ``sga_grid``): every listed training pair plus a fresh share of the
    neutral ones, weighted so that the loss stays unbiased (docs/data.md#sga-grids-format-sga_grid). Other screens ignore it."""

    share: float = Field(0.05, gt=0, le=1, description="share of the neutral training pairs drawn anew each epoch "
                                                      "(each weighted about 1/share); 1 = the whole grid")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="seed of the draws (default: the run's seed)")
    val_pairs: int | None = Field(None, ge=1, description="validate on a fixed uniform sample of this many "
                                                          "validation pairs (default: the whole validation grid)")
    test_pairs: int | None = Field(None, ge=1, description="test on a fixed uniform sample of this many test pairs "
                                                           "(default: the whole test grid)")


class DataSpec(StrictModel):
    """Inputs of a run: either ``synthetic`` or ``genes`` + ``graphs`` + ``screens``."""

    root: str = Field(".", description="folder that relative paths start from (relative to the spec file)")
    synthetic: SyntheticSpec | None = None
    genes: GeneListSpec | None = Field(None, description="gene list; default: the union of the inputs' genes")
    graphs: list[GraphSpec] = Field(default_factory=list)
    screens: list[ScreenSpec] = Field(default_factory=list)
    features: list[component("gene_features")] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="per-gene input features for every gene of the gene list (gene_features components: "
        "table, go_slim, graph_structure, ...)",
    )
    targets: list[str] = Field(default_factory=lambda: ["gene_interaction"])
    neutral_sampling: NeutralSamplingSpec = Field(
        default_factory=NeutralSamplingSpec,
        description="grid screens (sga_grid): listed pairs plus a weighted share of neutral pairs per epoch",
    )
    normalize: Literal["zscore", "none"] = "zscore"
    split: SplitSpec = Field(default_factory=SplitSpec)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)
    persistent_workers: bool = False
    cache_dir: str | None = Field(
        None, description="processed-data cache; default $CELLGI_CACHE_DIR or ~/.cache/cellgi"
    )
    cache: bool = Field(True, description="reuse processed data keyed by input contents and options")

    @model_validator(mode="after")
    def _one_source(self) -> "DataSpec":
        files = self.genes is not None or self.graphs or self.screens
        if self.synthetic is not None and files:
            raise ValueError("give either synthetic or genes/graphs/screens, not both")
        if self.synthetic is None:
            if not self.graphs:
                raise ValueError("no graphs: give data.synthetic or at least one entry in data.graphs")
            if not self.screens:
                raise ValueError("no screens: give data.synthetic or at least one entry in data.screens")
            names = [g.name for g in self.graphs]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"graph names must be unique; repeated: {dup}")
        if not self.targets:
            raise ValueError("targets must name at least one target")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets repeat a name: {self.targets}")
        if self.synthetic is not None:
            bad = [t for t in self.targets if t not in ("gene_interaction", "fitness")]
            if bad:
                raise ValueError(f"synthetic data provides targets gene_interaction and fitness, not {bad}")
        if self.split.kind == "column":
            lacking = [i for i, s in enumerate(self.screens) if getattr(s, "split_column", None) is None]
            if self.synthetic is not None or lacking:
                raise ValueError(
                    "split kind 'column' needs a split_column in every screen (table format)"
                    + (f"; screens {lacking} have none" if lacking else "")
                )
        return self
