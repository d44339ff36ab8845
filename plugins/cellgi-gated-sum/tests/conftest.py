"""Fixtures of the plugin's tests: a minimal cellgi spec to put components into, seeded torch."""

from __future__ import annotations

import pytest
import torch

#: the smallest valid cellgi spec; tests append a model/training section naming a plugin component
BASE_SPEC = """\
name: plugin-test
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
