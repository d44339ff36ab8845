"""``masked_max`` pooling: built from spec YAML, hard and smooth max over kept genes, gradient."""

from __future__ import annotations

import pytest
import torch

from cellgi.registry import get_registry
from cellgi.spec import parse_spec
from cellgi_gated_sum.pooling import MaskedMaxPooling

N, B, H = 9, 4, 6

@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


#: the smallest valid cellgi spec; tests append a section naming a plugin component
BASE_SPEC = """\
name: plugin-test
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""


def build(yaml_block: str) -> MaskedMaxPooling:
    spec = parse_spec(BASE_SPEC + "model:\n  hidden_dim: 6\n  pooling: " + yaml_block + "\n", "t.yaml")
    return get_registry("pooling").build(spec.model.pooling, dim=spec.model.hidden_dim)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.randn(N, B, H, requires_grad=True)
    keep = torch.rand(N, B) > 0.3
    keep[:, 2] = False  # a sample with no kept gene pools to zeros
    keep[0, 0] = True
    return h, keep


def test_hard_max_over_kept_genes_only() -> None:
    pool = build("{type: masked_max}")
    h, keep = data()
    z = pool(h, keep)
    assert z.shape == (B, H)
    for b in range(B):
        if keep[:, b].any():
            torch.testing.assert_close(z[b], h[keep[:, b], b].max(0).values)
        else:
            assert (z[b] == 0).all()
    z.sum().backward()
    assert torch.isfinite(h.grad).all()
    assert (h.grad[~keep] == 0).all(), "deleted genes must get no gradient"
    assert h.grad.sum() > 0


@pytest.mark.parametrize("t", [0.05, 1.0, 100.0])
def test_smooth_max_lies_between_mean_and_max(t: float) -> None:
    pool = build("{type: masked_max, temperature: " + str(t) + "}")
    h, keep = data()
    z = pool(h, keep)
    z.sum().backward()
    assert torch.isfinite(h.grad).all() and (h.grad[~keep] == 0).all()
    assert (h.grad[keep] > 0).all(), "the smooth max passes gradient to every kept gene"
    for b in range(B):
        if not keep[:, b].any():
            assert (z[b] == 0).all()
            continue
        kept = h[keep[:, b], b].detach()
        assert (z[b] <= kept.max(0).values + 1e-5).all()
        assert (z[b] >= kept.mean(0) - 1e-5).all()
    if t == 0.05:
        torch.testing.assert_close(z[0], h[keep[:, 0], 0].max(0).values, atol=0.2, rtol=0)


def test_pooling_ignores_other_samples_and_deleted_genes() -> None:
    pool = build("{type: masked_max}")
    h, keep = data()
    z = pool(h, keep)
    h2 = h.detach().clone()
    h2[~keep] = 1e6  # deleted genes' states must not matter
    h2[:, 1] = -5.0  # nor another sample's
    z2 = pool(h2, keep)
    torch.testing.assert_close(z2[0], z[0].detach())
    torch.testing.assert_close(z2[3], z[3].detach())


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected h"):
        build("{type: masked_max}")(torch.randn(N, B, H), torch.ones(N, B + 1, dtype=torch.bool))
