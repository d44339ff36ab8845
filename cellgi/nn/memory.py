"""Memory a spec will need, checked against the memory there is, before any data is read (a check that
:func:`~cellgi.spec.load_spec` runs when given ``checks=[check_memory]``, as ``cellgi train`` and
``cellgi spec validate`` do: it builds small copies of the model, which the spec layer cannot).

Sizes in a spec drive allocation: ``model.hidden_dim: 100000`` asks for tens of GB of weights,
``data.batch_size`` multiplies the activations. :func:`check_memory` estimates a *lower bound* of the
bytes a training step needs and refuses, with the spec file and line, a spec whose lower bound exceeds
the available memory. It never refuses a spec that could fit: parameters are counted exactly from
three small builds of the same model (the count is a quadratic in ``hidden_dim``), and activations are counted only
where the gene count is known from the spec (synthetic data).

Set ``CELLGI_SKIP_MEMORY_CHECK=1`` to turn the check off (for example on a machine with large swap).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import torch

from cellgi.data.cellgraph import CellGraph, EdgeType
from cellgi.nn.model import LazyDango
from cellgi.spec import Spec
from cellgi.spec.errors import SpecError, SpecIssue
from cellgi.spec.yamlio import Located

__all__ = ["MemoryEstimate", "available_memory", "check_memory", "estimate_memory"]

#: bytes per parameter while training: fp32 weight, gradient and AdamW's two moments
BYTES_PER_TRAINED_PARAM = 16


@dataclass(frozen=True)
class MemoryEstimate:
    """A lower bound of what training needs.

    Attributes:
        parameters: exact parameter count of the model (0 when the parts could not be built).
        activation_bytes: lower bound of one step's stored activations (0 when the gene count is unknown).
        num_genes: gene count used (None when only known after reading the data).
        data_bytes: a generated (synthetic) data set's edges and gene indices, held in host memory.
    """

    parameters: int
    activation_bytes: int
    num_genes: int | None
    data_bytes: int = 0

    @property
    def train_bytes(self) -> int:
        """Everything on one device: weights, gradients, AdamW state, activations, data."""
        return self.parameters * BYTES_PER_TRAINED_PARAM + self.activation_bytes + self.data_bytes

    @property
    def weight_bytes(self) -> int:
        """The fp32 weights alone."""
        return self.parameters * 4

    @property
    def host_bytes(self) -> int:
        """What host memory holds even when training runs on a GPU: the weights (built there) and data."""
        return self.weight_bytes + self.data_bytes


def _edge_type_names(spec: Spec) -> list[str]:
    if spec.model.edge_types:
        return list(spec.model.edge_types)
    if spec.data.synthetic is not None:
        return list(spec.data.synthetic.edge_types) or ["graph"]
    return [g.name for g in spec.data.graphs] or ["graph"]


def _num_edge_types(spec: Spec) -> int:
    return len(_edge_type_names(spec))


def _build_count(spec: Spec, hidden_dim: int, num_genes: int) -> int:
    """Parameters of the model of ``spec`` at ``hidden_dim``, really built (small widths only) over a
    stand-in graph of ``num_genes`` genes and the spec's edge types."""
    pair = torch.tensor([[0, 1], [1, 0]])
    graph = CellGraph(
        [f"g{i}" for i in range(max(num_genes, 2))],
        {n: EdgeType(n, False, pair) for n in _edge_type_names(spec)},
    )
    model = LazyDango(spec.model.model_copy(update={"hidden_dim": hidden_dim}), graph, len(spec.data.targets))
    return int(sum(p.numel() for p in model.parameters()))


def _count_parameters(spec: Spec, num_genes: int) -> int:
    """Parameters of the model ``spec`` describes, without allocating it.

    Every weight is a product of at most two widths that grow with ``hidden_dim`` (``H x H`` matrices,
    ``N x H`` embeddings, ``H`` biases): the count is linear in the gene count ``N`` and quadratic in
    ``H``. It is measured on small models (2 and 3 genes; ``H`` itself when small, else three small
    widths that keep the spec's head counts dividing them) and extrapolated exactly. Per-gene input
    features are not read (they only widen the first layer, so the count stays a lower bound).
    """
    at2 = _count_in_h(spec, 2)
    at3 = _count_in_h(spec, 3)
    return at2 + (max(num_genes, 2) - 2) * (at3 - at2)


def _count_in_h(spec: Spec, num_genes: int) -> int:
    """Parameters at the spec's ``hidden_dim`` over ``num_genes`` genes (built, or the exact quadratic
    through three small widths)."""
    h = spec.model.hidden_dim
    if h <= 512:  # small enough to build as it is
        return _build_count(spec, h, num_genes)
    # head counts up to 10 that divide H also divide every width measured
    step = math.lcm(*[k for k in range(1, 11) if h % k == 0])
    if step > 170:
        raise ValueError("no small widths share the divisors of hidden_dim")
    xs = [step, 2 * step, 3 * step]
    ys = [_build_count(spec, x, num_genes) for x in xs]
    total = Fraction(0)
    for i, (xi, yi) in enumerate(zip(xs, ys)):  # Lagrange: the quadratic through the three points
        term = Fraction(yi)
        for j, xj in enumerate(xs):
            if j != i:
                term *= Fraction(h - xj, xi - xj)
        total += term
    return int(total)


def estimate_memory(spec: Spec) -> MemoryEstimate:
    """Lower bound of the memory one training step of ``spec`` needs (see the module docs)."""
    syn = spec.data.synthetic
    n = syn.num_genes if syn is not None else None
    try:
        params = _count_parameters(spec, n or 2)
    except Exception:  # noqa: BLE001 - a part that cannot be built is reported by the model builder
        params = 0
    act = data = 0
    if syn is not None:  # the generated data set: int64 ends of both directions of each edge, >= 2 genes a sample
        data = sum(syn.edge_types.values()) * 2 * 2 * 8 + syn.num_samples * 2 * 8
    if n is not None:
        # at least one [N, B, H] float32 tensor per layer and edge type is kept for the backward pass
        act = n * spec.data.batch_size * spec.model.hidden_dim * spec.model.num_layers * _num_edge_types(spec) * 4
    return MemoryEstimate(params, act, n, data)


def available_memory() -> int | None:
    """Bytes of host memory available now (Linux ``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def _gpu_memory(spec: Spec) -> int | None:
    """Total memory of the smallest visible GPU when training runs on GPUs with full model replicas."""
    t = spec.training.trainer
    if t.accelerator not in ("gpu", "cuda", "auto") or any(k in t.strategy for k in ("fsdp", "deepspeed")):
        return None
    if not _cuda_available():
        return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_memory(spec: Spec, located: Located | None = None, *, available: int | None = None) -> MemoryEstimate:
    """Raise :class:`~cellgi.spec.errors.SpecError` at ``model.hidden_dim`` (or ``data.batch_size``, or
    ``data.synthetic.*``: whichever dominates) when the lower bound of :func:`estimate_memory` cannot fit.

    On ``accelerator: cpu`` (or ``auto`` without a GPU) training needs weights, gradients, optimizer
    state, activations and data in host memory; on other accelerators the model is still built in host
    memory first, so its weights and the data must fit there, and with full replicas per GPU (single
    device, DDP) weights, gradients, optimizer state and activations must fit in one GPU's memory.
    ``available`` overrides the measured host memory (tests). ``located``: the spec's YAML, for the file
    and line of the error (without it, ``<spec>``).
    """
    est = estimate_memory(spec)
    if os.environ.get("CELLGI_SKIP_MEMORY_CHECK", "") not in ("", "0"):
        return est
    avail = available_memory() if available is None else available
    if avail is None:
        return est
    accel = spec.training.trainer.accelerator
    cpu = accel == "cpu" or (accel == "auto" and not _cuda_available())
    need = est.train_bytes if cpu else est.host_bytes
    where = "host memory"
    parts = {
        "params": est.parameters * (BYTES_PER_TRAINED_PARAM if cpu else 4),
        "activations": est.activation_bytes if cpu else 0,
        "data": est.data_bytes,
    }
    if not cpu and need <= avail:
        device_total = _gpu_memory(spec)
        on_device = est.parameters * BYTES_PER_TRAINED_PARAM + est.activation_bytes
        if device_total is not None and on_device > device_total:
            # every device holds a full replica (single device or DDP): compare with one GPU's memory
            need, avail, cpu, where = on_device, device_total, True, "memory on one GPU"
            parts = {"params": est.parameters * BYTES_PER_TRAINED_PARAM, "activations": est.activation_bytes, "data": 0}
    if need <= avail:
        return est
    worst = max(parts, key=parts.get)  # type: ignore[arg-type]
    if worst == "params":
        loc: tuple[str, ...] = ("model", "hidden_dim")
        what = (
            f"{spec.model.hidden_dim} gives a model of {est.parameters:,} parameters; training needs at least "
            f"{_gb(need)} ({'weights, gradients and optimizer state' if cpu else 'its weights, built in host memory'})"
        )
    elif worst == "activations":
        loc = ("data", "batch_size")
        what = (
            f"{spec.data.batch_size} with {est.num_genes} genes and hidden_dim {spec.model.hidden_dim} needs at "
            f"least {_gb(need)} per training step"
        )
    else:
        syn = spec.data.synthetic
        key = "num_samples" if syn.num_samples * 16 >= sum(syn.edge_types.values()) * 32 else "edge_types"
        loc = ("data", "synthetic", key)
        what = f"the generated data set needs at least {_gb(need)}"
    file = located.file_of(loc) if located is not None else "<spec>"
    line = located.line_of(loc) if located is not None else 0
    snippet = located.snippet(line, file) if located is not None else ""
    msg = f"{what}, but {_gb(avail)} of {where} is available (CELLGI_SKIP_MEMORY_CHECK=1 skips this check)"
    raise SpecError([SpecIssue(file, line, ".".join(loc), msg, snippet)])
