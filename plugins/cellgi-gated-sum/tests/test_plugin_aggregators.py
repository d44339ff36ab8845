"""``gated_sum`` and ``topk_attention``: built from spec YAML, shapes, weights, gradients, maths."""

from __future__ import annotations

import pytest
import torch

from cellgi.registry import get_registry
from cellgi.spec import SpecError, parse_spec
from cellgi_gated_sum.aggregators import GatedSumAggregator, TopKAttentionAggregator

H, G = 8, 3

@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


#: the smallest valid cellgi spec; tests append a section naming a plugin component
BASE_SPEC = """\
name: plugin-test
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""


def build(yaml_block: str, num_graphs: int = G):
    """Validate a spec whose model.aggregator is ``yaml_block`` and build the aggregator from it."""
    spec = parse_spec(BASE_SPEC + "model:\n  hidden_dim: 8\n  aggregator: " + yaml_block + "\n", "t.yaml")
    return get_registry("aggregator").build(spec.model.aggregator, dim=spec.model.hidden_dim, num_graphs=num_graphs)


def inputs(shape: tuple[int, ...] = (5, 4), g: int = G) -> list[torch.Tensor]:
    return [torch.randn(*shape, H, requires_grad=True) for _ in range(g)]


@pytest.mark.parametrize(
    "block",
    [
        "{type: gated_sum}",
        "{type: gated_sum, normalize: true, gate_bias: -1.0}",
        "{type: gated_sum, shared_gate: true}",
        "{type: topk_attention}",
        "{type: topk_attention, k: 1, temperature: 0.5, graph_bias: false, normalize: all}",
        "{type: topk_attention, k: 2, normalize: all}",
        "{type: topk_attention, k: 3}",
    ],
)
@pytest.mark.parametrize("shape", [(5,), (5, 4)])
def test_shapes_weights_and_gradient(block: str, shape: tuple[int, ...]) -> None:
    agg = build(block)
    xs = inputs(shape)
    out, weights = agg(xs)
    assert out.shape == (*shape, H)
    assert weights is not None and weights.shape == (*shape, G)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    out.square().sum().backward()
    for x in xs:
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in agg.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{block}: parameter {name} gets no gradient"
    assert agg.weight_labels(["a", "b", "c"]) == ["a", "b", "c"]
    assert type(agg).__name__ in repr(agg) and "num_graphs=3" in repr(agg)


def test_gated_sum_is_the_gated_formula() -> None:
    agg = build("{type: gated_sum}")
    assert isinstance(agg, GatedSumAggregator)
    xs = [torch.randn(6, H) for _ in range(G)]
    out, gates = agg(xs)
    expect_gates = torch.stack(
        [torch.sigmoid(x @ agg.gate_weight[g] + agg.gate_bias_param[g]) for g, x in enumerate(xs)], -1
    )
    torch.testing.assert_close(gates, expect_gates)
    torch.testing.assert_close(out, sum(gates[:, g : g + 1] * xs[g] for g in range(G)))


def test_gated_sum_saturated_gates_give_plain_sum_and_mean() -> None:
    xs = [torch.randn(4, H) for _ in range(G)]
    agg = build("{type: gated_sum, gate_bias: 50.0}")
    torch.nn.init.zeros_(agg.gate_weight)
    out, gates = agg(xs)
    torch.testing.assert_close(gates, torch.ones(4, G))
    torch.testing.assert_close(out, sum(xs))
    mean = build("{type: gated_sum, normalize: true}")
    torch.nn.init.zeros_(mean.gate_weight)
    out, weights = mean(xs)
    torch.testing.assert_close(out, sum(xs) / G)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4))


def test_gated_sum_acts_per_node() -> None:
    """Changing one gene's inputs changes only that gene's output (no mixing of genes or samples)."""
    agg = build("{type: gated_sum}")
    xs = [torch.randn(5, 2, H) for _ in range(G)]
    out, _ = agg(xs)
    xs2 = [x.clone() for x in xs]
    xs2[1][3, 1] += 1.0
    out2, _ = agg(xs2)
    changed = (out2 - out).abs().sum(-1) > 0
    assert changed[3, 1] and changed.sum() == 1


def test_topk_keeps_exactly_k_graphs_per_node() -> None:
    agg = build("{type: topk_attention, k: 2}")
    assert isinstance(agg, TopKAttentionAggregator)
    xs = [torch.randn(7, 3, H) for _ in range(G)]
    out, w = agg(xs)
    assert ((w > 0).sum(-1) == 2).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(7, 3))
    # the kept graphs are the highest-scoring ones
    s = agg.scores(xs)
    dropped = s.argmin(-1, keepdim=True)
    assert (w.gather(-1, dropped) == 0).all()
    torch.testing.assert_close(out, sum(w[..., g : g + 1] * xs[g] for g in range(G)))


def test_topk_with_k_equal_g_is_full_softmax_attention() -> None:
    agg = build("{type: topk_attention, k: 3, temperature: 2.0}")
    xs = [torch.randn(4, H) for _ in range(G)]
    _, w = agg(xs)
    torch.testing.assert_close(w, torch.softmax(agg.scores(xs) / 2.0, -1))


def test_topk_normalize_all_is_the_full_softmax_with_dropped_graphs_zeroed() -> None:
    agg = build("{type: topk_attention, k: 2, normalize: all, temperature: 0.7}")
    xs = [torch.randn(6, H) for _ in range(G)]
    _, w = agg(xs)
    full = torch.softmax(agg.scores(xs) / 0.7, -1)
    kept = w > 0
    assert (kept.sum(-1) == 2).all()
    torch.testing.assert_close(w[kept], full[kept])
    assert (w.sum(-1) < 1).all()


def test_topk_one_kept_is_a_hard_choice() -> None:
    """k = 1 with normalize 'kept' copies the best graph's output (weight exactly 1)."""
    agg = build("{type: topk_attention, k: 1}")
    xs = [torch.randn(6, H) for _ in range(G)]
    out, w = agg(xs)
    best = agg.scores(xs).argmax(-1)
    torch.testing.assert_close(w, torch.nn.functional.one_hot(best, G).float())
    torch.testing.assert_close(out, torch.stack(xs, 1)[torch.arange(6), best])


def test_topk_k_larger_than_graphs_is_refused_at_build() -> None:
    with pytest.raises(ValueError, match=r"k=3 must lie in \[1, num_graphs=2\]"):
        build("{type: topk_attention, k: 3}", num_graphs=2)


def test_wrong_number_of_graphs_is_an_error() -> None:
    agg = build("{type: gated_sum}")
    with pytest.raises(ValueError, match="3 graphs got 2"):
        agg(inputs(g=2))


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ("{type: topk_attention, k: 0}", "model.aggregator.k: Input should be greater than or equal to 1"),
        ("{type: topk_attention, k: '2'}", "model.aggregator.k: Input should be a valid integer"),
        ("{type: gated_sum, gate: 1.0}", "model.aggregator.gate: unknown key"),
        ("{type: gated_summ}", "did you mean 'gated_sum'"),
    ],
)
def test_bad_params_are_spec_errors_with_line(block: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        build(block)
    msg = str(exc.value)
    assert msg.startswith("t.yaml:6: ") and needle in msg, msg
