"""DDP with two CPU processes (gloo): trains, shards the data, and gathers metrics exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cellgi.data.build import build_data
from cellgi.spec import load_spec
from cellgi.predictors import load_predictor
from cellgi.metrics import InteractionMetrics

from tiny_specs import tiny_spec


@pytest.mark.slow
def test_ddp_two_cpu_processes_gather_metrics_exactly(tmp_path):
    text = tiny_spec("tiny", epochs=2)
    text = text.replace("num_samples: 500", "num_samples: 510")  # 51 test samples: uneven shards
    text = text.replace("eval_batch_size: 64", "eval_batch_size: 16")
    text = text.replace("trainer: {accelerator: cpu, devices: 1}", "trainer: {accelerator: cpu, devices: 2, strategy: ddp}")
    spec_file = tmp_path / "ddp.yaml"
    spec_file.write_text(text)
    run = tmp_path / "run"
    env = dict(os.environ, CELLGI_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cellgi", "train", str(spec_file), "--run-dir", str(run), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    spec = load_spec(run / "spec.yaml")
    bundle = build_data(spec.data, progress=False, cache=False)
    sizes = {k: int(v.numel()) for k, v in bundle.splits.items()}
    assert sizes["test"] == 51
    # every sample counted exactly once over both ranks (no DistributedSampler padding duplicates)
    for stage in ("train", "val", "test"):
        assert metrics[f"{stage}.n"] == sizes[stage]
    # each rank trained on half of the training set per epoch: ceil(ceil(408 / 2) / 32) = 7 steps
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(last["global_step"]) == 2 * 7
    # the gathered test metrics equal a single-process evaluation of the same checkpoint
    loaded = load_predictor(metrics_ckpt := run / "checkpoints" / "best.ckpt")
    assert metrics_ckpt.is_file()
    idx = bundle.splits["test"]
    ref = InteractionMetrics(loaded.target_names, spec.training.metrics.strong_threshold, sync=False)
    pred, _ = loaded.predict(bundle.dataset.batch(idx))
    ref.update(pred, bundle.dataset.y[idx])
    want = ref.compute()
    for k in ("n", "mse", "mae", "pearson", "spearman", "n_strong", "strong_pearson", "strong_auroc", "strong_auprc",
              "auprc_neg", "prevalence_neg", "auroc_pos", "auprc_pos_stringent"):
        assert metrics[f"test.{k}"] == pytest.approx(want[k], rel=1e-4, abs=1e-6), k
