"""cellgi.nn.mlp.MLP: chunked CPU inference gives what one pass gives (the same bits at the shipped chunk
size and the published width; to float rounding with tiny chunks, where the matrix kernels take other
paths), and only runs where it may."""

from __future__ import annotations

import pytest
import torch

import cellgi.nn.mlp as mlp_mod
from cellgi.nn.mlp import MLP
from nn_helpers import make_batch, model_spec_from_yaml, random_graph, random_sets


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(mlp_mod, "CPU_INFERENCE_CHUNK_ROWS", 7)  # chunk even small test tensors


@pytest.mark.parametrize("norm", ["none", "layer", "rms"])
@pytest.mark.parametrize("shape", [(50, 16), (13, 9, 16)])
def test_chunked_inference_equals_the_one_pass(small_chunks, norm, shape):
    mlp = MLP(16, 24, 8, num_layers=4, norm=norm).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        chunked = mlp(x)
        mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 0
        whole = mlp(x)
    assert chunked.shape == (*shape[:-1], 8)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 7
        a = mlp(x)
        mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 0
        b = mlp(x)
    assert a.dtype == b.dtype == torch.bfloat16
    torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


def test_shipped_chunk_size_gives_the_same_bits_at_the_published_width():
    """4 x 64x64 layers with GELU (the published GIN MLP) on 3.5 chunks of rows."""
    assert mlp_mod.CPU_INFERENCE_CHUNK_ROWS == 4096
    mlp = MLP(64, 64, 64, num_layers=4).eval()
    x = torch.randn(4096 * 3 + 2000, 64)
    with torch.no_grad():
        chunked = mlp(x)
        mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 0
        try:
            whole = mlp(x)
        finally:
            mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 4096
    assert torch.equal(chunked, whole)


def test_chunks_only_without_autograd_and_without_training_dropout(small_chunks, monkeypatch):
    calls = []
    mlp = MLP(4, 4, 4, num_layers=2, dropout=0.5)
    monkeypatch.setattr(mlp.layers, "forward", lambda x: calls.append(x.shape[0]) or x)
    x = torch.randn(40, 4)
    mlp.train()
    with torch.no_grad():
        mlp(x)  # training-mode dropout: the random masks must not depend on chunking
    mlp(x.requires_grad_())  # autograd: one pass (chunks would cost a zero-filled gradient each)
    assert calls == [40, 40]
    mlp.eval()
    with torch.no_grad():
        mlp(x)
    assert calls[2:] == [7] * 5 + [5]


def test_model_predictions_are_the_same_with_and_without_chunks(small_chunks):
    from cellgi.nn.model import LazyDango

    spec = model_spec_from_yaml("hidden_dim: 16\nnum_layers: 2\nconv: {type: masked_gin, num_mlp_layers: 3}")
    model = LazyDango.from_spec(spec, random_graph(30), num_targets=2).eval()
    batch = make_batch(random_sets(30, [2, 3, 2, 3]), num_targets=2)
    with torch.no_grad():
        chunked = model(batch)[0]
        mlp_mod.CPU_INFERENCE_CHUNK_ROWS = 0
        whole = model(batch)[0]
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
