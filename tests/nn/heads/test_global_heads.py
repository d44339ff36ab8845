"""Global heads: the MLP on the pooled cell states and its inputs."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.heads import HeadInput, MLPGlobalPredictor


@pytest.mark.parametrize("inputs", [["z_p"], ["z_p", "z_w"], ["z_w", "z_i", "z_p"]])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_global_mlp(inputs, num_layers):
    head = MLPGlobalPredictor(num_layers=num_layers, inputs=inputs, dim=8, num_targets=2)
    z_w, z_i = torch.randn(1, 8), torch.randn(4, 8)
    pred, rep = head(HeadInput(states=torch.zeros(4, 1, 8), mask=torch.ones(4, 1, dtype=torch.bool),
                                     z_w=z_w, z_i=z_i, z_p=z_w - z_i))
    assert pred.shape == (4, 2) and rep.shape == (4, 8)
    if inputs == ["z_p"] and num_layers == 1:
        torch.testing.assert_close(rep, z_w - z_i)
    with pytest.raises(ValueError, match="distinct"):
        MLPGlobalPredictor(inputs=["z_p", "z_p"], dim=8, num_targets=1)


def test_global_head_names_the_missing_pooled_states():
    head = MLPGlobalPredictor(dim=8, num_targets=1)
    with pytest.raises(ValueError, match=r"global mlp needs HeadInput.z_w \(the model passes it\)"):
        head(HeadInput(states=torch.zeros(4, 1, 8), mask=torch.ones(4, 1, dtype=torch.bool)))
