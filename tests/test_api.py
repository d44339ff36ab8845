"""The notebook API: cellgi.train / cellgi.load / Model.predict, evaluate, embeddings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cellgi
from cellgi.api import GeneSetError, Model
from cellgi.spec import SpecError
from tiny_specs import tiny_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    (base / "t.yaml").write_text(tiny_spec("tiny-api"))
    result = cellgi.train(base / "t.yaml", overrides=["model.hidden_dim=8"], run_dir=base / "run")
    return base, result


def test_import_is_light():
    code = "import sys, cellgi; assert callable(cellgi.load); print(sorted(m for m in ('torch', 'lightning', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_applies_overrides(trained):
    base, result = trained
    assert result.run_dir == base / "run"
    assert any(k.startswith("test.") and k.endswith("pearson") for k in result.metrics), sorted(result.metrics)
    assert "hidden_dim: 8" in (base / "run" / "spec.yaml").read_text()


def test_train_bad_override_fails_before_any_run(tmp_path):
    (tmp_path / "t.yaml").write_text(tiny_spec("bad"))
    with pytest.raises(SpecError, match=r"override 1 \(model.hiden_dim=8\): model.hiden_dim: unknown key"):
        cellgi.train(tmp_path / "t.yaml", overrides=["model.hiden_dim=8"], run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_predict_dataframe(trained):
    base, result = trained
    model = cellgi.load(result.run_dir)
    assert isinstance(model, Model) and len(model.genes) == 200
    g = model.genes
    df = model.predict([[g[0], g[1]], f"{g[2].lower()};{g[3]};{g[4]}", (g[5], g[6])])
    assert list(df["kind"]) == ["digenic", "trigenic", "digenic"]
    assert df.loc[1, "genes"] == f"{g[2]};{g[3]};{g[4]}"  # lower-case input mapped to the ORF
    for col in ("gene_interaction", "local_gene_interaction", "global_gene_interaction", "gate_local", "gate_global"):
        assert col in df.columns and np.isfinite(df[col]).all()
    assert np.allclose(df["gate_local"] + df["gate_global"], 1.0, atol=1e-5)
    # the same set in another order, alone in its batch: the same prediction
    again = model.predict([[g[4], g[2], g[3]]])
    assert again.loc[0, "gene_interaction"] == pytest.approx(df.loc[1, "gene_interaction"], abs=1e-5)


def test_predict_unknown_genes(trained):
    model = cellgi.load(trained[1].run_dir)
    g = model.genes
    with pytest.raises(GeneSetError, match=r"gene set 1: 'NOPE1;.*NOPE1: "):
        model.predict([[g[0], g[1]], ["NOPE1", g[0]]])
    df = model.predict([[g[0], g[1]], ["NOPE1", g[0]], [g[0], g[0]]], errors="skip")
    assert len(df) == 1
    assert [s[0] for s in df.attrs["skipped"]] == [1, 2]
    assert "named twice" in df.attrs["skipped"][1][2]


def test_evaluate_table(trained, tmp_path):
    model = cellgi.load(trained[1].run_dir)
    g = model.genes
    f = tmp_path / "measured.tsv"
    f.write_text("genes\tgene_interaction\n" + "".join(
        f"{g[i]};{g[i + 1]}\t{0.01 * i}\n" for i in range(0, 40, 2)) + "NOPE;YYY\t0.1\n")
    report = model.evaluate(f, format="table")
    assert report["n_samples"] == 20 and report["n_unmapped"] == 1
    m = report["metrics"]  # one target: "pearson", "n", ...; several: "<target>.pearson", ...
    assert m["n"] == 20 and -1 <= m["pearson"] <= 1


def test_embeddings(trained):
    model = cellgi.load(trained[1].run_dir)
    wt = model.embeddings()
    inp = model.embeddings("input")
    assert wt.shape == (200, 8) and inp.shape == (200, 8)
    assert list(wt.index[:2]) == model.genes[:2]
    assert not np.allclose(wt.values, inp.values)  # message passing changed the vectors
    with pytest.raises(ValueError, match="kind"):
        model.embeddings("nope")


def test_train_accepts_dict_and_spec(tmp_path, monkeypatch):
    import yaml

    from cellgi.spec import parse_spec

    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load(tiny_spec("tiny-dict"))
    data["training"]["max_epochs"] = 1
    r1 = cellgi.train(data, overrides=["data.synthetic.num_samples=200"], run_dir=tmp_path / "a")
    assert (Path(r1.run_dir) / "metrics.json").is_file()
    spec = parse_spec(tiny_spec("tiny-spec"))
    with pytest.raises(SpecError, match="override 1"):
        cellgi.train(spec, overrides=["training.max_epochs=0"])
    with pytest.raises(TypeError):
        cellgi.train(42)


def _doc_block(tag: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    start = text.index(f"<!-- test: {tag} -->")
    body = text[start:].split("```python\n", 1)[1]
    return body.split("```", 1)[0]


def test_docs_api_example_runs(tmp_path, monkeypatch, capsys):
    """docs/api.md's notebook example, executed as written."""
    monkeypatch.chdir(tmp_path)
    exec(compile(_doc_block("api-example"), "docs/api.md:api-example", "exec"), {})
    out = capsys.readouterr().out
    assert "test Pearson" in out and "trigenic" in out and "(150, 16)" in out
    assert "unknown identifier" in out and (tmp_path / "runs" / "api-demo" / "model.pt").is_file()


@pytest.mark.slow
def test_docs_optuna_example_runs(tmp_path, monkeypatch, capsys):
    """docs/api.md's Optuna sweep (2 trials of the small quickstart), executed as written."""
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)
    exec(compile(_doc_block("optuna-example"), "docs/api.md:optuna-example", "exec"), {})
    out = capsys.readouterr().out
    assert "'lr':" in out and "'num_layers':" in out
    assert sorted(p.name for p in (tmp_path / "runs" / "sweep").iterdir()) == ["trial-0", "trial-1"]


def test_named_feature_columns_survive_the_checkpoint(tmp_path):
    """pair_values / gene_values read feature columns by name: a loaded run rebuilds them from the
    checkpoint alone and predicts what the run evaluated."""
    from cellgi.data.synthetic import synthetic_gene_names

    genes = synthetic_gene_names(200)
    rng = np.random.default_rng(0)
    rows = "".join(f"{g}\t{rng.normal():.4f}\t{rng.normal():.4f}\n" for g in genes[:150])  # 50 genes imputed
    (tmp_path / "pheno.tsv").write_text("gene\tsingle\tother\n" + rows)
    text = tiny_spec("named-cols").replace(
        "  cache: false\n", "  cache: false\n  features: [{type: table, path: '" + str(tmp_path / "pheno.tsv") + "', prefix: pheno}]\n"
    ).replace(
        "  local_predictor: {type: hypergraph_attention, num_heads: 2}\n",
        "  local_predictor: {type: pair_relations, attention: false, gene_values: [pheno.single]}\n"
        "  combiner: {type: local_only}\n"
        "  additive_term: {type: pair_values, gene_values: ['pheno.*'], hidden_dim: 8}\n",
    )
    (tmp_path / "t.yaml").write_text(text)
    result = cellgi.train(tmp_path / "t.yaml", run_dir=tmp_path / "run")
    model = cellgi.load(result.run_dir)
    net = model.torch_model
    assert net.additive_values.shape == (200, 3)  # pheno.single, pheno.other, pheno.missing (feature order)
    assert net.relations.num_features == 4 * 2 + 3 and net.relations.value_names == ["pheno.single"]
    single = np.array([float(r.split("\t")[1]) for r in rows.splitlines()])
    got = net.additive_values[:150, 0].numpy()
    assert np.corrcoef(single, got)[0, 1] > 0.9999  # the column itself (standardised), rebuilt from the checkpoint
    assert (net.additive_values[150:, 2] == net.additive_values[150, 2]).all()  # imputed genes flagged alike
    df = model.predict([[genes[0], genes[1]], [genes[160], genes[170]]])
    assert np.isfinite(df["gene_interaction"]).all()


def test_train_with_spec_seeds_returns_the_ensemble_which_loads_as_one_model(tmp_path):
    (tmp_path / "t.yaml").write_text(tiny_spec("tiny-seeds"))
    result = cellgi.train(tmp_path / "t.yaml", overrides=["model.hidden_dim=8", "training.seeds=[0, 1]"],
                          run_dir=tmp_path / "reps")
    assert result.run_dir == tmp_path / "reps" and result.seeds == [0, 1]
    assert result.metrics == result.ensemble and "test.pearson" in result.metrics
    assert result.summary["test.pearson"]["n"] == 2
    members = [cellgi.load(result.run_dir / f"seed_{s}") for s in (0, 1)]
    pair = [members[0].genes[:2]]
    ens = cellgi.load(result.run_dir).predict(pair)["gene_interaction"].to_numpy()
    each = [m.predict(pair)["gene_interaction"].to_numpy() for m in members]
    np.testing.assert_allclose(ens, (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-6)
