"""The Model object of cellgi/api.py beyond test_api.py: fit from a DataFrame, save/load, screen, gene
names, and pretrained names (cellgi/pretrained.py, cellgi/cli/pretrained.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellgi
from cellgi.api import FitDataError, GeneSetError, Model
from cellgi.cli.main import main
from cellgi.data.synthetic import generate_graph
from cellgi.runfolder.pretrained import PretrainedNotBuiltError
from tiny_specs import tiny_spec

N = 60


def _orf(i: int) -> str:
    return f"Y{'ABCDEFG'[i % 7]}L{i:03d}W"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 60-gene SGD_features.tab (every other gene has a standard name GENi), one edge list, a base
    screen, and a spec reading them."""
    base = tmp_path_factory.mktemp("frame")
    rows = []
    for i in range(N):
        name = f"GEN{i}" if i % 2 == 0 else ""
        alias = f"ALIAS{i}" if i % 3 == 0 else ""
        rows.append("\t".join([f"S{i:09d}", "ORF", "Verified", _orf(i), name, alias] + [""] * 10))
    (base / "SGD_features.tab").write_text("\n".join(rows) + "\n")
    g = generate_graph(N, {"physical": 200}, (), seed=3, genes=[_orf(i) for i in range(N)])
    ei = g.edge_index("physical").numpy()
    (base / "physical.txt").write_text("".join(f"{_orf(a)} {_orf(b)}\n" for a, b in ei.T if a < b))
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a in range(N) for b in range(a + 1, N)]
    pick = rng.choice(len(pairs), 700, replace=False)
    eff = rng.normal(size=N)
    df = pd.DataFrame({"gene_a": [_orf(pairs[k][0]) for k in pick], "gene_b": [_orf(pairs[k][1]) for k in pick]})
    df["score"] = [0.1 * eff[pairs[k][0]] * eff[pairs[k][1]] + 0.01 * rng.normal() for k in pick]
    df.iloc[:50].rename(columns={"score": "gi"}).to_csv(base / "base.tsv", sep="\t", index=False)
    spec = base / "frame.yaml"
    spec.write_text(f"""\
name: frame
seed: 0
data:
  root: {base}
  genes: {{source: sgd_features, path: SGD_features.tab}}
  graphs: [{{name: physical, format: edgelist, path: physical.txt}}]
  screens: [{{format: table, path: base.tsv, gene_columns: [gene_a, gene_b], target_columns: {{gene_interaction: gi}}}}]
  split: {{kind: random, fractions: [0.8, 0.1, 0.1], seed: 0}}
  batch_size: 32
  cache: false
model:
  hidden_dim: 8
  num_layers: 1
  local_predictor: {{type: hypergraph_attention, num_heads: 2}}
training:
  max_epochs: 1
  trainer: {{accelerator: cpu, devices: 1}}
""")
    return base, spec, df


@pytest.fixture(scope="module")
def fitted(files):
    base, spec, df = files
    frame = df.rename(columns={"score": "gene_interaction"})
    model = cellgi.fit(spec, frame, source="test frame", run_dir=base / "run")
    return base, model, frame


def test_fit_from_dataframe_records_the_frame_in_the_run(fitted):
    base, model, frame = fitted
    assert isinstance(model, Model) and model.run_dir == base / "run"
    run = base / "run"
    table = run / "inputs" / "data.tsv"
    record = json.loads((run / "inputs" / "data.json").read_text())
    assert record["source"] == "test frame" and record["rows"] == 700
    assert record["columns"] == ["gene_a", "gene_b", "gene_interaction"]
    assert record["sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()
    assert record["base_screens"][0]["path"] == "base.tsv"  # what the frame replaced
    assert str(table.resolve()) in (run / "spec.yaml").read_text()  # the run's spec names the frame's table
    report = json.loads((run / "data_report.json").read_text())
    assert sum(s["samples"] for s in report["screens"]) == 700  # every row trained on, not the base screen's 50
    assert model.train_result is not None and "test.pearson" in model.train_result.metrics


def test_fit_from_dataframe_genes_column_and_target_map(files, tmp_path):
    base, spec, df = files
    frame = pd.DataFrame({"genes": df["gene_a"] + ";" + df["gene_b"], "eps": df["score"], "note": "x"})
    model = cellgi.Model.fit(spec, frame, target_columns={"gene_interaction": "eps"}, run_dir=tmp_path / "r",
                             overrides=["model.hidden_dim=4"])
    assert model.spec.model.hidden_dim == 4
    assert pd.read_csv(tmp_path / "r" / "inputs" / "data.tsv", sep="\t").columns.tolist() == ["genes", "eps"]


def test_fit_bad_frames_are_clear_errors(files, tmp_path):
    base, spec, df = files
    with pytest.raises(FitDataError, match="no gene column"):
        cellgi.fit(spec, df.rename(columns={"gene_a": "x"}), run_dir=tmp_path / "a")
    with pytest.raises(FitDataError, match=r"no target column.*target_columns"):
        cellgi.fit(spec, df, run_dir=tmp_path / "b")
    with pytest.raises(FitDataError, match="'nope'} are not in the DataFrame"):
        cellgi.fit(spec, df, target_columns={"gene_interaction": "nope"}, run_dir=tmp_path / "c")
    with pytest.raises(FitDataError, match="synthetic spec"):
        cellgi.fit("quickstart", df, target_columns={"gene_interaction": "score"}, run_dir=tmp_path / "d")
    with pytest.raises(FitDataError, match="no rows"):
        cellgi.fit(spec, df.iloc[:0], run_dir=tmp_path / "e")
    assert not any((tmp_path / x).exists() for x in "abcde")  # nothing created for a refused frame


def test_gene_names_both_ways(fitted):
    _, model, _ = fitted
    assert model.name_of(_orf(32)) == "GEN32"
    assert model.name_of([_orf(32), _orf(1)]) == ["GEN32", _orf(1)]  # no standard name: the ORF
    assert model.orf_of("gen32") == _orf(32) and model.orf_of(["ALIAS3", "GEN0"]) == [_orf(3), _orf(0)]
    with pytest.raises(GeneSetError, match="NOPE"):
        model.orf_of("NOPE")
    table = model.gene_table
    assert list(table.columns) == ["orf", "name"] and len(table) == N
    assert table.set_index("orf").loc[_orf(4), "name"] == "GEN4"
    df = model.predict([["GEN0", "gen2"]])  # standard names in, ORFs in the output
    assert df.loc[0, "genes"] == f"{_orf(0)};{_orf(2)}"


def test_save_and_load_round_trip(fitted, tmp_path):
    _, model, _ = fitted
    pairs = [[_orf(0), _orf(5)], [_orf(7), _orf(9), _orf(11)]]
    before = model.predict(pairs)["gene_interaction"].to_numpy()
    out = model.save(tmp_path / "saved")
    again = cellgi.Model.load(out)
    assert again.run_dir == tmp_path / "saved"
    np.testing.assert_array_equal(again.predict(pairs)["gene_interaction"].to_numpy(), before)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "saved")
    model.save(tmp_path / "saved", overwrite=True)
    single = cellgi.load(model.path)  # a checkpoint file alone saves as a file
    assert single.run_dir is None
    f = single.save(tmp_path / "copy.pt")
    assert f.is_file()
    np.testing.assert_array_equal(cellgi.load(f).predict(pairs)["gene_interaction"].to_numpy(), before)


def test_screen_matches_predict(fitted, tmp_path):
    _, model, _ = fitted
    g = model.genes
    df = model.screen([g[0]], arrays=g[1:6])
    assert {"query", "array", "gene_interaction"} <= set(df.columns) and len(df) == 5
    assert df.attrs["report"]["rows"] == 5
    ref = model.predict([[g[0], a] for a in g[1:6]])["gene_interaction"].to_numpy()
    np.testing.assert_allclose(df["gene_interaction"].to_numpy(), ref, rtol=1e-4, atol=1e-6)
    tri = model.screen([], pairs_of=g[:4])  # every pair of a list
    assert len(tri) == 6
    report = model.screen(["GEN0"], arrays=g[1:4], output=tmp_path / "s.tsv", top_k=1)
    assert report.complete and (tmp_path / "s.tsv").is_file() and (tmp_path / "s.top.tsv").is_file()
    from cellgi.apps.screen import ScreenError

    with pytest.raises(ScreenError, match="NOPE"):
        model.screen(["NOPE"])


def test_pretrained_name_missing_then_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CELLGI_PRETRAINED_DIR", str(tmp_path / "pre"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedNotBuiltError, match="cellgi pretrained build quickstart"):
        cellgi.load("quickstart")
    assert main(["pretrained", "path", "quickstart"]) == 2
    assert "cellgi pretrained build quickstart" in capsys.readouterr().err
    assert main(["pretrained", "build", "nosuchspec"]) == 2
    assert "no pretrained model 'nosuchspec'" in capsys.readouterr().err
    assert main(["pretrained", "build", "emap_real", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "--data-root DIR" in capsys.readouterr().err and not (tmp_path / "pre").exists()
    small = ["data.synthetic.num_samples=300", "training.max_epochs=1", "model.hidden_dim=8"]
    stale = tmp_path / "pre" / ".quickstart.building-999999999"  # a build killed with SIGKILL (no such pid)
    stale.mkdir(parents=True)
    assert main(["pretrained", "build", "quickstart", *small, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "built pretrained model 'quickstart'" in out and "test.pearson" in out
    folder = tmp_path / "pre" / "quickstart"
    manifest = json.loads((folder / "pretrained.json").read_text())
    assert manifest["overrides"] == small and manifest["spec"] == "quickstart.yaml"
    assert not [p for p in (tmp_path / "pre").iterdir() if p.name.startswith(".")]  # no work folder left
    model = cellgi.load("quickstart")
    assert model.run_dir == folder
    (tmp_path / "sets.txt").write_text(f"{model.genes[0]};{model.genes[1]}\n")
    assert main(["predict", "quickstart", "--genes", "sets.txt", "-o", "p.tsv", "--no-progress"]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 2
    assert main(["pretrained", "build", "quickstart", *small]) == 2  # already built: --force
    assert "--force" in capsys.readouterr().err
    assert main(["pretrained", "list"]) == 0
    listing = capsys.readouterr().out
    assert "quickstart" in listing and "built" in listing and "not built (cellgi pretrained build emap_real)" in listing
    (tmp_path / "quickstart").mkdir()  # an existing path wins over a name
    from cellgi.runfolder.pretrained import resolve_model_path

    assert resolve_model_path("quickstart") == Path("quickstart")


def test_fit_without_frame_trains_the_spec(tmp_path):
    (tmp_path / "t.yaml").write_text(tiny_spec("tiny-fit"))
    model = cellgi.fit(tmp_path / "t.yaml", overrides=["model.hidden_dim=8", "data.synthetic.num_samples=200"],
                       run_dir=tmp_path / "run")
    assert model.run_dir == tmp_path / "run" and len(model.genes) == 200
    assert model.name_of(model.genes[0]) == model.genes[0]  # synthetic genes have no standard names


@pytest.mark.slow
def test_docs_fit_frame_example_runs(yeast_dir, tmp_path, monkeypatch, capsys):
    """docs/api.md's DataFrame example on the real E-MAP, executed as written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CELLGI_YEAST_DATA", str(yeast_dir))
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    block = text[text.index("<!-- test: fit-frame-example -->"):].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "docs/api.md:fit-frame-example", "exec"), {})
    out = capsys.readouterr().out
    assert "RAD52 YML032C" in out and "YML032C;YER095W" in out
    record = json.loads((tmp_path / "runs" / "fit-demo" / "inputs" / "data.json").read_text())
    assert record["rows"] == 3000 and record["source"] == "first 3000 E-MAP rows"
    assert (tmp_path / "my-emap-model" / "inputs" / "data.tsv").is_file()
