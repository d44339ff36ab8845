"""Gene embedding, fixed node features from TSV, preprocessor."""

from __future__ import annotations

import pytest
import torch

from cellgi.nn.embedding import GeneEmbedding, Preprocessor, load_node_features


def test_load_node_features_with_and_without_header(tmp_path):
    genes = ["YA", "YB", "YC"]
    p = tmp_path / "f.tsv"
    p.write_text("# comment\nYC\t3\t30\nYA\t1\t10\n\nYB\t2\t20\n")
    torch.testing.assert_close(load_node_features(p, genes), torch.tensor([[1.0, 10], [2, 20], [3, 30]]))
    p.write_text("orf\tA\tB\nYC\t3\t30\nYA\t1\t10\nYB\t2\t20\n")
    assert load_node_features(p, genes).shape == (3, 2)


@pytest.mark.parametrize(
    "text,match",
    [
        ("YA\t1\nYB\t2\nYC\t3\nYZ\t4\n", "not in the model's gene list"),
        ("YA\t1\nYB\t2\n", "have no features"),
        ("YA\t1\nYB\t2\t3\nYC\t1\n", "expected 1"),
        ("YA\t1\nYA\t2\nYB\t2\nYC\t3\n", "appears twice"),
        ("YA\t1\nYB\tx\nYC\t3\n", "non-numeric"),
        ("YA\tnan\nYB\t1\nYC\t3\n", "non-finite"),
    ],
)
def test_load_node_features_errors(tmp_path, text, match):
    p = tmp_path / "f.tsv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_node_features(p, ["YA", "YB", "YC"])


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_node_features("/nonexistent/feats.tsv", ["YA"])


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
