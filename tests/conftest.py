"""Shared test fixtures: where the real yeast data lives, temp caches, seeded torch, one tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
YEAST = Path(os.environ.get("CELLGI_YEAST_DATA", REPO.parent / "shared" / "data" / "yeast")).resolve()


@pytest.fixture(scope="session")
def yeast_dir() -> Path:
    """The real yeast data folder (../shared/data/yeast). CI sets CELLGI_REQUIRE_REAL_DATA=1 so that a
    missing folder fails the run instead of skipping."""
    if not (YEAST / "genes" / "SGD_features.tab").is_file():
        msg = f"real yeast data not found at {YEAST} (set CELLGI_YEAST_DATA)"
        if os.environ.get("CELLGI_REQUIRE_REAL_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return YEAST


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a private processed-data cache unless it sets one itself."""
    monkeypatch.setenv("CELLGI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cellgi-cache"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run of the tiny spec (cross-attention aggregator: it has weights to plot); shared
    by the training and run-folder tests."""
    from rich.console import Console
    from tiny_specs import write_tiny_spec

    from cellgi.spec import load_spec
    from cellgi.experiments.series import train_series as train

    base = tmp_path_factory.mktemp("tiny_run")
    spec = load_spec(write_tiny_spec(base, aggregator="cross_attention"))
    result = train(spec, run_dir=base / "run", progress=False, console=Console(file=open(base / "out.txt", "w")))
    assert result.metrics
    return result.run_dir
