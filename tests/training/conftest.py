"""Fixtures of the training tests: tiny synthetic specs and one trained run shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_specs import write_tiny_spec


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run of the tiny spec (cross-attention aggregator: it has weights to plot)."""
    from rich.console import Console

    from cellgi.spec import load_spec
    from cellgi.experiments.series import train_series as train

    base = tmp_path_factory.mktemp("tiny_run")
    spec = load_spec(write_tiny_spec(base, aggregator="cross_attention"))
    result = train(spec, run_dir=base / "run", progress=False, console=Console(file=open(base / "out.txt", "w")))
    assert result.metrics
    return result.run_dir
