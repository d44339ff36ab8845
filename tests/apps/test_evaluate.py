"""``cellgi.apps.evaluate``: the rows written by ``predictions=`` (order, names, several targets) and the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from cellgi.data.genes import GeneMapper
from cellgi.apps.evaluate import EvaluateError, evaluate_screen, prediction_columns, screen_description
from cellgi.predictors.scoring import PredictScorer
from cellgi.spec import validate_spec

from tiny_specs import tiny_spec


class _Stub:
    """A trained predictor (a plugin's kind, say) that predicts a known function of each sample's genes, for
    two targets, scored through its ``predict``."""

    kind = "stub"

    def __init__(self, genes: list[str], names: dict[str, str], targets: list[str]):
        self.spec = validate_spec(yaml.safe_load(tiny_spec("stub")))
        self.mapper = GeneMapper(genes, names)
        self.target_names = targets
        self.model = torch.nn.Identity()
        self.path = Path("stub.ckpt")

    @staticmethod
    def expected(idx: list[int]) -> list[float]:
        s = sum(i + 1 for i in idx) * 1e-3
        return [s, -2 * s]

    def predict(self, batch):
        s = torch.zeros(batch.num_samples).index_add_(0, batch.pert_batch, (batch.pert_idx + 1).float()) * 1e-3
        return torch.stack([s, -2 * s], 1), {}

    def scorer(self, batch_size=None):
        return PredictScorer(self, batch_size=batch_size)

    def describe(self):
        return "a stub"


def test_two_targets_names_and_order(tmp_path):
    genes = [f"Y{i:03d}" for i in range(30)]
    stub = _Stub(genes, {"ALPHA": "Y001", "BETA": "Y002"}, ["gene_interaction", "fitness"])
    rows, expect = [], []
    g = torch.Generator().manual_seed(0)
    for r in range(57):
        a, b = (int(x) for x in torch.randperm(30, generator=g)[:2])
        fit = "" if r % 5 == 0 else f"{0.9 - r * 1e-3:.4f}"
        rows.append(f"{genes[a]}\t{genes[b]}\t{r * 1e-3 - 0.02:.4f}\t{fit}")
        expect.append((a, b, r * 1e-3 - 0.02, fit))
    rows.insert(10, "NOPE\tY001\t0.1\t0.5")
    data = tmp_path / "s.tsv"
    data.write_text("g1\tg2\teps\tfit\n" + "\n".join(rows) + "\n")
    desc = screen_description(data, "table", stub.target_names, gene_columns=["g1", "g2"],
                              target_columns={"gene_interaction": "eps", "fitness": "fit"})
    out = tmp_path / "p.tsv"
    report = evaluate_screen(stub, desc, batch_size=8, predictions=out)
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["g1", "g1_name", "g2", "g2_name", "gene_interaction", "fitness",
                                    "prediction_gene_interaction", "prediction_fitness"]
    body = [line.split("\t") for line in lines[1:]]
    assert len(body) == report["n_samples"] == 57 and report["n_rows"] == 58
    name = {"Y001": "ALPHA", "Y002": "BETA"}
    for row, (a, b, eps, fit) in zip(body, expect):
        assert row[0] == genes[a] and row[2] == genes[b]
        assert row[1] == name.get(genes[a], genes[a]) and row[3] == name.get(genes[b], genes[b])
        assert float(row[4]) == pytest.approx(eps, abs=1e-6)
        assert row[5] == "" if fit == "" else float(row[5]) == pytest.approx(float(fit))  # unmeasured: empty
        assert [float(row[6]), float(row[7])] == pytest.approx(_Stub.expected([a, b]), rel=1e-6)
    assert prediction_columns(["x"]) == ["prediction"]
    # the rows written are the rows of the metrics
    from scipy.stats import spearmanr

    rho = spearmanr([float(r[6]) for r in body], [float(r[4]) for r in body]).statistic
    assert report["metrics"]["gene_interaction.spearman"] == pytest.approx(rho, abs=1e-6)
    assert "gene_interaction.auprc_neg" in report["metrics"] and "fitness.auprc_neg" not in report["metrics"]


def test_no_partial_file_when_nothing_can_be_evaluated(tmp_path):
    stub = _Stub(["Y000", "Y001"], {}, ["gene_interaction", "fitness"])
    data = tmp_path / "s.tsv"
    data.write_text("genes\tgene_interaction\tfitness\nNOPE;Y001\t0.1\t0.5\n")
    out = tmp_path / "p.tsv"
    with pytest.raises(EvaluateError, match="no sample"):
        evaluate_screen(stub, screen_description(data, "table", stub.target_names), predictions=out)
    assert not out.exists() and list(tmp_path.iterdir()) == [data]
