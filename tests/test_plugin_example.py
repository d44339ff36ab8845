"""The example plugin ``plugins/cellgi-gated-sum`` end to end: installed, listed, validated, trained.

These tests need the plugin installed (``pip install ./plugins/cellgi-gated-sum``; CI does). Without it
they are skipped, or fail when ``CELLGI_REQUIRE_PLUGIN_EXAMPLE=1`` (CI sets it, so that a missing
install cannot pass unnoticed).
"""

from __future__ import annotations

import json
import os
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from cellgi import registry as registry_mod
from cellgi.cli.main import main

DIST = "cellgi-gated-sum"
REQUIRE_ENV = "CELLGI_REQUIRE_PLUGIN_EXAMPLE"
COMPONENTS = {
    ("aggregator", "gated_sum"),
    ("aggregator", "topk_attention"),
    ("loss", "quantile"),
    ("pooling", "masked_max"),
    ("baseline", "gene_mean"),
    ("additive_term", "value_linear"),
}


@pytest.fixture
def plugin_version(monkeypatch: pytest.MonkeyPatch) -> str:
    """The installed example plugin's version; skip (or fail under CELLGI_REQUIRE_PLUGIN_EXAMPLE=1)."""
    problem = None
    try:
        version = metadata.version(DIST)
    except metadata.PackageNotFoundError:
        problem = f"the example plugin {DIST} is not installed: pip install ./plugins/{DIST}"
    else:
        groups = {ep.group for ep in metadata.distribution(DIST).entry_points}
        if "cellgi.aggregators" not in groups:
            problem = f"{DIST} {version} is installed without its cellgi.aggregators entry points"
    if problem is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{problem} ({REQUIRE_ENV}=1 requires it)")
        pytest.skip(problem)
    monkeypatch.delenv(registry_mod.AUTOLOAD_ENV, raising=False)
    registry_mod._reset_for_tests()  # rediscover with autoloading on
    return version


def test_listed_with_distribution_name_and_version(plugin_version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "list", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    for key in COMPONENTS:
        assert key in rows, f"{key} missing from the listing"
        assert (rows[key]["provider"], rows[key]["version"], rows[key]["status"]) == (DIST, plugin_version, "ok")
    assert rows[("aggregator", "sum")]["provider"] == "cellgi"


def test_show_describes_the_params(plugin_version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "show", "topk_attention", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["provider"] == DIST and entry["version"] == plugin_version
    params = {p["name"]: p for p in entry["params"]}
    assert set(params) == {"k", "temperature", "graph_bias", "normalize"}
    assert params["k"]["default"] == 2 and "graphs kept per gene" in params["k"]["description"]


def _spec_text(name: str) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        seed: 0
        data:
          synthetic:
            num_genes: 200
            num_samples: 240
            edge_types: {{physical: 600, regulatory: 300, coexpression: 600}}
          batch_size: 64
        model:
          hidden_dim: 16
          num_layers: 1
          aggregator: {{type: gated_sum, normalize: true}}
          pooling: {{type: masked_max, temperature: 0.5}}
        training:
          max_epochs: 1
          loss: {{type: quantile, quantile: 0.5}}
          baseline: {{enabled: false}}
          trainer: {{accelerator: cpu, devices: 1}}
        """
    )


def test_spec_naming_plugin_components_validates(
    plugin_version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = tmp_path / "gated.yaml"
    spec_file.write_text(_spec_text("gated"))
    assert main(["spec", "validate", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "aggregator gated_sum" in out and "loss quantile" in out


def test_train_a_tiny_model_with_the_plugin_aggregator(
    plugin_version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cellgi train`` on tiny synthetic data with gated_sum, masked_max and quantile: one epoch."""
    import torch

    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "gated.yaml"
    spec_file.write_text(_spec_text("gated-example"))
    run_dir = tmp_path / "run"
    assert main(["train", str(spec_file), "--run-dir", str(run_dir), "--no-progress"]) == 0, capsys.readouterr().err
    saved = (run_dir / "spec.yaml").read_text()
    assert f"plugins: {DIST}-{plugin_version}" in saved, saved[:600]
    assert "gated_sum" in saved and "masked_max" in saved and "quantile" in saved
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics, "no metrics written"
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)
    keys = " ".join(state["state_dict"])
    assert "gate_weight" in keys, "the saved model has no gated_sum parameters"


def test_a_plugin_baseline_is_reported_stacked_and_reloaded(
    plugin_version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``training.baselines`` names the plugin's ``gene_mean``: ``cellgi train`` reports it in
    ``metrics.json``, stacks it with the network, and the folder loads again (the baseline rebuilt from
    the registry by its stored type and params) and predicts with the blend."""
    import torch

    from cellgi.api import load
    from cellgi.runfolder.runs import STACK_SUMMARY_FILE

    monkeypatch.chdir(tmp_path)
    text = _spec_text("gene-mean").replace(
        "  baseline: {enabled: false}\n",
        "  baselines: [{type: additive}, {type: gene_mean, shrinkage: 3.0}]\n"
        "  stack: {baselines: [gene_mean]}\n")
    assert "gene_mean" in text
    spec_file = tmp_path / "gm.yaml"
    spec_file.write_text(text)
    run_dir = tmp_path / "run"
    assert main(["train", str(spec_file), "--run-dir", str(run_dir), "--no-progress"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "the gene_mean baseline" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "baseline_gene_mean.test.pearson" in metrics and "baseline_additive.test.pearson" in metrics
    assert "stack.test.pearson" in metrics
    info = json.loads((run_dir / STACK_SUMMARY_FILE).read_text())
    assert info["members"] == ["network", "baseline_gene_mean"]
    state = torch.load(run_dir / "stack.pt", weights_only=True)
    assert state["baselines"]["baseline_gene_mean"]["params"] == {"type": "gene_mean", "shrinkage": 3.0}
    loaded = load(run_dir)
    assert "gene_mean" in loaded.predictor and "stack" in loaded.predictor
    genes = loaded.genes[:4]
    pred = loaded.predict([[genes[0], genes[1]], [genes[2], genes[3]]])
    assert len(pred) == 2 and pred[loaded.target_names[0]].notna().all()
