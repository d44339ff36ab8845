"""Combiners: gate, concat, global_only, local_only, and the declared uses_local / uses_global."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.heads import ConcatCombiner, GateCombiner, GlobalOnlyCombiner, HeadInput, LocalOnlyCombiner

#: the heads' input of 5 sets of one gene (combiners here read only the heads' outputs)
X = HeadInput(states=torch.zeros(5, 1, 8), mask=torch.ones(5, 1, dtype=torch.bool))


@pytest.mark.parametrize("gate_input", ["predictions", "representations"])
def test_gate_combiner(gate_input):
    comb = GateCombiner(gate_input=gate_input, dim=8, num_targets=2)
    local = (torch.randn(5, 2), torch.randn(5, 8))
    glob = (torch.randn(5, 2), torch.randn(5, 8))
    pred, w = comb(local, glob, X)
    torch.testing.assert_close(w.sum(-1), torch.ones(5))
    torch.testing.assert_close(pred, w[:, :1] * local[0] + w[:, 1:] * glob[0])
    with pytest.raises(ValueError, match="needs the local head"):
        comb(None, glob, X)


def test_concat_and_global_only():
    local = (torch.randn(5, 1), torch.randn(5, 8))
    glob = (torch.randn(5, 1), torch.randn(5, 8))
    pred, w = ConcatCombiner(dim=8, num_targets=1)(local, glob, X)
    assert pred.shape == (5, 1) and w is None
    only = GlobalOnlyCombiner(dim=8, num_targets=1)
    assert torch.equal(only(None, glob, X)[0], glob[0])
    with pytest.raises(ValueError, match="uses no local head"):
        only(local, glob, X)
    assert ConcatCombiner.uses_local and not GlobalOnlyCombiner.uses_local


def test_local_only_refuses_a_global_head_and_gate_needs_one():
    local = (torch.randn(5, 1), torch.randn(5, 8))
    only = LocalOnlyCombiner(dim=8, num_targets=1)
    assert torch.equal(only(local, None, X)[0], local[0])
    with pytest.raises(ValueError, match="uses no global head but was given a global prediction"):
        only(local, local, X)
    with pytest.raises(ValueError, match="needs the global head's output"):
        GateCombiner(dim=8, num_targets=1)(local, None, X)
    assert LocalOnlyCombiner.uses_local and not LocalOnlyCombiner.uses_global and GateCombiner.uses_global
