"""``quantile`` loss: built from spec YAML, the pinball formula, NaN targets, weights, gradient."""

from __future__ import annotations

import pytest
import torch

from cellgi.registry import get_registry
from cellgi.spec import SpecError, parse_spec
from cellgi_gated_sum.losses import QuantileLoss

@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


#: the smallest valid cellgi spec; tests append a section naming a plugin component
BASE_SPEC = """\
name: plugin-test
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""


def build(yaml_block: str) -> QuantileLoss:
    spec = parse_spec(BASE_SPEC + "training:\n  loss: " + yaml_block + "\n", "t.yaml")
    return get_registry("loss").build(spec.training.loss)


def test_pinball_formula_and_gradient() -> None:
    loss = build("{type: quantile, quantile: 0.9}")
    assert isinstance(loss, QuantileLoss) and loss.quantile == 0.9
    pred = torch.tensor([[1.0], [0.0]], requires_grad=True)
    target = torch.tensor([[0.0], [1.0]])
    value = loss(pred, target)
    # over-prediction by 1 costs 0.1, under-prediction by 1 costs 0.9; mean over 2 samples
    torch.testing.assert_close(value, torch.tensor(0.5))
    value.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([[0.05], [-0.45]]))
    assert repr(loss) == "QuantileLoss(quantile=0.9)"


def test_median_is_half_mae_and_nan_targets_and_weights_are_honoured() -> None:
    loss = build("{type: quantile}")
    pred = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    target = torch.tensor([[0.0, float("nan")], [1.0, 0.0]])
    torch.testing.assert_close(loss(pred, target), torch.tensor((0.5 * 1 + 0.5 * 2 + 0.0) / 3))
    weight = torch.tensor([3.0, 1.0])
    torch.testing.assert_close(loss(pred, target, weight), torch.tensor((3 * 0.5 + 1 * 1.0 + 0.0) / 5))


def test_minimiser_is_the_quantile() -> None:
    """Fitting one constant to samples with the pinball loss finds their tau-quantile."""
    torch.manual_seed(0)
    y = torch.randn(2000, 1)
    loss = build("{type: quantile, quantile: 0.8}")
    c = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([c], lr=0.5)
    for _ in range(400):
        opt.zero_grad()
        loss(c.expand_as(y), y).backward()
        opt.step()
    assert abs(c.item() - torch.quantile(y, 0.8).item()) < 0.05


@pytest.mark.parametrize("value", ["0.0", "1.0", "1.5"])
def test_quantile_outside_open_interval_is_a_spec_error(value: str) -> None:
    with pytest.raises(SpecError, match=r"t\.yaml:5: training\.loss\.quantile: Input should be"):
        build("{type: quantile, quantile: " + value + "}")
