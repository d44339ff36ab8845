"""A stacked run folder written by the code before issue 23's refactor (commit db37307: ``cellgi.train``,
``LoadedStack`` subclassing ``LoadedModel``) loads through :func:`cellgi.predictors.load_predictor` and
predicts the same rows as that code did (its outputs are stored beside the folder): the same header, lines,
inputs and gene names, and every number equal to the 6 significant digits written, up to the float
rounding that the thread count changes (the stored rows were made with one thread; byte-identical then).

The fixture is a 1-epoch tiny synthetic run (tests/tiny_specs.py with ``training.stack: {baselines:
[features]}``) kept without its logs, plots and Lightning checkpoints: ``model.pt``, ``stack.pt`` and the
JSON files are what loading reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cellgi.cli.main import main
from cellgi.predictors import load_predictor
from cellgi.runfolder.layout import PathKind, kind_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture()
def legacy_run(tmp_path: Path) -> Path:
    run = tmp_path / "legacy_stacked_run"
    shutil.copytree(FIXTURES / "legacy_stacked_run", run)
    return run


@pytest.mark.parametrize(("target", "expected"), [
    ("", "legacy_stack_predictions.tsv"),
    ("model.pt", "legacy_network_predictions.tsv"),
])
def test_a_folder_of_the_old_code_predicts_what_it_predicted(legacy_run, tmp_path, target, expected):
    out = tmp_path / "out.tsv"
    path = legacy_run / target if target else legacy_run
    assert main(["predict", str(path), "--genes", str(FIXTURES / "legacy_sets.txt"), "-o", str(out),
                 "--no-progress"]) == 0
    got, want = _rows(out), _rows(FIXTURES / expected)
    assert got[0] == want[0]  # header
    assert len(got) == len(want) == 301
    for g, w in zip(got[1:], want[1:]):
        assert g[:4] == w[:4]  # line, input, genes, names
        np.testing.assert_allclose([float(v) for v in g[4:]], [float(v) for v in w[4:]], rtol=5e-5, atol=2e-6)  # a last printed digit


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_the_old_folder_loads_as_a_stack_with_its_network(legacy_run):
    loaded = load_predictor(legacy_run)
    assert "stack" in loaded.describe()
    assert len(loaded.networks()) == 1
    network = load_predictor(legacy_run, stack=False)
    assert "stack" not in network.describe()
    assert kind_of(legacy_run) is PathKind.STACKED
