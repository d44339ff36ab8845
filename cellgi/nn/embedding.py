"""Gene input (optional learnable ID embedding + per-gene features) and the preprocessor MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cellgi.nn.mlp import MLP

__all__ = ["GeneEmbedding", "Preprocessor"]


class GeneEmbedding(nn.Module):
    r"""The model's per-gene input: an optional learnable ``[N, dim]`` ID table concatenated with fixed
    features ``[N, F]`` (``data.features``; a buffer saved with the model).

    A learnable ID vector has nothing to learn for a gene that no training sample deletes; left alone it
    would be its random initialisation (untrained noise) at prediction time. So genes outside ``seen``
    (set by :meth:`set_seen` from the training split; all genes until then) use one shared learned
    ``unknown`` vector instead, and while training each gene's ID vector is replaced by that same
    ``unknown`` vector with probability ``gene_dropout`` (a fresh draw every forward), so that the rest of
    the model learns to predict from the features and the graph when the ID says nothing.

    ``dim = 0`` means no learnable table (features only). Shapes: ``forward() -> [N, dim + F]``.
    """

    features: Tensor | None
    seen: Tensor

    def __init__(
        self,
        num_genes: int,
        dim: int,
        init_std: float = 0.1,
        features: Tensor | None = None,
        *,
        gene_dropout: float = 0.0,
    ):
        super().__init__()
        if dim < 0:
            raise ValueError(f"embedding dim must be >= 0, got {dim}")
        if not 0.0 <= gene_dropout < 1.0:
            raise ValueError(f"gene_dropout must be in [0, 1), got {gene_dropout}")
        self.num_genes, self.dim, self.init_std, self.gene_dropout = num_genes, dim, init_std, float(gene_dropout)
        if dim > 0:
            self.weight = nn.Parameter(torch.empty(num_genes, dim))
            self.unknown = nn.Parameter(torch.empty(dim))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("unknown", None)
        if features is not None:
            if features.dim() != 2 or features.shape[0] != num_genes:
                raise ValueError(f"gene features must be [{num_genes}, F], got {tuple(features.shape)}")
            if not bool(torch.isfinite(features).all()):
                raise ValueError("gene features contain NaN/inf")
            self.register_buffer("features", features.to(torch.float32))
        else:
            self.features = None
        if self.out_dim == 0:
            raise ValueError("the gene input is empty: give data.features or a learnable embedding (dim > 0)")
        self.register_buffer("seen", torch.ones(num_genes, dtype=torch.bool))
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        return self.dim + (0 if self.features is None else int(self.features.shape[1]))

    @property
    def device(self) -> torch.device:
        return self.seen.device

    def set_seen(self, genes: Tensor) -> None:
        """Mark ``genes`` (indices) as the genes with training samples; every other gene's ID vector is the
        shared ``unknown`` vector (in training and in prediction)."""
        self.seen.zero_()
        self.seen[genes.to(self.seen.device, torch.long)] = True

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.normal_(self.weight, std=self.init_std)
            nn.init.normal_(self.unknown, std=self.init_std)

    def forward(self) -> Tensor:
        parts = []
        if self.weight is not None:
            use = self.seen
            if self.training and self.gene_dropout > 0:
                use = use & (torch.rand(self.num_genes, device=use.device) >= self.gene_dropout)
            parts.append(torch.where(use.unsqueeze(1), self.weight, self.unknown.unsqueeze(0)))
        if self.features is not None:
            dtype = self.weight.dtype if self.weight is not None else torch.float32
            parts.append(self.features.to(dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def extra_repr(self) -> str:
        feats = "" if self.features is None else f", features={int(self.features.shape[1])}"
        drop = f", gene_dropout={self.gene_dropout}" if self.gene_dropout else ""
        return f"{self.num_genes}, {self.dim}, init_std={self.init_std}{feats}{drop}"


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
                f"(gene features widen the input: use num_layers >= 1)"
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
