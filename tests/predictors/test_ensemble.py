"""Seed ensembles: a replicates folder loads as one model whose predictions are the members' mean."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cellgi.cli.main import main
from cellgi.predictors.ensemble import EnsembleError, LoadedEnsemble, load_ensemble
from cellgi.predictors import load_predictor

from run_checks import assert_screen_equals_predict
from tiny_specs import write_tiny_spec


@pytest.fixture(scope="module")
def reps(tmp_path_factory):
    base = tmp_path_factory.mktemp("ens")
    spec = write_tiny_spec(base, epochs=1)
    out = base / "reps"
    assert main(["train", str(spec), "--seeds", "0,1", "--run-dir", str(out), "--no-progress"]) == 0
    return base, out


def test_the_summary_prints_the_ensemble_verdicts(tmp_path, capsys):
    spec = write_tiny_spec(tmp_path, epochs=1)
    assert main(["train", str(spec), "--seeds", "0,1", "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    rep = json.loads((tmp_path / "r" / "replicates.json").read_text())
    value = rep["ensemble"]["test.pearson"]
    ref = rep["summary"]["baseline_additive.test.pearson"]["mean"]
    shown, shown_ref = float(f"{value:.4f}"), float(f"{ref:.4f}")
    verdict = "ties" if shown == shown_ref else "beats" if shown > shown_ref else "does not beat"
    assert f"ensemble test pearson {value:.4f} {verdict} the additive baseline ({ref:.4f}" in text


def test_replicates_folder_loads_as_the_mean_of_its_members(reps):
    _, out = reps
    ens = load_predictor(out)
    assert isinstance(ens, LoadedEnsemble) and len(ens.members) == 2
    members = [load_predictor(out / f"seed_{s}") for s in (0, 1)]
    from cellgi.data.batch import collate_index_sets

    sets = [torch.tensor([0, 1]), torch.tensor([2, 3, 4]), torch.tensor([5, 9])]
    batch = collate_index_sets(sets, torch.full((3, 1), float("nan")))
    pred, reps_ = ens.predict(batch)
    each = [m.predict(batch) for m in members]
    torch.testing.assert_close(pred, (each[0][0] + each[1][0]) / 2)
    assert not torch.allclose(each[0][0], each[1][0])  # two different models
    torch.testing.assert_close(reps_["local_interaction"], (each[0][1]["local_interaction"] + each[1][1]["local_interaction"]) / 2)
    torch.testing.assert_close(reps_["gate_weights"].sum(-1), torch.ones(3))
    # the module form averages the normalised predictions alike
    p_mod, _ = ens.model.eval()(batch)
    torch.testing.assert_close(ens.normalizer.inverse(p_mod), pred)


def test_replicates_json_reports_the_ensemble_metrics(reps):
    _, out = reps
    rep = json.loads((out / "replicates.json").read_text())
    ens = rep["ensemble"]
    assert {"test.pearson", "val.pearson", "train.pearson"} <= set(ens)
    per_seed = rep["summary"]["test.mse"]["values"]
    # the mean prediction's MSE is at most the mean of the members' MSEs (convexity)
    assert ens["test.mse"] <= (per_seed["0"] + per_seed["1"]) / 2 + 1e-9


def test_predict_screen_and_embed_on_an_ensemble(reps, tmp_path, capsys):
    _, out = reps
    inp = tmp_path / "sets.txt"
    inp.write_text("SYN0001;SYN0002\nSYN0003;SYN0004;SYN0005\n")
    res = tmp_path / "pred.tsv"
    assert main(["predict", str(out), "--genes", str(inp), "-o", str(res), "--no-progress"]) == 0
    rows = list(csv.DictReader(open(res), delimiter="\t"))
    assert len(rows) == 2 and all(float(r["gene_interaction"]) == float(r["gene_interaction"]) for r in rows)
    singles = []
    for s in (0, 1):
        o = tmp_path / f"p{s}.tsv"
        assert main(["predict", str(out / f"seed_{s}"), "--genes", str(inp), "-o", str(o), "--no-progress"]) == 0
        singles.append([float(r["gene_interaction"]) for r in csv.DictReader(open(o), delimiter="\t")])
    for i, r in enumerate(rows):
        assert float(r["gene_interaction"]) == pytest.approx((singles[0][i] + singles[1][i]) / 2, abs=1e-5)
    capsys.readouterr()
    assert_screen_equals_predict(out, tmp_path, capsys)  # a screen of the ensemble: its members' mean
    assert main(["embed", str(out), "-o", str(tmp_path / "e.tsv")]) == 2
    assert "gene embeddings needs one model" in capsys.readouterr().err


def test_members_that_cannot_be_averaged_are_refused(reps, tmp_path):
    base, out = reps
    other = write_tiny_spec(tmp_path, epochs=1)
    other.write_text(other.read_text().replace("num_genes: 200", "num_genes: 150"))
    assert main(["train", str(other), "--run-dir", str(tmp_path / "small"), "--no-progress"]) == 0
    with pytest.raises(EnsembleError, match="gene lists differ"):
        load_ensemble([out / "seed_0", tmp_path / "small"])
    with pytest.raises(EnsembleError, match="at least one member"):
        load_ensemble([])
