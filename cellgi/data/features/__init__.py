"""Per-gene input features (the ``gene_features`` role): one module per source.

``data.features`` lists sources; :func:`compute_gene_features` runs them in order and concatenates
their blocks into one ``[N, F]`` matrix for the run's gene list (cached with the data). Built-ins:
``table`` (numeric columns keyed by gene), ``go_slim`` (GO-slim multi-hot), ``graph_structure``
(degrees per edge type).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor

from cellgi.data.cellgraph import CellGraph
from cellgi.data.errors import DataError
from cellgi.data.features.base import (
    FeatureContext,
    GeneFeatureBlock,
    GeneFeatureSource,
    standardize_and_impute,
)
from cellgi.data.features.go_slim import GoSlimFeatures
from cellgi.data.features.graph_structure import GraphStructureFeatures
from cellgi.data.features.table import TableFeatures
from cellgi.data.genes import GeneMapper
from cellgi.registry import get_registry

__all__ = [
    "feature_report_lines",
    "FeatureContext",
    "GeneFeatureBlock",
    "GeneFeatureSource",
    "GoSlimFeatures",
    "GraphStructureFeatures",
    "TableFeatures",
    "build_feature_sources",
    "compute_gene_features",
    "feature_input_files",
    "standardize_and_impute",
]


def build_feature_sources(specs: Sequence[BaseModel]) -> list[GeneFeatureSource]:
    """Instantiate the sources of ``data.features`` through the ``gene_features`` registry."""
    reg = get_registry("gene_features")
    out = []
    for i, s in enumerate(specs):
        try:
            src = reg.build(s)
        except ValueError as exc:
            raise DataError(f"data.features[{i}]: {exc}") from None
        if not isinstance(src, GeneFeatureSource):
            raise DataError(f"data.features[{i}]: {type(src).__name__} is not a GeneFeatureSource")
        out.append(src)
    return out


def feature_input_files(specs: Sequence[BaseModel], root: str | Path) -> list[Path]:
    """Files the sources read (for the cache key)."""
    return [f for src in build_feature_sources(specs) for f in src.input_files(Path(root))]


def compute_gene_features(
    specs: Sequence[BaseModel], *, genes: Sequence[str], mapper: GeneMapper, graph: CellGraph, root: str | Path
) -> tuple[Tensor, list[str], list[dict[str, Any]]]:
    """Run every source of ``data.features``: ``(values [N, F] float32, column names, per-source info)``.

    Column names are unique (a repeated name is an error naming both sources' positions).
    """
    ctx = FeatureContext(list(genes), mapper, graph, Path(root))
    blocks: list[np.ndarray] = []
    names: list[str] = []
    infos: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, src in enumerate(build_feature_sources(specs)):
        block = src.compute(ctx)
        if block.values.shape[0] != len(genes):
            raise DataError(f"data.features[{i}] ({src.kind}): {block.values.shape[0]} rows for {len(genes)} genes")
        for c in block.columns:
            if c in seen:
                raise DataError(
                    f"data.features[{i}] ({src.kind}): column {c!r} also made by data.features[{seen[c]}]; "
                    "set a different prefix"
                )
            seen[c] = i
        blocks.append(block.values)
        names += block.columns
        infos.append({"index": i, "type": src.kind, "num_columns": len(block.columns), **block.info})
    if not blocks:
        return torch.zeros(len(genes), 0), [], []
    return torch.from_numpy(np.concatenate(blocks, 1).astype(np.float32)), names, infos


def feature_report_lines(infos: Sequence[dict[str, Any]], num_genes: int) -> list[str]:
    """Lines for a run's data report: per source, the rows it could not use, the genes whose several rows
    were averaged, and the genes that got an imputed value (each with its missing indicator), so that none
    of these happens unseen. Keys a source does not report are skipped."""
    lines = []
    for info in infos:
        where = f"data.features[{info.get('index', '?')}] ({info.get('type', '?')}"
        where += f", {Path(info['path']).name})" if info.get("path") else ")"
        if info.get("rows_not_in_gene_list"):
            ex = ", ".join(info.get("examples_not_in_gene_list") or [])
            lines.append(f"{where}: {info['rows_not_in_gene_list']:,} rows name genes not in the gene list"
                         + (f" (e.g. {ex})" if ex else "") + "; not used")
        if info.get("rows_of_other_strains_set_aside"):
            lines.append(f"{where}: {info['rows_of_other_strains_set_aside']:,} rows of less preferred strains "
                         "set aside (strain_priority)")
        if info.get("rows_of_other_strain_kinds"):
            lines.append(f"{where}: {info['rows_of_other_strain_kinds']:,} rows of strains of other kinds set aside "
                         "(strain_kinds)")
        if info.get("genes_with_several_rows"):
            lines.append(f"{where}: {info['genes_with_several_rows']:,} genes have several rows; their values "
                         f"were averaged ({info['rows_averaged']:,} extra rows)")
        if info.get("genes_imputed"):
            marked = any(str(c).endswith("missing") for c in info.get("columns") or [])
            lines.append(f"{where}: {info['genes_imputed']:,} of {num_genes:,} genes have no value and get an "
                         "imputed one" + (", marked by a missing-indicator column" if marked else
                                          " (missing_indicator: false: nothing marks them)"))
    return lines
