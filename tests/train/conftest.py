"""Fixtures of the training tests: tiny synthetic specs and one trained run shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SPEC = """\
name: tiny
seed: 0
data:
  synthetic:
    num_genes: 200
    num_samples: 500
    edge_types: {{physical: 600, regulatory: 300}}
    directed: [regulatory]
  split: {{kind: random, fractions: [0.8, 0.1, 0.1], seed: 0}}
  batch_size: 32
  eval_batch_size: 64
  cache: false
model:
  hidden_dim: 16
  num_layers: 2
  aggregator: {{type: {aggregator}}}
  local_predictor: {{type: hypergraph_attention, num_heads: 2}}
training:
  max_epochs: {epochs}
  log_every_n_steps: 5
  trainer: {{accelerator: cpu, devices: 1}}
"""


def write_tiny_spec(folder: Path, *, epochs: int = 2, aggregator: str = "sum", name: str = "tiny.yaml") -> Path:
    """A tiny synthetic spec (200 genes, 500 samples, H=16) written to ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(TINY_SPEC.format(epochs=epochs, aggregator=aggregator))
    return p


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run of the tiny spec (cross-attention aggregator: it has weights to plot)."""
    from rich.console import Console

    from cellgi.spec import load_spec
    from cellgi.train.runner import train

    base = tmp_path_factory.mktemp("tiny_run")
    spec = load_spec(write_tiny_spec(base, aggregator="cross_attention"))
    result = train(spec, run_dir=base / "run", progress=False, console=Console(file=open(base / "out.txt", "w")))
    assert result.metrics
    return result.run_dir
