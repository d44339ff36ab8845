"""Tiny synthetic specs shared by the training and CLI tests (200 genes, 500 samples, H=16).

Imported by name (``from tiny_specs import ...``): ``tests/`` is on sys.path through its conftest.
"""

from __future__ import annotations

from pathlib import Path

TINY_SPEC = """\
name: {run_name}
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
    p.write_text(tiny_spec("tiny", epochs=epochs, aggregator=aggregator))
    return p


def tiny_spec(run_name: str, *, epochs: int = 1, aggregator: str = "sum") -> str:
    """The tiny spec text under run name ``run_name``."""
    return TINY_SPEC.format(run_name=run_name, epochs=epochs, aggregator=aggregator)
