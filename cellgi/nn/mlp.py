"""Small building blocks shared by the model parts: per-node norms and a plain MLP.

Only *per-node* norms are offered (LayerNorm, RMSNorm, none): they normalise each gene state on its own
and never mix genes or samples, so a sample's output cannot depend on its batch-mates.
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.resolver import activation_resolver

__all__ = [
    "CPU_INFERENCE_CHUNK_ROWS",
    "MLP",
    "NORMS",
    "NormName",
    "fused_mlp",
    "fused_norm",
    "make_activation",
    "make_norm",
    "masked_fill_min",
    "mlps_fusable",
    "norms_fusable",
    "stacked_linear",
]

#: rows per chunk when an MLP runs on a CPU without autograd (predict, evaluate, screens): each chunk's
#: activations stay in the core's cache through the whole chain instead of streaming every intermediate
#: ``[rows, H]`` tensor through memory once per layer, and no process-sized temporaries are allocated.
#: Row-wise, so the values are the same (the same bits at this size and the published width, tested; to
#: float rounding with tiny chunks). Measured (docs/performance.md, "Chunked inference"): 1.08x on a
#: yeast-scale screen batch and B=32 inference with the ``cellgi`` command's tuned allocator, 1.3-1.4x
#: without it (Python API). ``CELLGI_CPU_CHUNK_ROWS=0`` turns it off.
CPU_INFERENCE_CHUNK_ROWS = int(os.environ.get("CELLGI_CPU_CHUNK_ROWS", "4096"))

NormName = Literal["layer", "rms", "none"]
NORMS: tuple[str, ...] = ("layer", "rms", "none")


def make_norm(name: str, dim: int) -> nn.Module:
    """A per-node norm over the last dimension: ``layer`` (LayerNorm), ``rms`` (RMSNorm) or ``none``."""
    if name == "layer":
        return nn.LayerNorm(dim)
    if name == "rms":
        return nn.RMSNorm(dim)
    if name == "none":
        return nn.Identity()
    raise ValueError(
        f"unknown norm {name!r} (valid: {', '.join(NORMS)}); batch and graph norms are not offered "
        f"because they mix genes and samples"
    )


def make_activation(name: str) -> nn.Module:
    """An activation module from PyG's resolver (``relu``, ``gelu``, ``silu``, ``leaky_relu``, ...)."""
    try:
        return activation_resolver(name)
    except ValueError as exc:
        raise ValueError(f"unknown activation {name!r}: {exc}") from None


class MLP(nn.Module):
    r"""Multi-layer perceptron applied to the last dimension.

    ``num_layers`` linear layers; every layer but the last is followed by norm, activation and
    dropout (``plain_last=True``, PyG's convention), or every layer when ``plain_last=False``.

    Args:
        in_dim: input size.
        hidden_dim: size of the hidden layers.
        out_dim: output size.
        num_layers: number of linear layers (>= 1).
        norm: per-node norm after each hidden layer (``layer``, ``rms``, ``none``).
        activation: activation name for :func:`make_activation`.
        dropout: dropout after each hidden activation.
        plain_last: leave the last layer without norm/activation/dropout.

    Shapes:
        input ``[..., in_dim]`` -> output ``[..., out_dim]``
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        norm: str = "none",
        activation: str = "gelu",
        dropout: float = 0.0,
        plain_last: bool = True,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.num_layers, self.norm_name, self.act_name = num_layers, norm, activation
        self.dropout, self.plain_last = dropout, plain_last
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1 or not plain_last:
                layers.append(make_norm(norm, dims[i + 1]))
                layers.append(make_activation(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        for m in self.layers:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        chunk = CPU_INFERENCE_CHUNK_ROWS
        if (chunk > 0 and x.device.type == "cpu" and not torch.is_grad_enabled()
                and not (self.training and self.dropout > 0) and x.numel() > 2 * chunk * x.shape[-1]):
            flat = x.reshape(-1, x.shape[-1])
            return torch.cat([self.layers(part) for part in flat.split(chunk)]).view(*x.shape[:-1], -1)
        return self.layers(x)

    def __repr__(self) -> str:
        return (
            f"MLP({self.in_dim}, {self.hidden_dim}, {self.out_dim}, num_layers={self.num_layers}, "
            f"norm={self.norm_name}, act={self.act_name}, dropout={self.dropout})"
        )


def masked_fill_min(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with entries where ``mask`` is False set to the dtype's most negative finite value."""
    return x.masked_fill(~mask, torch.finfo(x.dtype).min)


# ---------------------------------------------------------------------------------------------- fusion
# The same module applied once per edge type (G copies with equal shapes, each with its own weights) runs as
# one batched product over a stacked ``[G, M, in]`` input. The per-type parameters stay where they are (so
# state dicts and checkpoints do not change) and are stacked at forward time: G small tensors per layer,
# microseconds against the milliseconds of the products (docs/performance.md).


def _stateless(m: nn.Module) -> bool:
    return next(m.parameters(recurse=True), None) is None and next(m.buffers(recurse=True), None) is None


class _LoopLinear(torch.autograd.Function):
    """``h [G, M, in] -> [G, M, out]`` with per-type ``w [G, out, in]`` and ``b [G, out]`` (or None): on CPU
    ``G`` ``addmm`` calls writing into one output (``baddbmm`` with a broadcast bias measured 1.7x slower
    there, 113 vs 65 ms for G=9, M=59,463, 64x64 on one core); the backward as batched products (as fast
    as a loop)."""

    @staticmethod
    def forward(ctx, h: Tensor, w: Tensor, b: Tensor | None) -> Tensor:  # type: ignore[override]
        out = h.new_empty(h.shape[0], h.shape[1], w.shape[1])
        for i in range(h.shape[0]):
            if b is None:
                torch.mm(h[i], w[i].t(), out=out[i])
            else:
                torch.addmm(b[i], h[i], w[i].t(), out=out[i])
        ctx.save_for_backward(h, w)
        ctx.has_bias = b is not None
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        h, w = ctx.saved_tensors
        grad = grad.contiguous()
        gh = torch.bmm(grad, w) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(grad.transpose(1, 2), h) if ctx.needs_input_grad[1] else None
        gb = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gh, gw, gb


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def stacked_linear(linears: Sequence[nn.Linear], h: Tensor) -> Tensor:
    """``h [G, M, in]`` -> ``[G, M, out]``: ``linears[g](h[g])`` for every g, as batched products over the
    edge-type axis (autocast applies as it does to ``nn.Linear``)."""
    w = torch.stack([lin.weight for lin in linears])  # [G, out, in]
    b = None if linears[0].bias is None else torch.stack([lin.bias for lin in linears])  # [G, out]
    dev = h.device.type
    if dev != "cpu":
        return _bmm_linear(h, w, b)
    cast = _autocast_dtype(dev)
    if cast is not None:  # what autocast does to F.linear: inputs and weights in its dtype
        h, w, b = h.to(cast), w.to(cast), None if b is None else b.to(cast)
    with torch.autocast(dev, enabled=False):
        return _LoopLinear.apply(h.contiguous(), w, b)


def _bmm_linear(h: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """The accelerator form of :func:`stacked_linear`: one batched product (fewer kernels), then the bias."""
    out = torch.bmm(h, w.transpose(1, 2))
    return out if b is None else out + b.unsqueeze(1).to(out.dtype)


class _LoopLayerNorm(torch.autograd.Function):
    """Per-type LayerNorm of ``h [G, M, D]`` with ``w, b [G, D]``: the native kernel once per type into one
    output, and its native backward (one pass each way, like the unfused model; a normalisation over the
    whole stack followed by a broadcast affine measured 3.3x slower in training)."""

    @staticmethod
    def forward(ctx, h: Tensor, w: Tensor, b: Tensor, eps: float) -> Tensor:  # type: ignore[override]
        g, m, d = h.shape
        out = torch.empty_like(h)
        stat_dtype = torch.float32 if h.dtype in (torch.bfloat16, torch.float16) else h.dtype
        mean = torch.empty(g, m, 1, dtype=stat_dtype, device=h.device)
        rstd = torch.empty(g, m, 1, dtype=stat_dtype, device=h.device)
        for i in range(g):
            torch.ops.aten.native_layer_norm.out(h[i], [d], w[i], b[i], eps, out0=out[i], out1=mean[i], out2=rstd[i])
        ctx.save_for_backward(h, w, b, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        h, w, b, mean, rstd = ctx.saved_tensors
        grad = grad.contiguous()
        d = h.shape[-1]
        gh, gw, gb = torch.empty_like(h), torch.empty_like(w), torch.empty_like(b)
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        for i in range(h.shape[0]):
            torch.ops.aten.native_layer_norm_backward.out(
                grad[i], h[i], [d], mean[i], rstd[i], w[i], b[i], [True, True, True],
                out0=gh[i], out1=gw[i], out2=gb[i],
            )
        return (gh if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None, None)


def norms_fusable(norms: Sequence[nn.Module]) -> bool:
    """Whether :func:`fused_norm` can apply these per-type norms together (same kind and settings)."""
    first = norms[0]
    if any(type(m) is not type(first) for m in norms):
        return False
    if isinstance(first, nn.Identity):
        return True
    if isinstance(first, nn.LayerNorm):
        return all(m.normalized_shape == first.normalized_shape and m.eps == first.eps
                   and m.elementwise_affine and m.bias is not None for m in norms) and len(first.normalized_shape) == 1
    if isinstance(first, nn.RMSNorm):
        return all(m.normalized_shape == first.normalized_shape and m.eps == first.eps
                   and m.elementwise_affine for m in norms) and len(first.normalized_shape) == 1
    return False


def fused_norm(norms: Sequence[nn.Module], h: Tensor) -> Tensor:
    """``norms[g](h[g])`` for every g of ``h [G, M, D]``: the normalisation once over the stack, then each
    type's affine (``[G, 1, D]``) in one fused multiply-add. Check :func:`norms_fusable` first."""
    first = norms[0]
    if isinstance(first, nn.Identity):
        return h
    d = first.normalized_shape
    gamma = torch.stack([m.weight for m in norms])
    if isinstance(first, nn.LayerNorm):
        beta = torch.stack([m.bias for m in norms])
        dev = h.device.type
        if _autocast_dtype(dev) is not None:  # autocast runs layer_norm in fp32
            h = h.float()
        with torch.autocast(dev, enabled=False):
            return _LoopLayerNorm.apply(h.contiguous(), gamma.to(h.dtype), beta.to(h.dtype), first.eps)
    return F.rms_norm(h, d, None, first.eps) * gamma.unsqueeze(1)


def mlps_fusable(mlps: Sequence[nn.Module]) -> bool:
    """Whether :func:`fused_mlp` can run these MLPs together: all :class:`MLP` with the same layer
    structure, fusable norms and parameter-free activations (the same for all)."""
    first = mlps[0]
    if not all(type(m) is MLP for m in mlps):
        return False
    kinds = [[type(layer) for layer in m.layers] for m in mlps]
    if any(k != kinds[0] for k in kinds):
        return False
    for i, layer in enumerate(first.layers):
        column = [m.layers[i] for m in mlps]
        if isinstance(layer, nn.Linear):
            if any(c.weight.shape != layer.weight.shape or (c.bias is None) != (layer.bias is None) for c in column):
                return False
        elif isinstance(layer, (nn.LayerNorm, nn.RMSNorm, nn.Identity)):
            if not norms_fusable(column):
                return False
        elif isinstance(layer, nn.Dropout):
            if any(c.p != layer.p for c in column):
                return False
        elif not (_stateless(layer) and all(repr(c) == repr(layer) for c in column)):
            return False  # an activation with parameters (PReLU) or differing settings
    return True


def fused_mlp(mlps: Sequence[MLP], h: Tensor) -> Tensor:
    """``mlps[g](h[g])`` for every g of ``h [G, M, in]`` -> ``[G, M, out]`` (check :func:`mlps_fusable`)."""
    for i, layer in enumerate(mlps[0].layers):
        if isinstance(layer, nn.Linear):
            h = stacked_linear([m.layers[i] for m in mlps], h)
        elif isinstance(layer, (nn.LayerNorm, nn.RMSNorm, nn.Identity)):
            h = fused_norm([m.layers[i] for m in mlps], h)
        else:  # parameter-free activation or dropout: the same for every type
            h = layer(h)
    return h
