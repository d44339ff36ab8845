"""InteractionTask: schedule, weighted loss, metrics in original units, checkpoint metadata."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from cellgi.data.build import build_data
from cellgi.nn.model import LazyDango
from cellgi.spec import load_spec
from cellgi.runfolder.checkpoint import CHECKPOINT_KEY, compute_digest
from cellgi.data.datamodule import CellDataModule
from cellgi.metrics import InteractionMetrics
from cellgi.training.task import InteractionTask, lr_lambda

from tiny_specs import write_tiny_spec


def test_lr_schedule_warmup_then_cosine_to_floor():
    kw = dict(total_steps=100, warmup_fraction=0.1, min_lr_ratio=0.05, kind="cosine")
    lrs = [lr_lambda(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # warming up
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # decaying
    assert lr_lambda(100, **kw) == pytest.approx(0.05)
    const = [lr_lambda(s, total_steps=100, warmup_fraction=0.0, min_lr_ratio=0.05, kind="constant") for s in range(100)]
    assert const == [1.0] * 100


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    spec = load_spec(write_tiny_spec(tmp_path_factory.mktemp("task")))
    bundle = build_data(spec.data, progress=False, cache=False)
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec.model, bundle.graph, 1)
    return spec, bundle, model


def _task(spec, bundle, model, **kw):
    return InteractionTask(model, spec.training, bundle.target_names, bundle.normalizer.mean, bundle.normalizer.std, **kw)


def test_loss_honours_sample_weights(parts):
    spec, bundle, model = parts
    task = _task(spec, bundle, model)
    batch = bundle.dataset.batch(torch.arange(8), y_transform=bundle.normalizer.transform)
    pred, _ = model(batch)
    w = torch.zeros(8)
    w[0] = 1.0
    batch.weight = w
    only_first = task.loss_fn(pred, batch.y, batch.weight)
    direct = task.loss_fn(pred[:1], batch.y[:1], None)
    assert torch.allclose(only_first, direct)
    assert spec.training.loss.type == "logcosh"


def test_metrics_are_in_original_units(parts):
    spec, bundle, model = parts
    task = _task(spec, bundle, model)
    idx = bundle.splits["test"]
    batch = bundle.dataset.batch(idx, y_transform=bundle.normalizer.transform)
    model.eval()
    with torch.no_grad():
        pred, _ = model(batch)
    orig = task.to_original(pred)
    assert torch.allclose(orig, bundle.normalizer.inverse(pred), atol=1e-6)
    assert torch.allclose(task.to_original(batch.y), bundle.dataset.y[idx], atol=1e-6)
    ref = InteractionMetrics(bundle.target_names, sync=False)
    ref.update(orig, bundle.dataset.y[idx])
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        use_distributed_sampler=False, enable_model_summary=False)
    dm = CellDataModule(bundle, batch_size=16, eval_batch_size=7, final_stages=("test",))
    trainer.test(task, datamodule=dm, verbose=False)
    got, want = task.results["test"], ref.compute()
    assert got["n"] == want["n"] == idx.numel()
    for k in ("mse", "mae", "pearson"):
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-7), k
    # ranks of an untrained model's near-tied predictions may flip with float rounding across batchings
    for k in ("spearman", "strong_auroc"):
        assert got[k] == pytest.approx(want[k], abs=2e-3), k
    pred_s, target_s = task.test_scatter
    assert pred_s.shape == (idx.numel(), 1) and torch.allclose(target_s, bundle.dataset.y[idx], atol=1e-6)


def test_training_lowers_the_loss_and_checkpoints_carry_metadata(parts, tmp_path):
    spec, bundle, _ = parts
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec.model, bundle.graph, 1)
    meta = {"format_version": 1, "spec_json": "{}", "target_names": ["gene_interaction"]}
    losses: list[float] = []
    seen: list[dict] = []

    def reporter(epoch, max_epochs, values, seconds):
        losses.append(values["train/loss_epoch"])
        seen.append(values)

    task = _task(spec, bundle, model, metadata=meta, reporter=reporter)
    dm = CellDataModule(bundle, batch_size=32, final_stages=("test",))
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, use_distributed_sampler=False, enable_model_summary=False,
                        num_sanity_val_steps=0)
    trainer.fit(task, datamodule=dm)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert math.isfinite(float(trainer.callback_metrics["val/pearson"]))
    assert all("val/pearson" in v and "train/pearson" in v for v in seen)
    trainer.save_checkpoint(tmp_path / "x.ckpt")
    obj = torch.load(tmp_path / "x.ckpt", weights_only=True)
    stored = obj[CHECKPOINT_KEY]
    assert stored["target_names"] == ["gene_interaction"]
    assert stored["digest"] == compute_digest(obj["state_dict"], stored)


def test_bf16_mixed_trains_on_cpu(parts):
    spec, bundle, _ = parts
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec.model, bundle.graph, 1)
    losses: list[float] = []
    task = _task(spec, bundle, model, reporter=lambda e, m, values, s: losses.append(values["train/loss_epoch"]))
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, precision="bf16-mixed", logger=False,
                        enable_progress_bar=False, enable_checkpointing=False, use_distributed_sampler=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=CellDataModule(bundle, batch_size=32, final_stages=("test",)))
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert math.isfinite(float(trainer.callback_metrics["val/pearson"]))
