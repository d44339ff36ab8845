"""`cellgi bench --json` at CI size: fields present, both paths agree, numbers positive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellgi.apps.bench import PUBLISHED_EDGE_COUNTS, BenchConfig, make_workload
from cellgi.cli.main import main


def test_workload_has_published_edge_types_with_skew():
    graph, spec = make_workload(BenchConfig(scale=1.0))
    assert set(graph.edge_types) == set(PUBLISHED_EDGE_COUNTS)
    assert graph.num_nodes == 6607
    for name, count in PUBLISHED_EDGE_COUNTS.items():  # stored edges within rounding of the published counts
        assert abs(graph.edge_types[name].num_edges - count) <= 2, name
    assert spec.hidden_dim == 64 and spec.num_layers == 3 and spec.conv.type == "masked_gin"
    coexp = graph.edge_types["physical"]
    deg = coexp.edge_index[1].bincount(minlength=graph.num_nodes).float()
    assert deg.max() > 10 * deg.mean(), "degree distribution should be skewed"
    assert not graph.edge_types["physical"].directed and graph.edge_types["regulatory"].directed


@pytest.mark.parametrize("aggregator", ["sum", "pairwise_interaction"])
def test_bench_json_quick(capsys, aggregator):
    code = main(["bench", "--quick", "--scale", "0.01", "--batch-size", "2,4", "--aggregator", aggregator,
                 "--no-isolate", "--steps", "1", "--warmup", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"].startswith("cpu")
    assert report["equivalence_max_abs_diff"] < 1e-4
    rows = report["rows"]
    assert {(r["path"], r["batch_size"]) for r in rows} == {(p, b) for p in ("shared", "reference") for b in (2, 4)}
    for r in rows:
        assert r["train_samples_per_s"] > 0 and r["infer_samples_per_s"] > 0 and r["peak_mem_gib"] > 0
    assert set(report["ratio_shared_over_reference"]) == {"2", "4"}
    assert all(d["collate_h2d_ms"] > 0 for d in report["data_path"])


def test_bench_isolated_child_rows(capsys):
    code = main(["bench", "--quick", "--scale", "0.01", "--batch-size", "2", "--paths", "shared", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["rows"]
    assert row["path"] == "shared" and row["peak_mem_gib"] > 0.05  # a child's RSS includes torch
    assert report["equivalence_max_abs_diff"] is None  # not measured without the reference path


def test_bench_first_layer_delta_path_and_bf16(capsys):
    code = main(["bench", "--quick", "--scale", "0.01", "--batch-size", "2", "--no-isolate", "--steps", "1",
                 "--warmup", "1", "--paths", "shared,shared_no_delta,reference", "--precision", "bf16-mixed",
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in report["rows"]] == ["shared", "shared_no_delta", "reference"]
    assert all(r["train_samples_per_s"] > 0 for r in report["rows"])
    assert set(report["ratio_shared_over_shared_no_delta"]["2"]) == {"train", "infer"}
    assert report["config"]["precision"] == "bf16-mixed"
    assert report["equivalence_max_abs_diff"] < 1e-4  # checked in fp32


def test_bench_unknown_path(capsys):
    assert main(["bench", "--quick", "--paths", "shared,copies"]) == 2
    assert "shared_no_delta" in capsys.readouterr().err


def test_bench_unknown_aggregator(capsys):
    assert main(["bench", "--quick", "--aggregator", "summ"]) == 2
    assert "did you mean 'sum'" in capsys.readouterr().err


def test_bench_unfused_path_ratio(capsys):
    code = main(["bench", "--quick", "--scale", "0.01", "--batch-size", "2", "--no-isolate", "--steps", "1",
                 "--warmup", "1", "--paths", "shared,fused,unfused,reference", "--aggregator", "pairwise_interaction",
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in report["rows"]] == ["shared", "fused", "unfused", "reference"]
    assert set(report["ratio_fused_over_unfused"]["2"]) == {"train", "infer"}
    assert report["ratio_fused_over_unfused"]["2"]["train"] > 0
    assert report["equivalence_max_abs_diff"] < 1e-4


@pytest.mark.parametrize("aggregator", ["sum", "pairwise_interaction"])
def test_bench_screen(capsys, aggregator):
    code = main(["bench", "--screen", "--quick", "--scale", "0.01", "--batch-size", "4", "--screen-arrays", "10",
                 "--aggregator", aggregator, "--json"])
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)["screen"]
    assert row["num_arrays"] == 10 and row["batch_size"] == 4 and row["aggregator"] == aggregator
    assert row["screen_predictions_per_s"] > 0 and row["plain_predictions_per_s"] > 0
    assert row["max_abs_diff"] < 1e-4  # the screen path predicts what the plain forward predicts
    assert row["projected_full_screen_s"] >= row["setup_s"]


def test_bench_spec_without_gene_input_is_an_error(tmp_path, capsys):
    """A real-data spec whose model reads only per-gene inputs cannot be built on the benchmark's generated
    graph: one line naming what to change, exit 2, no traceback."""
    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "costanzo_genome.yaml").read_text())
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["bench", str(path), "--quick", "--scale", "0.01", "--batch-size", "2", "--paths", "shared",
                 "--no-isolate"]) == 2
    err = capsys.readouterr().err
    assert "embedding: {learnable: true}" in err and "Traceback" not in err
