"""``cellgi train --multirun``: quote-aware grid expansion, one run per combination, a table."""

from __future__ import annotations

import csv
import json

import pytest
from tiny_specs import tiny_spec

from cellgi.cli.main import main
from cellgi.experiments.multirun import expand_grid, split_values

#: a smaller tiny spec: the grid tests train several runs
SMALL = ["data.synthetic.num_genes=60", "data.synthetic.num_samples=120", "training.baselines=[]"]


@pytest.mark.parametrize("raw,parts", [
    ("16", ["16"]),
    ("16,32,64", ["16", "32", "64"]),
    ("'a,b'", ["'a,b'"]),
    ("'a,b',c", ["'a,b'", "c"]),
    ('"x,y",z', ['"x,y"', "z"]),
    ("[1,2]", ["[1,2]"]),
    ("[1,2],[3,4]", ["[1,2]", "[3,4]"]),
    ("{type: gate, a: 1},{type: concat}", ["{type: gate, a: 1}", "{type: concat}"]),
])
def test_split_values(raw, parts):
    assert split_values(raw) == parts


@pytest.mark.parametrize("raw,msg", [("'a,b", "unclosed quote"), ("[1,2", "unclosed bracket"),
                                     ("1]", "unbalanced"), ("a,,b", "empty value"), ("a,", "empty value")])
def test_split_values_refuses(raw, msg):
    with pytest.raises(ValueError, match=msg):
        split_values(raw)


def test_expand_grid_last_key_fastest():
    grid = expand_grid(["a=1,2", "~x.y", "b=x,y", "c=[1,2]"])
    assert grid == [
        ["a=1", "~x.y", "b=x", "c=[1,2]"],
        ["a=1", "~x.y", "b=y", "c=[1,2]"],
        ["a=2", "~x.y", "b=x", "c=[1,2]"],
        ["a=2", "~x.y", "b=y", "c=[1,2]"],
    ]


def test_multirun_trains_every_combination(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_spec("grid"))
    out = tmp_path / "grid"
    rc = main(["train", str(spec), *SMALL, "model.hidden_dim=8,12", "training.optimizer.lr=1e-3,3e-3",
               "--multirun", "--run-dir", str(out), "--no-progress"])
    assert rc == 0
    jobs = json.loads((out / "multirun.json").read_text())
    assert jobs["varying"] == ["model.hidden_dim", "training.optimizer.lr"]
    assert [j["status"] for j in jobs["jobs"]] == ["completed"] * 4
    for j, (h, lr) in zip(jobs["jobs"], [(8, 1e-3), (8, 3e-3), (12, 1e-3), (12, 3e-3)]):
        saved = (out / str(j["number"]) / "spec.yaml").read_text()
        assert f"hidden_dim: {h}" in saved and f"lr: {lr}" in saved
        assert j["metrics"]["val.pearson"] == pytest.approx(
            json.loads((out / str(j["number"]) / "metrics.json").read_text())["val.pearson"])
    rows = list(csv.DictReader((out / "multirun.csv").open()))
    assert [r["model.hidden_dim"] for r in rows] == ["8", "8", "12", "12"]
    text = capsys.readouterr().out
    assert "multirun: 4 run(s)" in text and "val.pearson" in text


def test_multirun_validates_every_combination_first(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_spec("grid"))
    out = tmp_path / "grid"
    rc = main(["train", str(spec), "model.hidden_dim=8,'x'", "--multirun", "--run-dir", str(out)])
    assert rc == 2
    assert "model.hidden_dim" in capsys.readouterr().err
    assert not out.exists()  # nothing trained, no folder


def test_multirun_refuses_resume_and_seeds(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text(tiny_spec("grid"))
    assert main(["train", str(spec), "model.hidden_dim=8,16", "--multirun", "--seeds", "0,1"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["train", str(spec), "model.hidden_dim='8", "--multirun"]) == 2
    assert "unclosed quote" in capsys.readouterr().err
