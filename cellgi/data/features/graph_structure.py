"""``graph_structure``: per-gene structure of every gene graph (computed once, cached with the data)."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.features.base import FeatureContext, GeneFeatureBlock, GeneFeatureSource
from cellgi.registry import Params, register

__all__ = ["GraphStructureFeatures", "GraphStructureParams"]


class GraphStructureParams(Params):
    edge_types: list[str] | None = Field(None, description="graphs to describe (default: all)")
    weighted: bool = Field(True, description="also the weighted degree (sum of edge weights) of weighted graphs")
    standardize: bool = Field(True, description="z-score each column over all genes (after log1p)")


@register("gene_features", "graph_structure", summary="log1p degree per edge type (in/out for directed graphs)",
          params=GraphStructureParams)
class GraphStructureFeatures(GeneFeatureSource):
    """Columns ``deg.<type>`` (undirected) or ``deg_in.<type>``/``deg_out.<type>`` (directed), and
    ``wdeg.<type>`` for weighted graphs; ``log1p`` then z-scored. Every gene has a value (0 edges is a
    value, not a missing one)."""

    kind = "graph_structure"
    needs_graph = True

    def __init__(self, edge_types: list[str] | None = None, weighted: bool = True, standardize: bool = True):
        self.edge_types, self.weighted, self.standardize = edge_types, weighted, standardize

    def compute(self, ctx: FeatureContext) -> GeneFeatureBlock:
        graph = ctx.graph
        names = list(graph.edge_type_names) if self.edge_types is None else list(self.edge_types)
        unknown = [t for t in names if t not in graph.edge_types]
        if unknown:
            raise DataError(f"graph_structure: unknown edge type(s) {unknown}; graphs: {graph.edge_type_names}")
        n = graph.num_nodes
        cols, blocks = [], []
        for t in names:
            et = graph.edge_types[t]
            ei = et.edge_index.to(torch.long)
            deg_in = torch.bincount(ei[1], minlength=n).double()
            if et.directed:
                deg_out = torch.bincount(ei[0], minlength=n).double()
                blocks += [deg_in, deg_out]
                cols += [f"deg_in.{t}", f"deg_out.{t}"]
            else:
                blocks.append(deg_in)  # stored both ways: in-degree = degree
                cols.append(f"deg.{t}")
            w = getattr(et, "edge_weight", None)
            if self.weighted and w is not None:
                blocks.append(torch.zeros(n, dtype=torch.float64).index_add_(0, ei[1], w.double()))
                cols.append(f"wdeg.{t}")
        x = torch.log1p(torch.stack(blocks, 1).clamp_min(0)).numpy()
        if self.standardize:
            sd = x.std(0)
            x = (x - x.mean(0)) / np.where(sd > 1e-12, sd, 1.0)
        info = {"source": "graph_structure", "edge_types": names, "columns": cols}
        return GeneFeatureBlock(x.astype(np.float32), cols, info)
