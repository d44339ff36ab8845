"""Gene embedding (learnable, optionally with fixed node features) and the preprocessor MLP."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from cellgi.nn.mlp import MLP

__all__ = ["GeneEmbedding", "Preprocessor", "load_node_features"]


def load_node_features(path: str | Path, genes: Sequence[str]) -> Tensor:
    """Read fixed per-gene features from a TSV: ``gene<TAB>f1<TAB>f2...``, one gene a line.

    A first line whose feature columns are not all numbers is taken as a header. Blank lines and lines
    starting with ``#`` are skipped. Every gene of ``genes`` must have a row, every row must name a gene
    of ``genes``, and all rows must have the same number of finite features: anything else is an error
    (a missing gene is never silently zero).

    Returns:
        ``[N, F]`` float32 tensor in the order of ``genes``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"node feature file not found: {path}")
    index = {g: i for i, g in enumerate(genes)}
    rows: dict[int, list[float]] = {}
    unknown: list[str] = []
    width: int | None = None
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n\r")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError:
                if not rows and not unknown and width is None:
                    continue  # header
                raise ValueError(f"{path}:{lineno}: non-numeric feature in {line[:80]!r}") from None
            if not values:
                raise ValueError(f"{path}:{lineno}: no features after the gene name")
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise ValueError(f"{path}:{lineno}: {len(values)} features, expected {width}")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{path}:{lineno}: non-finite feature value")
            gene = fields[0].strip()
            if gene not in index:
                unknown.append(gene)
                continue
            if index[gene] in rows:
                raise ValueError(f"{path}:{lineno}: gene {gene!r} appears twice")
            rows[index[gene]] = values
    if unknown:
        raise ValueError(
            f"{path}: {len(unknown)} gene(s) not in the model's gene list, e.g. {unknown[:5]}"
        )
    if width is None:
        raise ValueError(f"{path}: no feature rows")
    missing = [g for g, i in index.items() if i not in rows]
    if missing:
        raise ValueError(f"{path}: {len(missing)} gene(s) of the graph have no features, e.g. {missing[:5]}")
    return torch.tensor([rows[i] for i in range(len(genes))], dtype=torch.float32)


class GeneEmbedding(nn.Module):
    r"""A learnable ``[N, dim]`` table (normal init, std ``init_std``), optionally concatenated with fixed
    features ``[N, F]`` (a buffer, saved with the model).

    Shapes: ``forward() -> [N, dim + F]``
    """

    features: Tensor | None

    def __init__(self, num_genes: int, dim: int, init_std: float = 0.1, features: Tensor | None = None):
        super().__init__()
        self.num_genes, self.dim, self.init_std = num_genes, dim, init_std
        self.weight = nn.Parameter(torch.empty(num_genes, dim))
        if features is not None:
            if features.dim() != 2 or features.shape[0] != num_genes:
                raise ValueError(f"node features must be [{num_genes}, F], got {tuple(features.shape)}")
            self.register_buffer("features", features.to(torch.float32))
        else:
            self.features = None
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        return self.dim + (0 if self.features is None else int(self.features.shape[1]))

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=self.init_std)

    def forward(self) -> Tensor:
        if self.features is None:
            return self.weight
        return torch.cat([self.weight, self.features.to(self.weight.dtype)], dim=-1)

    def extra_repr(self) -> str:
        feats = "" if self.features is None else f", features={int(self.features.shape[1])}"
        return f"{self.num_genes}, {self.dim}, init_std={self.init_std}{feats}"


class Preprocessor(nn.Module):
    r"""Per-gene MLP before message passing: ``num_layers`` x (Linear -> per-node norm -> activation ->
    dropout). With ``num_layers == 0`` it is the identity (then ``in_dim`` must equal ``out_dim``).

    Shapes: ``[N, in_dim] -> [N, out_dim]``
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_layers: int = 2,
        norm: str = "layer",
        activation: str = "gelu",
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_layers == 0 and in_dim != out_dim:
            raise ValueError(
                f"preprocessor.num_layers=0 needs input width == hidden_dim, got {in_dim} != {out_dim} "
                f"(fixed node features widen the input: use num_layers >= 1)"
            )
        # the same Linear -> norm -> activation -> dropout stack as MLP with plain_last=False; kept as a
        # bare Sequential under ``layers`` so that state_dict keys stay ``preprocessor.layers.<i>.*``
        self.layers = (
            MLP(in_dim, out_dim, out_dim, num_layers, norm, activation, dropout, plain_last=False).layers
            if num_layers
            else nn.Sequential()
        )

    def reset_parameters(self) -> None:
        for m in self.layers:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
