"""Fixtures of the model tests (helpers live in ``nn_helpers``)."""

from __future__ import annotations

import pytest
from nn_helpers import YeastSubset, load_yeast_subset

from cellgi.data.cellgraph import CellGraph


@pytest.fixture(scope="session")
def yeast_subset(yeast_dir) -> YeastSubset:
    return load_yeast_subset(yeast_dir)


@pytest.fixture(scope="session")
def yeast_graph(yeast_subset) -> CellGraph:
    return yeast_subset.graph
