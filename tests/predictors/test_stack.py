"""Stacking (``training.stack``): the network blended with the baselines, weights fitted on validation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from cellgi.cli.main import main
from cellgi.experiments.stacking import fit_weights
from cellgi.predictors.stack import LoadedStack, StackError
from cellgi.runfolder.runs import STACK_FILE, STACK_SUMMARY_FILE
from cellgi.predictors import load_predictor
from cellgi.runfolder.checkpoint import CheckpointError

from run_checks import assert_screen_equals_predict
from tiny_specs import write_tiny_spec


def _stacked_spec(folder, baselines="[features]", epochs=1):
    spec = write_tiny_spec(folder, epochs=epochs)
    spec.write_text(spec.read_text() + f"  stack: {{baselines: {baselines}}}\n")
    return spec


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    spec = _stacked_spec(base)
    out = base / "run"
    assert main(["train", str(spec), "--run-dir", str(out), "--no-progress"]) == 0
    return out


# ------------------------------------------------------------------------------------------- weights
def test_fit_weights_recovers_a_non_negative_blend_with_its_intercept():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = 0.7 * x[:, 0] + 0.2 * x[:, 1] - 0.5 * x[:, 2] + 3.0
    w, b = fit_weights(x, y)
    assert w[2] == 0.0  # a negative weight is not allowed: the third column is dropped
    assert w[0] == pytest.approx(0.7, abs=0.1) and w[1] == pytest.approx(0.2, abs=0.1)
    assert b == pytest.approx(3.0, abs=0.1)


def test_fit_weights_skips_unmeasured_rows_and_keeps_the_network_when_nothing_helps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2))
    y = -x[:, 0] - x[:, 1]  # both members anti-correlated: no non-negative blend fits
    y[:10] = np.nan
    w, b = fit_weights(x, y)
    assert w.tolist() == [1.0, 0.0]  # the network alone
    with pytest.raises(StackError, match="validation rows"):
        fit_weights(x[:1], np.array([1.0]))


# ------------------------------------------------------------------------------------------- spec
@pytest.mark.parametrize(("override", "match"), [
    ("training.stack={baselines: [features, features]}", "repeated"),
    ("training.stack={baselines: [trees]}", "features"),
    ("training.stack={baselines: []}", "at least 1"),
])
def test_stack_spec_is_validated(tmp_path, override, match):
    from cellgi.spec import SpecError, load_spec

    with pytest.raises(SpecError, match=match):
        load_spec(write_tiny_spec(tmp_path), [override])


def test_stack_without_baselines_or_validation_is_refused_before_training(tmp_path, capsys):
    from cellgi.spec import SpecError, load_spec

    spec = write_tiny_spec(tmp_path)
    with pytest.raises(SpecError, match=r"\[.features.\] not in training.baselines"):
        load_spec(spec, ["training.stack={baselines: [features]}", "training.baseline.enabled=false"])
    code = main(["train", str(spec), "training.stack={baselines: [features]}", "data.split.fractions=[0.9,0.0,0.1]",
                 "--run-dir", str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    assert "validation split" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # a seed series (whose members run without the stack) and gene folds without validation genes alike
    code = main(["train", str(spec), "training.stack={baselines: [features]}", "data.split.fractions=[0.9,0.0,0.1]",
                 "--seeds", "0,1", "--run-dir", str(tmp_path / "s"), "--no-progress"])
    assert code == 2 and "validation split" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    folds = load_spec(spec, ["data.split={kind: gene_folds, val_fraction: 0.0}"]).data.split
    assert not folds.has_validation
    assert load_spec(spec, ["data.split={kind: gene_folds}"]).data.split.has_validation


# ------------------------------------------------------------------------------------------- a run
def test_a_stacked_run_writes_its_stack_and_reports_it(stacked):
    info = json.loads((stacked / STACK_SUMMARY_FILE).read_text())
    assert info["members"] == ["network", "baseline_features"] and info["fit_on"] == "val"
    assert all(v >= 0 for v in info["weights"]["gene_interaction"].values())
    metrics = json.loads((stacked / "metrics.json").read_text())
    assert {"stack.test.pearson", "stack.val.pearson", "test.pearson", "baseline_features.test.pearson"} <= set(metrics)
    # the blend minimises the validation error among non-negative blends, which include each member alone
    assert metrics["stack.val.mse"] <= min(metrics["val.mse"], metrics["baseline_features.val.mse"]) + 1e-6


def test_a_stacked_folder_predicts_the_blend_and_its_checkpoint_the_network(stacked):
    from cellgi.data import build_data
    from cellgi.spec import load_spec

    loaded = load_predictor(stacked)
    assert isinstance(loaded, LoadedStack)
    net = load_predictor(stacked / "checkpoints" / "best.ckpt")
    assert not isinstance(net, LoadedStack)
    assert not isinstance(load_predictor(stacked, stack=False), LoadedStack)
    spec = load_spec(stacked / "spec.yaml")
    bundle = build_data(spec.data, progress=False)
    test = bundle.splits["test"]
    batch = bundle.dataset.batch(test)
    pred, reps = loaded.predict(batch)
    p_net, _ = net.predict(batch)
    torch.testing.assert_close(reps["network"], p_net)
    # by hand: intercept + w_net * network + w_trees * trees, in normalised units
    from cellgi.baselines import set_features

    trees = loaded.stack.baselines["baseline_features"]
    x, _ = set_features(bundle, test)
    zn = bundle.normalizer.transform(p_net)
    w, b = loaded.stack.weights[0], loaded.stack.intercept[0]
    hand = bundle.normalizer.inverse(b + w[0] * zn + w[1] * trees.fitted.predict(x).float())
    torch.testing.assert_close(pred, hand, rtol=1e-5, atol=1e-5)
    # what the folder predicts is what training reported for the stack (features rebuilt from the checkpoint)
    from cellgi.metrics import InteractionMetrics

    m = InteractionMetrics(bundle.target_names, spec.training.metrics.strong_threshold, sync=False)
    m.update(pred, bundle.dataset.y[test])
    reported = json.loads((stacked / "metrics.json").read_text())["stack.test.pearson"]
    assert m.compute()["pearson"] == pytest.approx(reported, abs=1e-5)


def test_evaluate_names_the_stack_and_screen_scores_the_blend(stacked, tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    data.write_text("gene_a\tgene_b\tscore\n" + "".join(f"SYN{i:04d}\tSYN{i + 7:04d}\t{0.01 * i}\n" for i in range(1, 40)))
    args = ["--data", str(data), "--format", "table", "--gene-columns", "gene_a,gene_b",
            "--target-column", "gene_interaction=score"]
    assert main(["evaluate", str(stacked), *args, "-o", str(tmp_path / "ev.json")]) == 0
    text = capsys.readouterr().out
    assert "predictor: stack (weights fitted on validation)" in text and "baseline_features alone: pearson" in text
    report = json.loads((tmp_path / "ev.json").read_text())
    assert set(report["members"]) == {"network", "baseline_features"}
    # the network member is what the network's own checkpoint scores on the same file
    assert main(["evaluate", str(stacked / "model.pt"), *args, "-o", str(tmp_path / "net.json")]) == 0
    net = json.loads((tmp_path / "net.json").read_text())
    assert "members" not in net and net["predictor"] == "one network model"
    assert report["members"]["network"]["pearson"] == pytest.approx(net["metrics"]["pearson"], abs=1e-6)
    assert_screen_equals_predict(stacked, tmp_path, capsys)
    assert main(["embed", str(stacked), "-o", str(tmp_path / "e.tsv")]) == 2  # embeddings need the network
    err = capsys.readouterr().err
    assert "training.stack" in err and str(stacked / "model.pt") in err


def test_a_run_fits_its_baselines_once_and_stacks_those(tmp_path, monkeypatch):
    """The trees fitted at the start of training for the metrics are the ones the stack blends: one fit
    per run (the stack used to fit them a second time)."""
    from cellgi.baselines import FeatureTreesBaseline

    calls = []
    real_fit = FeatureTreesBaseline.fit
    monkeypatch.setattr(FeatureTreesBaseline, "fit", lambda self, data: calls.append(1) or real_fit(self, data))
    out = tmp_path / "run"
    assert main(["train", str(_stacked_spec(tmp_path)), "--run-dir", str(out), "--no-progress"]) == 0
    assert len(calls) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    # the stored trees are the ones reported as baseline_features
    loaded = load_predictor(out)
    from cellgi.data import build_data
    from cellgi.spec import load_spec
    from cellgi.metrics import InteractionMetrics

    spec = load_spec(out / "spec.yaml")
    bundle = build_data(spec.data, progress=False)
    test = bundle.splits["test"]
    trees = loaded.stack.baselines["baseline_features"]
    pred = bundle.normalizer.inverse(trees.predict(*_sets(bundle, test)).float())
    m = InteractionMetrics(bundle.target_names, spec.training.metrics.strong_threshold, sync=False)
    m.update(pred, bundle.dataset.y[test])
    assert m.compute()["pearson"] == pytest.approx(metrics["baseline_features.test.pearson"], abs=1e-5)


def _sets(bundle, idx):
    from cellgi.baselines import BaselineData

    return BaselineData.of_bundle(bundle).sets(idx)


def test_a_stack_file_of_the_first_format_still_loads(stacked, tmp_path):
    """stack.pt files written before baselines were registry components (each built-in's state keyed by
    its member name, no type or params) load into the same predictor; a stored type that is not
    installed is refused naming the file."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(stacked, copy)
    state = torch.load(copy / STACK_FILE, weights_only=True)
    old = {**state, "baselines": {name: entry["state"] for name, entry in state["baselines"].items()}}
    old.pop("version")
    torch.save(old, copy / STACK_FILE)
    from cellgi.data.batch import collate_index_sets

    new, first = load_predictor(stacked), load_predictor(copy)
    assert isinstance(first, LoadedStack) and first.stack.members == new.stack.members
    batch = collate_index_sets([torch.tensor([0, 5]), torch.tensor([1, 2, 3])], torch.zeros(2, 1))
    torch.testing.assert_close(first.predict(batch)[0], new.predict(batch)[0])
    gone = {**state, "baselines": {name: {**entry, "params": {**entry["params"], "type": "not_installed"}}
                                   for name, entry in state["baselines"].items()}}
    torch.save(gone, copy / STACK_FILE)
    with pytest.raises(CheckpointError, match=rf"{STACK_FILE}.*not_installed"):
        load_predictor(copy)


def test_a_damaged_stack_file_is_named(stacked, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(stacked, copy)
    data = (copy / STACK_FILE).read_bytes()
    (copy / STACK_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=STACK_FILE):
        load_predictor(copy)
    assert not isinstance(load_predictor(copy, stack=False), LoadedStack)  # the network is still there


# ------------------------------------------------------------------------------------------- a series
@pytest.fixture(scope="module")
def series(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack_series")
    spec = _stacked_spec(base, baselines="[features, additive]")
    out = base / "reps"
    assert main(["train", str(spec), "--seeds", "0,1", "--run-dir", str(out), "--no-progress"]) == 0
    return out


def test_a_stacked_series_blends_its_ensemble_with_both_baselines(series, tmp_path, capsys):
    out = series
    rep = json.loads((out / "replicates.json").read_text())
    assert "stack.test.pearson" in rep["stack"]
    assert (out / STACK_FILE).is_file()
    assert not any((out / f"seed_{s}" / STACK_FILE).exists() for s in (0, 1))  # members are plain runs
    loaded = load_predictor(out)
    assert isinstance(loaded, LoadedStack) and loaded.stack.members == ["network", "baseline_features",
                                                                         "baseline_additive"]
    inp = tmp_path / "sets.txt"
    inp.write_text("SYN0001;SYN0002\nSYN0003;SYN0004;SYN0005\n")
    res = tmp_path / "pred.tsv"
    assert main(["predict", str(out), "--genes", str(inp), "-o", str(res), "--no-progress"]) == 0
    assert "predictor: stack (weights fitted on validation)" in capsys.readouterr().out
    rows = list(csv.DictReader(open(res), delimiter="\t"))
    from cellgi.data.batch import collate_index_sets

    genes = list(loaded.graph.genes)
    sets = [[genes.index(g) for g in line.split(";")] for line in inp.read_text().split()]
    batch = collate_index_sets([torch.tensor(s) for s in sets], torch.full((2, 1), float("nan")))
    expect = loaded.predict(batch)[0][:, 0].tolist()
    assert [float(r["gene_interaction"]) for r in rows] == pytest.approx(expect, abs=1e-5)
    assert_screen_equals_predict(out, tmp_path, capsys)  # the ensemble's screens, blended


def test_a_series_stopped_before_its_stack_resumes_to_the_same_stack(series, tmp_path, capsys):
    import shutil

    copy = tmp_path / "reps"
    shutil.copytree(series, copy)
    for name in (STACK_FILE, STACK_SUMMARY_FILE, "replicates.json"):  # stopped after the last member
        (copy / name).unlink()
    assert main(["train", "--resume", str(copy), "--no-progress"]) == 0
    assert "stacked test pearson" in capsys.readouterr().out
    before = json.loads((series / STACK_SUMMARY_FILE).read_text())
    after = json.loads((copy / STACK_SUMMARY_FILE).read_text())
    for target, w in before["weights"].items():
        assert after["weights"][target] == pytest.approx(w, abs=1e-6)


def test_a_target_without_measured_validation_rows_keeps_the_network_alone(stacked, tmp_path):
    from cellgi.data import build_data
    from cellgi.spec import load_spec
    from cellgi.experiments.stacking import fit_stack

    spec = load_spec(stacked / "spec.yaml")
    bundle = build_data(spec.data, progress=False)
    bundle.dataset.y[bundle.splits["val"]] = float("nan")  # nothing measured on validation
    fit_stack(tmp_path, spec, load_predictor(stacked, stack=False), bundle)
    info = json.loads((tmp_path / STACK_SUMMARY_FILE).read_text())
    assert info["network_alone_for"] == ["gene_interaction"]
    assert info["weights"]["gene_interaction"] == {"network": 1.0, "baseline_features": 0.0}


def test_the_notebook_api_predicts_the_blend_and_says_so(stacked):
    import cellgi

    model = cellgi.load(stacked)
    assert model.predictor.startswith("stack (weights fitted on validation): ")
    assert cellgi.load(stacked / "model.pt").predictor == "one network model"
    g = model.genes
    df = model.predict([[g[0], g[1]], [g[2], g[3], g[4]]])
    from cellgi.data.batch import collate_index_sets

    batch = collate_index_sets([torch.tensor([0, 1]), torch.tensor([2, 3, 4])], torch.full((2, 1), float("nan")))
    expect = load_predictor(stacked).predict(batch)[0][:, 0].tolist()
    assert df["gene_interaction"].tolist() == pytest.approx(expect, abs=1e-5)
