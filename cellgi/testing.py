"""Conformance checks for components: the contracts of the roles, as functions tests call.

cellgi's own test-suite and plugin authors use the same checks (``cellgi plugin new`` writes tests that
call them). Each ``check_*`` function raises ``AssertionError`` naming what broke, and returns nothing
otherwise; the helpers build the small inputs they need.

Example (a plugin's test)::

    from cellgi.testing import check_component, check_conv

    def test_my_conv():
        check_conv("my_conv")          # batched == per-sample copies, batch-mates independent, gradients
        check_component("conv", "my_conv")   # builds from spec YAML, trains one step inside the model

| check | role | what it asserts |
|---|---|---|
| :func:`check_conv_batched_equals_copies` | conv | the shared-adjacency batch equals B per-sample graph copies (PyG ``Batch``) at kept genes |
| :func:`check_conv_batchmates_independent` | conv | a sample's output does not change with another sample's deletions |
| :func:`check_conv_gradients` | conv | gradients equal those of the per-sample copies; deleted genes reach nothing |
| :func:`check_conv_shared` | conv (``supports_shared``) | ``forward_shared`` equals ``forward_batched`` at every (gene, column) |
| :func:`check_conv_masked_input` | conv (``supports_masked_input``) | ``forward_masked`` with the layer's masked input equals ``forward_batched`` |
| :func:`check_first_layer_delta` | conv + aggregator | the model's first-layer delta gives the states and gradients of the full first layer |
| :func:`check_aggregator_rows_independent` | aggregator | each output row depends on its own input rows only |
| :func:`check_documented` | any | every parameter has a description; a summary and a docstring |
| :func:`check_component` | model roles | built from spec YAML inside the model, a forward and backward pass are finite |
| :func:`check_baseline` | baseline | built from spec YAML, fitted on a training split; finite ``[S, T]`` predictions for unseen genes too, independent of set order and padding, ``predict_samples`` == ``predict``, a weights-only ``state_dict`` round trip predicts the same |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover - types only: the checks import the layers they test when they run
    from cellgi.data.cellgraph import CellGraph
    from cellgi.nn.operator import GraphOperator

__all__ = [
    "check_aggregator_rows_independent",
    "check_baseline",
    "check_component",
    "check_conv",
    "check_conv_batched_equals_copies",
    "check_conv_batchmates_independent",
    "check_conv_gradients",
    "check_conv_masked_input",
    "check_conv_shared",
    "check_documented",
    "check_first_layer_delta",
    "keep_from_sets",
    "make_batch",
    "model_spec_from_yaml",
    "per_sample_reference",
    "random_graph",
    "random_sets",
]

MODEL_ROLES = ("conv", "aggregator", "pooling", "local_predictor", "global_predictor", "combiner")


# ------------------------------------------------------------------------------------------ inputs
def random_graph(num_nodes: int = 40, seed: int = 0) -> CellGraph:
    """A :class:`~cellgi.data.cellgraph.CellGraph` with two undirected edge types (``und_a``, ``und_b``)
    and one directed (``dir``), self-loops and isolated genes in the mix."""
    from cellgi.data.cellgraph import CellGraph

    g = torch.Generator().manual_seed(seed)
    genes = [f"G{i:03d}" for i in range(num_nodes)]
    und = torch.randint(0, num_nodes - 3, (2, 3 * num_nodes), generator=g)  # last 3 genes isolated
    und2 = torch.randint(0, num_nodes, (2, num_nodes), generator=g)
    und2[:, :3] = torch.tensor([[5, 6, 7], [5, 6, 7]])  # self-loops
    directed = torch.randint(0, num_nodes, (2, 2 * num_nodes), generator=g)
    return CellGraph.from_edges(genes, [("und_a", und, False), ("und_b", und2, False), ("dir", directed, True)])


def random_sets(num_nodes: int, sizes: Sequence[int], seed: int = 1) -> list[Tensor]:
    """Deleted-gene index sets of the given sizes (distinct genes within a set)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(num_nodes, generator=g)[:k] for k in sizes]


def make_batch(sets: list[Tensor], num_targets: int = 1, seed: int = 2) -> Any:
    """A :class:`~cellgi.data.batch.PerturbationBatch` of ``sets`` with random targets."""
    from cellgi.data.batch import collate_index_sets

    y = torch.randn(len(sets), num_targets, generator=torch.Generator().manual_seed(seed))
    return collate_index_sets(sets, y)


def keep_from_sets(num_nodes: int, sets: list[Tensor]) -> Tensor:
    """``keep [N, B]``: False at each sample's deleted genes."""
    keep = torch.ones(num_nodes, len(sets), dtype=torch.bool)
    for b, s in enumerate(sets):
        keep[s, b] = False
    return keep


def per_sample_reference(conv: Any, x: Tensor, edge_index: Tensor, keep: Tensor) -> Tensor:
    """B per-sample copies with the deleted genes' edges removed, batched by PyG ``Batch`` -> [N, B, H]."""
    from torch_geometric.data import Batch, Data

    n, b = keep.shape
    data = []
    for i in range(b):
        alive = keep[edge_index[0], i] & keep[edge_index[1], i]
        data.append(Data(x=x, edge_index=edge_index[:, alive], num_nodes=n))
    big = Batch.from_data_list(data)
    out = conv(big.x, big.edge_index)
    return out.view(b, n, -1).transpose(0, 1)


def model_spec_from_yaml(model_yaml: str) -> Any:
    """Validate a ``model:`` section given as YAML (indented body, without the ``model:`` line)."""
    from cellgi.spec import parse_spec

    body = "\n".join("  " + line if line.strip() else line for line in model_yaml.strip("\n").splitlines())
    text = f"name: t\ndata:\n  synthetic: {{}}\ntraining: {{}}\nmodel:\n{body}\n"
    return parse_spec(text).model


def _conv(conv: Any, dim: int) -> Any:
    if isinstance(conv, str):
        from cellgi.registry import get_registry

        return get_registry("conv").build({"type": conv}, in_dim=dim, out_dim=dim)
    return conv


def _operator(graph: CellGraph, edge_type: str) -> GraphOperator:
    from cellgi.nn.operator import GraphOperator

    return GraphOperator.from_graph(graph, edge_type)


# ------------------------------------------------------------------------------------------- convs
def check_conv_batched_equals_copies(
    conv: Any, *, edge_type: str = "dir", sizes: Sequence[int] = (3, 2, 3, 1), dim: int = 8, seed: int = 3,
    atol: float = 1e-5,
) -> None:
    """Shared-adjacency message passing equals message passing on each sample's own graph (its deleted
    genes' edges removed), at every kept gene; and the deletions do change some kept genes' outputs.

    ``conv``: a registered conv name or a built conv (``in_dim == out_dim == dim``).
    """
    n = 40
    conv = _conv(conv, dim).eval()
    graph = random_graph(n, seed=seed)
    op = _operator(graph, edge_type)
    keep = keep_from_sets(n, random_sets(n, sizes, seed=seed + 1))
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    xb = x.unsqueeze(1).expand(n, len(sizes), dim).contiguous()
    with torch.no_grad():
        shared = conv.forward_batched(xb, op, keep)
        ref = per_sample_reference(conv, x, graph.edge_index(edge_type), keep)
        full = conv.forward_batched(xb, op, torch.ones_like(keep))
    assert shared.shape == (n, len(sizes), dim), f"forward_batched returned {tuple(shared.shape)}"
    assert torch.isfinite(shared).all(), "forward_batched returned non-finite values"
    torch.testing.assert_close(shared[keep], ref[keep], atol=atol, rtol=atol,
                               msg=lambda m: f"batched != per-sample copies ({edge_type}): {m}")
    assert not torch.allclose(full[keep], shared[keep]), "deleting genes changed no kept gene's output"


def check_conv_batchmates_independent(conv: Any, *, dim: int = 8, seed: int = 11) -> None:
    """A sample's outputs do not depend on the other samples of the batch (their inputs or deletions)."""
    n = 40
    conv = _conv(conv, dim).eval()
    graph = random_graph(n, seed=seed)
    op = _operator(graph, "und_a")
    sets = random_sets(n, [2, 3, 2], seed=seed)
    keep = keep_from_sets(n, sets)
    x = torch.randn(n, 3, dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        base = conv.forward_batched(x, op, keep)
        alone = conv.forward_batched(x[:, :1].contiguous(), op, keep[:, :1].contiguous())
        x2 = x.clone()
        x2[:, 1:] = torch.randn(n, 2, dim, generator=torch.Generator().manual_seed(seed + 1))
        keep2 = keep.clone()
        keep2[:, 1:] = keep_from_sets(n, random_sets(n, [4, 1], seed=seed + 2))
        other = conv.forward_batched(x2, op, keep2)
    k = keep[:, 0]
    torch.testing.assert_close(other[k, 0], base[k, 0], atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"sample 0 changed with its batch-mates: {m}")
    torch.testing.assert_close(alone[k, 0], base[k, 0], atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"sample 0 alone != sample 0 in a batch: {m}")


def check_conv_gradients(conv: Any, *, dim: int = 8, seed: int = 5) -> None:
    """Gradients through ``forward_batched`` equal those of the per-sample copies; a deleted gene's input
    reaches no kept gene's output."""
    n = 30
    conv = _conv(conv, dim)
    graph = random_graph(n, seed=seed)
    op = _operator(graph, "dir")
    keep = keep_from_sets(n, random_sets(n, [2, 3], seed=seed + 1))
    x1 = torch.randn(n, 2, dim, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    out = conv.eval().forward_batched(x1, op, keep)
    (out * keep.unsqueeze(-1)).square().sum().backward()
    x2 = x1.detach().transpose(0, 1).reshape(2 * n, dim).clone().requires_grad_(True)
    ei = graph.edge_index("dir")
    parts = []
    for b in range(2):
        alive = keep[ei[0], b] & keep[ei[1], b]
        parts.append(ei[:, alive] + b * n)
    ref = conv(x2, torch.cat(parts, dim=1)).view(2, n, dim).transpose(0, 1)
    (ref * keep.unsqueeze(-1)).square().sum().backward()
    g1 = x1.grad
    g2 = x2.grad.view(2, n, dim).transpose(0, 1)  # type: ignore[union-attr]
    torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-4, msg=lambda m: f"gradients differ: {m}")
    assert torch.count_nonzero(g1[~keep]) == 0, "a deleted gene's input reaches a kept gene's output"  # type: ignore[index]
    assert torch.count_nonzero(g1[keep]) > 0, "no gradient reaches the kept genes"  # type: ignore[index]


def check_conv_shared(conv: Any, *, dim: int = 8, seed: int = 7, sets: list[Tensor] | None = None,
                      graph: CellGraph | None = None) -> None:
    """For a conv declaring ``supports_shared``: ``forward_shared`` gives ``forward_batched``'s output at
    every (gene, column) pair (the wildtype row where no removed edge reaches it). ``sets``/``graph``:
    deletions and graph to use (default: random ones)."""
    n = 40
    conv = _conv(conv, dim).eval()
    if not getattr(type(conv), "supports_shared", False):
        return
    graph = random_graph(n, seed=seed) if graph is None else graph
    n = graph.num_nodes
    op = _operator(graph, "dir")
    keep = keep_from_sets(n, random_sets(n, [2, 3, 1], seed=seed) if sets is None else sets)
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    genes, cols = (~keep).nonzero(as_tuple=True)
    r = op.removed_in_edges(genes, cols, keep.shape[1])
    with torch.no_grad():
        wt, at_pairs = conv.forward_shared(x, op, r)
        full = conv.forward_batched(x.unsqueeze(1).expand(n, keep.shape[1], dim).contiguous(), op, keep)
    expected = wt.unsqueeze(1).expand_as(full).clone()
    expected.view(-1, dim)[r.keys] = at_pairs
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"forward_shared != forward_batched: {m}")


def check_conv_masked_input(conv: Any, *, dim: int = 8, seed: int = 9) -> None:
    """For a conv declaring ``supports_masked_input``: ``forward_masked(x, masked_input(x, keep), adj)``
    equals ``forward_batched(x, adj, keep)``, outputs and input gradients."""
    from cellgi.nn.convs.base import masked_input

    n = 40
    conv = _conv(conv, dim).eval()
    if not getattr(type(conv), "supports_masked_input", False):
        return
    graph = random_graph(n, seed=seed)
    op = _operator(graph, "dir")
    keep = keep_from_sets(n, random_sets(n, [2, 3, 1], seed=seed))
    x = torch.randn(n, keep.shape[1], dim, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    a = conv.forward_batched(x, op, keep)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    b = conv.forward_masked(x, masked_input(x, keep), op)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(b, a, msg=lambda m: f"forward_masked != forward_batched: {m}")
    torch.testing.assert_close(gb, ga, msg=lambda m: f"forward_masked gradients != forward_batched's: {m}")


def check_conv(conv: str) -> None:
    """Every conv check above, for a registered conv name."""
    for edge_type in ("und_a", "dir"):
        check_conv_batched_equals_copies(conv, edge_type=edge_type)
    check_conv_batched_equals_copies(conv, sizes=(2,))
    check_conv_batchmates_independent(conv)
    check_conv_gradients(conv)
    check_conv_shared(conv)
    check_conv_masked_input(conv)


# ------------------------------------------------------------------------------------ aggregators
def check_aggregator_rows_independent(aggregator: Any, *, dim: int = 8, num_graphs: int = 3, seed: int = 0) -> None:
    """Each output row depends on the same row of the inputs only: permuting the rows of every input
    permutes the output (and weights) the same way, and rows computed alone equal rows computed together."""
    if isinstance(aggregator, str):
        from cellgi.registry import get_registry

        aggregator = get_registry("aggregator").build({"type": aggregator}, dim=dim, num_graphs=num_graphs)
    aggregator = aggregator.eval()
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(12, dim, generator=g) for _ in range(num_graphs)]
    perm = torch.randperm(12, generator=g)
    with torch.no_grad():
        y, w = aggregator(xs)
        yp, wp = aggregator([x[perm] for x in xs])
        y_half, _ = aggregator([x[:5] for x in xs])
    torch.testing.assert_close(yp, y[perm], atol=1e-5, rtol=1e-5, msg=lambda m: f"rows mix: {m}")
    torch.testing.assert_close(y_half, y[:5], atol=1e-5, rtol=1e-5, msg=lambda m: f"rows mix: {m}")
    if w is not None:
        torch.testing.assert_close(wp, w[perm], atol=1e-5, rtol=1e-5, msg=lambda m: f"weights mix rows: {m}")


# ------------------------------------------------------------------------------------------ model
def _model_yaml(role: str, name: str, hidden: int = 16) -> str:
    from cellgi.registry import get_registry

    lines = [f"hidden_dim: {hidden}", "num_layers: 2", f"{role}: {{type: {name}}}"]
    if role == "combiner" and not get_registry("combiner").get(name).declares("uses_local"):
        lines.append("local_predictor: null")
    return "\n".join(lines)


def check_component(role: str, name: str, *, num_targets: int = 2) -> None:
    """A model component built from spec YAML inside the model: forward gives finite predictions of the
    right shape, a backward pass gives finite gradients, and the built part has a real ``repr``."""
    from cellgi.nn.model import LazyDango

    if role not in MODEL_ROLES:
        raise ValueError(f"check_component covers the model roles {MODEL_ROLES}, not {role!r}")
    spec = model_spec_from_yaml(_model_yaml(role, name))
    assert getattr(spec, role).type == name
    n = 30
    model = LazyDango.from_spec(spec, random_graph(n), num_targets=num_targets)
    batch = make_batch(random_sets(n, [2, 3, 2]), num_targets=num_targets)
    pred, _ = model(batch)
    assert pred.shape == (3, num_targets), f"prediction shape {tuple(pred.shape)}"
    assert torch.isfinite(pred).all(), "non-finite prediction"
    (pred - batch.y).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"non-finite gradient of {pname}"
    part = {
        "conv": lambda: model.layers[0][0].conv,
        "aggregator": lambda: model.aggregators[0],
        "pooling": lambda: model.pooling,
        "local_predictor": lambda: model.local_predictor,
        "global_predictor": lambda: model.global_predictor,
        "combiner": lambda: model.combiner,
    }[role]()
    assert part is not None, f"the model has no {role}"
    text = repr(part)
    assert text and "object at 0x" not in text and type(part).__name__ in text, f"poor repr: {text!r}"


def check_first_layer_delta(conv: str = "masked_gin", aggregator: str = "sum", *, residual: bool = True,
                            num_sets: int = 5, atol: float = 1e-5) -> None:
    """The model's first-layer delta (wildtype once + affected (gene, column) pairs) gives the gene
    states, aggregation weights and parameter gradients of the full first layer."""
    from cellgi.nn.model import LazyDango
    from cellgi.registry import get_registry

    n = 40
    spec = model_spec_from_yaml(
        f"hidden_dim: 16\nnum_layers: 2\nconv: {{type: {conv}}}\n"
        f"conv_wrapper: {{residual: {str(residual).lower()}, dropout: 0.0}}\naggregator: {{type: {aggregator}}}\n"
        "local_predictor: {type: hypergraph_attention, num_heads: 2}"
    )
    graph = random_graph(n)
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec, graph, 1).train()
    ei = graph.edge_index("und_a")
    a, b = int(ei[0, 0]), int(ei[1, 0])
    tricky = [torch.tensor([a, b]), torch.tensor([n - 1, 5]), torch.tensor([6, 7, 8])] + random_sets(n, [3, 2], seed=4)
    keep = torch.cat([keep_from_sets(n, tricky[:num_sets]), torch.ones(n, 1, dtype=torch.bool)], 1)
    model.first_layer_delta = True
    declared = all(w.supports_shared for w in model.layers[0]) and get_registry("aggregator").get(
        aggregator).declares("row_independent")
    assert model.uses_first_layer_delta == declared, (
        f"first-layer delta used: {model.uses_first_layer_delta}, declared capabilities say {declared}"
    )
    if not declared:
        return  # this combination declares no delta path; nothing to compare
    results = []
    for delta in (True, False):
        model.first_layer_delta = delta
        x, w = model.gene_states(keep)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(x.square().mean(), params, allow_unused=True)
        results.append((x.detach(), [t.detach() for t in w], grads))
    (xa, wa, ga), (xb, wb, gb) = results
    torch.testing.assert_close(xa, xb, atol=atol, rtol=atol, msg=lambda m: f"delta gene states differ: {m}")
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        torch.testing.assert_close(u, v, atol=1e-6, rtol=1e-5, msg=lambda m: f"delta weights differ: {m}")
    for u, v in zip(ga, gb):
        assert (u is None) == (v is None)
        if u is not None:
            torch.testing.assert_close(u, v, atol=atol, rtol=1e-4, msg=lambda m: f"delta gradients differ: {m}")


# -------------------------------------------------------------------------------------------- docs
def check_documented(role: str, name: str) -> None:
    """The component has a summary and a docstring, and every parameter a description (what
    ``cellgi registry show`` prints)."""
    from cellgi.registry import get_registry

    entry = get_registry(role).get(name)
    assert entry.summary, f"{role} {name}: no summary"
    assert entry.factory is not None and entry.factory.__doc__, f"{role} {name}: no docstring"
    for row in entry.describe():
        assert row["description"], f"{role} {name}: parameter {row['name']} has no description"


# ----------------------------------------------------------------------------------------- baselines
def baseline_data(num_genes: int = 40, num_targets: int = 2, seed: int = 0) -> Any:
    """A small :class:`~cellgi.baselines.BaselineData`: :func:`random_graph`, two per-gene inputs
    (``t.a``, ``t.b``), pairs and triples whose targets depend on the genes' inputs (plus noise; the first
    rows of the last target unmeasured), split into train / val / test with the last 8 genes in test only."""
    from cellgi.data.perturbations import PerturbationDataset
    from cellgi.baselines import BaselineContext, BaselineData

    g = torch.Generator().manual_seed(seed)
    graph = random_graph(num_genes, seed)
    feats = torch.randn(num_genes, 2, generator=g)
    sets = [torch.randperm(num_genes, generator=g)[: 2 + (i % 4 == 0)] for i in range(400)]
    y = torch.stack([torch.stack([feats[s, 0].sum() * feats[s, 1].prod(), feats[s, 1].sum()]) for s in sets])
    y = y[:, :num_targets] + 0.1 * torch.randn(len(sets), num_targets, generator=g)
    y[:20, -1] = float("nan")
    ds = PerturbationDataset.from_sets([s.tolist() for s in sets], y, [f"y{j}" for j in range(num_targets)], num_genes)
    held = torch.tensor([bool((s >= num_genes - 8).any()) for s in sets])
    rest = (~held).nonzero().flatten()
    val = rest[::6]
    train = rest[~torch.isin(rest, val)]
    splits = {"train": train, "val": val, "test": held.nonzero().flatten()}
    ctx = BaselineContext(graph, feats, ["t.a", "t.b"], num_targets)
    return BaselineData(ds, splits, (y - y[train].nanmean(0)) / 2.0, ctx, seed)


def check_baseline(name: str, params: dict[str, Any] | None = None, *, data: Any = None) -> None:
    """The ``baseline`` role's contract for the member ``name`` (with ``params``): built from a spec's
    ``training.baselines`` YAML, fitted on :func:`baseline_data` (or ``data``), it predicts finite
    ``[S, T]`` values for every set, sets of genes never seen in training included; the set order and the
    padding slots do not matter; :meth:`predict_samples` equals :meth:`predict`; and a ``state_dict`` saved
    with ``torch.save`` and read back with ``weights_only=True`` into a fresh member predicts the same."""
    import io

    import yaml

    from cellgi.spec import parse_spec
    from cellgi.baselines import build_baseline

    entry_yaml = yaml.safe_dump({"type": name, **(params or {})}, default_flow_style=True).strip()
    spec = parse_spec(f"name: t\ndata:\n  synthetic: {{}}\ntraining:\n  baselines: [{entry_yaml}]\nmodel: {{}}\n")
    (entry,) = spec.training.baselines
    data = baseline_data() if data is None else data
    t = data.y.shape[1]
    b = build_baseline(entry, data.context)
    info = b.fit(data)
    assert isinstance(info, dict), f"baseline {name}: fit() must return a dict (its info), got {type(info).__name__}"
    idx = torch.arange(len(data.dataset))
    padded, mask = data.sets(idx)
    pred = b.predict(padded, mask)
    assert isinstance(pred, Tensor) and tuple(pred.shape) == (len(idx), t), (
        f"baseline {name}: predict() gave {getattr(pred, 'shape', type(pred))}, expected ({len(idx)}, {t})")
    assert torch.isfinite(pred).all(), f"baseline {name}: non-finite predictions"
    test = data.splits["test"]
    assert torch.isfinite(pred[test]).all(), f"baseline {name}: non-finite predictions for sets of unseen genes"
    full = mask.all(1)  # reverse each full set (a set with padding keeps its order: its slots stay put)
    got = b.predict(torch.where(full.unsqueeze(1), padded.flip(1), padded), mask)
    torch.testing.assert_close(got.double(), pred.double(), atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"baseline {name}: predictions depend on the order within a set: {m}")
    junk = torch.where(mask, padded, torch.full_like(padded, 3))  # another gene id in the padding slots
    torch.testing.assert_close(b.predict(junk, mask).double(), pred.double(),
                               atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"baseline {name}: padding slots change the predictions: {m}")
    torch.testing.assert_close(b.predict_samples(data, test).double(), pred[test].double(), atol=1e-5, rtol=1e-5,
                               msg=lambda m: f"baseline {name}: predict_samples differs from predict: {m}")
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = build_baseline(entry, data.context)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.predict(padded, mask).double(), pred.double(), atol=1e-6, rtol=1e-6,
                               msg=lambda m: f"baseline {name}: a state_dict round trip predicts otherwise: {m}")
