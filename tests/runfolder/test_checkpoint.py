"""Checkpoints rebuild the model alone, open with weights_only, and refuse damaged or unsafe files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cellgi.data.build import build_data
from cellgi.data.cellgraph import CellGraph
from cellgi.data.genes import GeneMapper
from cellgi.data.normalize import TargetNormalizer
from cellgi.nn.model import LazyDango
from cellgi.spec import load_spec
from cellgi.predictors import load_predictor
from cellgi.runfolder.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    build_metadata,
    read_checkpoint,
    resolve_checkpoint,
    save_model_file,
)
from cellgi.metrics import InteractionMetrics

from tiny_specs import write_tiny_spec


def test_lightning_checkpoints_are_weights_only_loadable(tiny_run: Path):
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "model.pt"):
        obj = torch.load(tiny_run / name, weights_only=True)
        meta = obj["cellgi"]
        assert {"spec_json", "genes", "mapper", "graph", "normalizer", "digest"} <= set(meta)
        assert meta["graph"]["edge_types"]["regulatory"]["directed"] is True


def test_rebuilt_model_predicts_what_it_predicted_before_saving(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path))
    bundle = build_data(spec.data, progress=False, cache=False)
    torch.manual_seed(1)
    model = LazyDango.from_spec(spec.model, bundle.graph, 1).eval()
    batch = bundle.dataset.batch(torch.arange(40))
    with torch.no_grad():
        before, reps_before = model(batch)
    meta = build_metadata(spec=spec, target_names=bundle.target_names, graph=bundle.graph,
                          mapper=GeneMapper(bundle.graph.genes), normalizer=bundle.normalizer)
    path = save_model_file(tmp_path / "model.pt", model.state_dict(), meta)
    loaded = load_predictor(path)
    with torch.no_grad():
        after, reps_after = loaded.model(batch)
    assert torch.equal(before, after)
    assert torch.equal(reps_before["z_p"], reps_after["z_p"])
    orig, _ = loaded.predict(batch)
    assert torch.allclose(orig, bundle.normalizer.inverse(before))
    assert loaded.graph.edge_types["regulatory"].directed and not loaded.graph.edge_types["physical"].directed
    assert torch.equal(loaded.graph.edge_index("physical"), bundle.graph.edge_index("physical"))


def test_checkpoint_alone_reproduces_the_runs_test_metrics(tiny_run: Path, tmp_path):
    alone = tmp_path / "copied.ckpt"
    shutil.copy(tiny_run / "checkpoints" / "best.ckpt", alone)  # no run folder around it
    loaded = load_predictor(alone)
    spec = load_spec(tiny_run / "spec.yaml")
    bundle = build_data(spec.data, progress=False, cache=False)
    idx = bundle.splits["test"]
    m = InteractionMetrics(loaded.target_names, sync=False)
    pred, _ = loaded.predict(bundle.dataset.batch(idx))
    m.update(pred, bundle.dataset.y[idx])
    stored = json.loads((tiny_run / "metrics.json").read_text())
    assert m.compute()["pearson"] == pytest.approx(stored["test.pearson"], abs=1e-5)
    via_model_file = load_predictor(tiny_run)  # run folder -> model.pt
    assert via_model_file.path.name == "model.pt"
    p2, _ = via_model_file.predict(bundle.dataset.batch(idx))
    assert torch.allclose(pred, p2)


def test_truncated_checkpoint_is_a_clear_error(tiny_run: Path, tmp_path):
    data = (tiny_run / "checkpoints" / "last.ckpt").read_bytes()
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.ckpt.*not a readable checkpoint"):
        load_predictor(bad)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        read_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such file"):
        load_predictor(tmp_path / "missing.ckpt")


def test_tampered_weights_fail_the_digest(tiny_run: Path, tmp_path):
    obj = torch.load(tiny_run / "model.pt", weights_only=True)
    key = next(iter(obj["state_dict"]))
    obj["state_dict"][key] = obj["state_dict"][key] + 1e-3  # digest left as it was
    bad = tmp_path / "tampered.pt"
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="tampered.pt.*digest"):
        load_predictor(bad)


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(_Evil.marker),))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "cellgi": {"payload": _Evil()}}, bad)
    with pytest.raises(CheckpointError, match="evil.ckpt.*refused"):
        load_predictor(bad)
    assert not marker.exists()


def test_plain_state_dict_is_not_a_cellgi_checkpoint(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="not a cellgi checkpoint"):
        load_predictor(p)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    p = tmp_path / "x.pt"
    atomic_torch_save({"a": torch.ones(1)}, p)
    with pytest.raises(Exception):
        atomic_torch_save({"a": lambda: 0}, p)  # cannot be pickled
    assert torch.equal(torch.load(p, weights_only=True)["a"], torch.ones(1))
    assert [q.name for q in tmp_path.iterdir()] == ["x.pt"]  # no temporary left behind


def test_resolve_checkpoint_prefers_model_file(tiny_run: Path, tmp_path):
    assert resolve_checkpoint(tiny_run).name == "model.pt"
    assert resolve_checkpoint(tiny_run, prefer="last").name == "last.ckpt"
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)


def test_metadata_round_trips_graph_mapper_normalizer():
    g = CellGraph.from_edges(["A", "B", "C"], [("p", torch.tensor([[0], [1]]), False), ("r", torch.tensor([[2], [0]]), True)])
    state = g.state_dict()
    g2 = CellGraph.from_state_dict(state)
    assert torch.equal(g2.edge_index("p"), g.edge_index("p")) and g2.edge_types["r"].directed
    n = TargetNormalizer("zscore", [0.5], [2.0], ["t"])
    assert torch.equal(TargetNormalizer.from_state_dict(n.state_dict()).std, n.std)
