"""Per-gene input features: the base class every ``gene_features`` source derives from.

A source reads its inputs once, when the data is built, and yields one ``[N, F]`` float block in the
order of the run's gene list plus a name for every column. Features must exist for *every* gene of the
gene list (a model is used on genes that were never screened), so a source never fails on a gene it
has no value for: it imputes the value and adds a missing-indicator column that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cellgi.data.cellgraph import CellGraph
from cellgi.data.genes import GeneMapper
from cellgi.errors import resolve_path  # noqa: F401 - the one path resolver; sources import it from here

__all__ = ["FeatureContext", "GeneFeatureBlock", "GeneFeatureSource", "standardize_and_impute"]


@dataclass
class FeatureContext:
    """What a source may read: the gene list, the identifier mapper, the built graph and ``data.root``."""

    genes: Sequence[str]
    mapper: GeneMapper
    graph: CellGraph
    root: Path


@dataclass
class GeneFeatureBlock:
    """One source's output: ``values [N, F]`` float32 (finite), ``columns`` (F names), ``info`` (counts)."""

    values: np.ndarray
    columns: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.columns):
            raise ValueError(f"feature block {self.values.shape} does not match {len(self.columns)} column names")
        if not np.isfinite(self.values).all():
            raise ValueError("feature block has non-finite values")


class GeneFeatureSource:
    """Base class of the ``gene_features`` role.

    Subclasses are registered with ``@register("gene_features", NAME, summary=..., params=...)``; the
    params model declares every option. They implement:

    - :meth:`input_files` (``root -> [Path]``): files read, hashed into the data cache key;
    - :meth:`compute` (``FeatureContext -> GeneFeatureBlock``): the ``[N, F]`` block for the gene list.

    ``needs_graph`` says whether :meth:`compute` reads ``ctx.graph``.
    """

    needs_graph: bool = False
    #: registry name, set by subclasses (used as the default column prefix)
    kind: str = "features"

    def input_files(self, root: Path) -> list[Path]:
        return []

    def compute(self, ctx: FeatureContext) -> GeneFeatureBlock:  # pragma: no cover - abstract
        raise NotImplementedError


def standardize_and_impute(
    values: np.ndarray,
    prefix: str,
    names: Sequence[str],
    *,
    standardize: bool = True,
    impute: str = "median",
    indicator: bool = True,
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """``values [N, F]`` with NaN = missing -> finite block plus missing-indicator column(s).

    Columns are z-scored over the genes that have a value (when ``standardize``); missing entries get
    the column's ``median`` or ``mean`` over those genes (``zero`` after z-scoring is the mean). Each
    column with a missing entry gets an indicator ``<prefix>.<name>.missing`` (1 = imputed); columns
    sharing one missing pattern share one indicator ``<prefix>.missing``. A column with no value at all
    is an error of the caller (reported by the source).
    """
    x = values.astype(np.float64, copy=True)
    miss = np.isnan(x)
    cols = [f"{prefix}.{n}" for n in names]
    stats: dict[str, Any] = {"missing_per_column": miss.sum(0).tolist()}
    for j in range(x.shape[1]):
        have = ~miss[:, j]
        v = x[have, j]
        if standardize:
            mu, sd = float(v.mean()), float(v.std())
            sd = sd if sd > 1e-12 else 1.0
            x[have, j] = (v - mu) / sd
            v = x[have, j]
        fill = {"median": float(np.median(v)), "mean": float(v.mean()), "zero": 0.0}[impute]
        x[~have, j] = fill
    blocks = [x]
    if indicator and miss.any():
        patterns: dict[bytes, list[int]] = {}
        for j in range(x.shape[1]):
            if miss[:, j].any():
                patterns.setdefault(np.packbits(miss[:, j]).tobytes(), []).append(j)
        for js in patterns.values():
            blocks.append(miss[:, js[0] : js[0] + 1].astype(np.float64))
            cols.append(f"{prefix}.missing" if len(patterns) == 1 else f"{prefix}.{names[js[0]]}.missing")
    return np.concatenate(blocks, axis=1).astype(np.float32), cols, stats
