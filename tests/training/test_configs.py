"""The shipped configs validate (the real-data one also names files that exist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellgi.spec import load_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["quickstart.yaml", "yeast_real.yaml", "dango_lazy_kuzmin.yaml", "emap_real.yaml"])
def test_config_validates(name):
    spec = load_spec(CONFIGS / name)
    assert spec.name == name.removesuffix(".yaml")


def test_published_config_shape():
    spec = load_spec(CONFIGS / "dango_lazy_kuzmin.yaml")
    m = spec.model
    assert len(spec.data.graphs) == 9 and m.hidden_dim == 64 and m.num_layers == 3
    assert m.aggregator.type == "pairwise_interaction" and m.aggregator.pairwise_hidden_dim == 32
    assert m.conv.type == "masked_gin" and m.conv.num_mlp_layers == 4 and m.conv.activation == "gelu"
    assert m.local_predictor.num_heads == 8


@pytest.mark.parametrize("name", ["yeast_real.yaml", "emap_real.yaml"])
def test_real_data_config_files_exist(yeast_dir, name):
    spec = load_spec(CONFIGS / name)
    root = Path(spec.data.root)
    assert root.resolve() == yeast_dir.resolve()
    for g in spec.data.graphs:
        assert (root / g.path).is_file(), g.path
    for s in spec.data.screens:
        assert (root / s.path).is_file(), s.path
    for f in spec.data.features:
        if getattr(f, "path", None):
            assert (root / f.path).is_file(), f.path
    assert spec.data.split.kind == "gene_folds"  # gene-held-out test and gene-disjoint validation
