"""Gene embedding (learnable ID + per-gene features, unseen genes, gene dropout), preprocessor."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.embedding import GeneEmbedding, Preprocessor


def test_unseen_genes_use_the_shared_unknown_vector():
    emb = GeneEmbedding(6, 4, features=torch.arange(12.0).view(6, 2))
    emb.set_seen(torch.tensor([0, 2]))
    out = emb()
    assert torch.equal(out[1, :4], emb.unknown) and torch.equal(out[5, :4], emb.unknown)
    assert torch.equal(out[0, :4], emb.weight[0]) and not torch.equal(out[0, :4], emb.unknown)
    assert torch.equal(out[:, 4:], torch.arange(12.0).view(6, 2))
    assert "seen" in emb.state_dict() and "unknown" in emb.state_dict()


def test_gene_dropout_only_in_training():
    torch.manual_seed(0)
    emb = GeneEmbedding(400, 3, gene_dropout=0.5)
    emb.train()
    dropped = (emb() == emb.unknown).all(1).float().mean()
    assert 0.35 < float(dropped) < 0.65
    emb.eval()
    assert not (emb() == emb.unknown).all(1).any()


def test_features_only_and_errors():
    emb = GeneEmbedding(5, 0, features=torch.ones(5, 3))
    assert emb.out_dim == 3 and emb.weight is None and emb().shape == (5, 3)
    emb.set_seen(torch.tensor([1]))  # no learnable table: nothing changes
    assert torch.equal(emb(), torch.ones(5, 3))
    with pytest.raises(ValueError, match="gene input is empty"):
        GeneEmbedding(5, 0)
    with pytest.raises(ValueError, match=r"must be \[5, F\]"):
        GeneEmbedding(5, 2, features=torch.ones(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        GeneEmbedding(5, 2, features=torch.full((5, 1), float("nan")))
    with pytest.raises(ValueError, match="gene_dropout"):
        GeneEmbedding(5, 2, gene_dropout=1.0)


def test_embedding_and_preprocessor():
    emb = GeneEmbedding(50, 8, init_std=0.01, features=torch.ones(50, 3))
    out = emb()
    assert out.shape == (50, 11) and emb.out_dim == 11
    assert out[:, :8].std() < 0.05 and torch.equal(out[:, 8:], torch.ones(50, 3))
    pre = Preprocessor(11, 8, num_layers=2, norm="rms", activation="relu", dropout=0.1)
    assert pre(out).shape == (50, 8)
    assert isinstance(Preprocessor(8, 8, num_layers=0).layers, torch.nn.Sequential)
    with pytest.raises(ValueError, match="num_layers >= 1"):
        Preprocessor(11, 8, num_layers=0)
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        Preprocessor(8, 8, norm="batch")
