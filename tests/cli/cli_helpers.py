"""Helpers of the CLI tests: a tiny synthetic spec and a trained run of it."""

from __future__ import annotations

from pathlib import Path

from cellgi.cli.main import main

TINY_SPEC = """\
name: {name}
data:
  synthetic:
    num_genes: 200
    num_samples: 500
    edge_types: {{physical: 600, regulatory: 300}}
    directed: [regulatory]
  batch_size: 32
  cache: false
model:
  hidden_dim: 16
  num_layers: 2
  local_predictor: {{type: hypergraph_attention, num_heads: 2}}
training:
  max_epochs: 1
  trainer: {{accelerator: cpu}}
"""


def tiny_spec(name: str) -> str:
    """The tiny synthetic spec (200 genes, 500 samples, 1 epoch) under run name ``name``."""
    return TINY_SPEC.format(name=name)


def train_tiny_run(base: Path, name: str) -> Path:
    """Train the tiny spec into ``base/run`` in-process and return the run folder."""
    (base / "t.yaml").write_text(tiny_spec(name))
    assert main(["train", str(base / "t.yaml"), "--run-dir", str(base / "run"), "--no-progress"]) == 0
    return base / "run"
