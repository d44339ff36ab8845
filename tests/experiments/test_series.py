"""Seed replicates: one run per seed and a mean ± sd summary of every metric."""

from __future__ import annotations

import json
import math

import pytest

from cellgi.cli.main import main
from cellgi.experiments.series import parse_seeds, summarize

from tiny_specs import write_tiny_spec


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]
    for bad in ("a", "1,1", "", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_summarize_mean_and_sample_sd():
    s = summarize({0: {"test.pearson": 0.5, "x": float("nan")}, 1: {"test.pearson": 0.7, "x": 1.0}})
    assert s["test.pearson"]["mean"] == pytest.approx(0.6)
    assert s["test.pearson"]["sd"] == pytest.approx(math.sqrt(0.02))
    assert s["x"]["n"] == 1 and s["x"]["sd"] is None


def test_cli_seeds_write_one_summary(tmp_path, capsys):
    spec = write_tiny_spec(tmp_path, epochs=1)
    out = tmp_path / "reps"
    assert main(["train", str(spec), "--seeds", "0,1", "--run-dir", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "±" in text and "replicates.json" in text
    rep = json.loads((out / "replicates.json").read_text())
    assert rep["seeds"] == [0, 1] and rep["runs"] == {"0": "seed_0", "1": "seed_1"}
    for k in ("test.pearson", "baseline_additive.test.pearson"):
        vals = rep["summary"][k]["values"]
        per_run = [json.loads((out / f"seed_{s}" / "metrics.json").read_text())[k] for s in (0, 1)]
        assert [vals["0"], vals["1"]] == per_run
        assert rep["summary"][k]["mean"] == pytest.approx(sum(per_run) / 2)
    # different seeds: different models, same split
    assert rep["summary"]["test.pearson"]["values"]["0"] != rep["summary"]["test.pearson"]["values"]["1"]
    assert (out / "seed_0" / "splits.npz").read_bytes() == (out / "seed_1" / "splits.npz").read_bytes()
    assert main(["train", str(spec), "--seeds", "x"]) == 2


def test_spec_seeds_train_replicates_and_the_flag_overrides_them(tmp_path):
    import yaml

    spec = write_tiny_spec(tmp_path, epochs=1)
    data = yaml.safe_load(spec.read_text())
    data.setdefault("training", {})["seeds"] = [3, 4]
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "reps"
    assert main(["train", str(spec), "--run-dir", str(out), "--no-progress"]) == 0
    rep = json.loads((out / "replicates.json").read_text())
    assert rep["seeds"] == [3, 4] and "ensemble" in rep
    # each member is one run: its stored spec has its own seed and no replicate list
    member = yaml.safe_load((out / "seed_3" / "spec.yaml").read_text())
    assert member["seed"] == 3 and member["training"]["seeds"] is None
    out2 = tmp_path / "reps2"
    assert main(["train", str(spec), "--seeds", "5", "--run-dir", str(out2), "--no-progress"]) == 0
    assert json.loads((out2 / "replicates.json").read_text())["seeds"] == [5]


@pytest.mark.parametrize(("seeds", "match"), [([], "at least 1"), ([1, 1], "repeated"), ([-2], ">= 0")])
def test_spec_seeds_are_validated(tmp_path, seeds, match):
    from cellgi.spec import SpecError, load_spec

    spec = write_tiny_spec(tmp_path, epochs=1)
    with pytest.raises(SpecError, match=match):
        load_spec(spec, [f"training.seeds={seeds}"])


def test_replicates_refuse_multi_process_strategies_and_say_how_to_run_one_seed(tmp_path):
    from cellgi.spec import load_spec
    from cellgi.training.runner import TrainerConfigError
    from cellgi.experiments.series import train_series

    spec = load_spec(write_tiny_spec(tmp_path, epochs=1), ["training.trainer.strategy=ddp", "training.seeds=[0, 1]"])
    with pytest.raises(TrainerConfigError, match=r"seed=S training.seeds=null"):
        train_series(spec, spec.training.seeds, run_dir=tmp_path / "reps")
    assert not (tmp_path / "reps").exists()


def test_a_stopped_series_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from lightning.pytorch.callbacks import Callback

    import cellgi.training.runner as runner
    from cellgi.spec import load_spec
    from cellgi.experiments.series import train_series
    from cellgi.runfolder.runs import PLAN_FILE
    from cellgi.training.runner import TrainingInterrupted
    from cellgi.runfolder.runs import read_json

    class _Term(Callback):  # SIGTERM in the middle of the second epoch
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    real_train = runner.train
    calls = []

    def train_stopping_seed_1(spec=None, **kw):
        calls.append(kw.get("resume") or kw.get("run_dir"))
        if spec is not None and spec.seed == 1:
            kw["callbacks"] = [_Term()]
        return real_train(spec, **kw)

    spec = load_spec(write_tiny_spec(tmp_path, epochs=3), ["training.seeds=[0, 1, 2]"])
    parent = tmp_path / "reps"
    monkeypatch.setattr(runner, "train", train_stopping_seed_1)
    with pytest.raises(TrainingInterrupted) as info:
        train_series(spec, spec.training.seeds, run_dir=parent, progress=False)
    assert info.value.run_dir == parent  # the message points at the series
    assert (parent / PLAN_FILE).is_file() and not (parent / "replicates.json").exists()
    assert read_json(parent / "seed_0" / "run.json")["status"] == "completed"
    assert read_json(parent / "seed_1" / "run.json")["status"] == "interrupted"
    assert not (parent / "seed_2").exists()
    seed0_metrics = (parent / "seed_0" / "metrics.json").read_text()
    monkeypatch.setattr(runner, "train", real_train)
    capsys.readouterr()
    assert main(["train", "--resume", str(parent), "--no-progress"]) == 0
    assert "(resumed)" in capsys.readouterr().out
    rep = json.loads((parent / "replicates.json").read_text())
    assert rep["seeds"] == [0, 1, 2] and set(rep["runs"]) == {"0", "1", "2"} and "ensemble" in rep
    assert (parent / "seed_0" / "metrics.json").read_text() == seed0_metrics  # read back, not trained again
    assert len(read_json(parent / "seed_1" / "run.json").get("resumes", [])) == 1  # continued from its checkpoint
    assert read_json(parent / "seed_2" / "run.json")["status"] == "completed"
    assert not (parent / "run.lock").exists()


def test_a_damaged_series_plan_is_a_clear_error(tmp_path, capsys):
    from cellgi.runfolder.runs import PLAN_FILE

    parent = tmp_path / "reps"
    parent.mkdir()
    (parent / PLAN_FILE).write_text('{"spec_name": "x", "seeds": [0, 1')  # cut mid-write
    assert main(["train", "--resume", str(parent), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{parent / PLAN_FILE}: not a readable replicates plan" in err
    assert not (parent / "run.lock").exists()


# ------------------------------------------------------------------------- the one path: a run and a series
def _count_metrics_writes(monkeypatch) -> list[str]:
    """Every ``metrics.json`` written through the run-folder JSON writer (all of them), by folder."""
    import cellgi.runfolder.runs as runs

    written: list[str] = []
    real = runs.write_text_atomic

    def counting(path, text, *a, **k):
        if str(path).endswith("metrics.json"):
            written.append(str(path))
        return real(path, text, *a, **k)

    monkeypatch.setattr(runs, "write_text_atomic", counting)
    return written


def test_metrics_json_is_written_once_per_run_folder(tmp_path, monkeypatch):
    """A stacked single run and a two-seed series: each run folder's metrics.json is written exactly once,
    complete (the model's, the baselines' and, for the run, the stack's metrics)."""
    from rich.console import Console

    from cellgi.experiments.series import train_series
    from cellgi.spec import load_spec

    written = _count_metrics_writes(monkeypatch)
    spec = load_spec(write_tiny_spec(tmp_path, epochs=1), ["training.stack={baselines: [features]}"])
    quiet = Console(file=open(tmp_path / "out.txt", "w"))
    single = train_series(spec, run_dir=tmp_path / "run", progress=False, console=quiet)
    assert written == [str(tmp_path / "run" / "metrics.json")]
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"test.pearson", "baseline_features.test.pearson", "stack.test.pearson"} <= set(on_disk)
    assert not single.series and single.runs == {str(spec.seed): "."} and single.run_dir == tmp_path / "run"
    assert single.metrics["stack.test.pearson"] == pytest.approx(on_disk["stack.test.pearson"])
    written.clear()
    series = train_series(spec, [0, 1], run_dir=tmp_path / "reps", progress=False, console=quiet)
    assert sorted(written) == [str(tmp_path / "reps" / f"seed_{s}" / "metrics.json") for s in (0, 1)]
    assert series.series and series.stack and "stack.test.pearson" in series.metrics
    assert not any("stack.test.pearson" in json.loads((tmp_path / "reps" / f"seed_{s}" / "metrics.json").read_text())
                   for s in (0, 1))  # the members are plain runs; the series' stack is the ensemble's


def test_a_run_stopped_after_training_before_its_stack_is_completed_on_resume(tmp_path, monkeypatch, capsys):
    """SIGTERM while the stack is fitted: the run is marked interrupted with no metrics.json; its resume
    does not train again (the checkpoints stay as they were), fits the stack and writes metrics.json."""
    import signal

    import cellgi.experiments.stacking as stacking
    from cellgi.training.runner import TrainingInterrupted
    from cellgi.runfolder.runs import read_json

    spec = write_tiny_spec(tmp_path, epochs=2)
    spec.write_text(spec.read_text() + "  stack: {baselines: [features]}\n")
    run = tmp_path / "run"

    def stopped(*a, **k):
        raise TrainingInterrupted(signal.SIGTERM)

    monkeypatch.setattr(stacking, "fit_stack", stopped)
    assert main(["train", str(spec), "--run-dir", str(run), "--no-progress"]) == 143
    assert f"continue with: cellgi train --resume {run}" in capsys.readouterr().err
    status = read_json(run / "run.json")
    assert status["status"] == "interrupted" and status["signal"] == "SIGTERM" and status["epochs"] == 2
    assert not (run / "metrics.json").exists() and not (run / "stack.pt").exists()
    assert not (run / "run.lock").exists()
    ckpts = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "its training finished (2 epochs)" in out and "epoch 3" not in out and "stacked test pearson" in out
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == ckpts  # not trained again
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test.pearson", "baseline_features.test.pearson", "stack.test.pearson"} <= set(metrics)
    assert (run / "stack.pt").is_file()
    status = read_json(run / "run.json")
    assert status["status"] == "completed" and status["epochs"] == 2 and len(status["resumes"]) == 1
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "is complete" in capsys.readouterr().out


def test_a_series_leaves_global_state_as_it_found_it(tmp_path):
    """The series path as a library call (two members, their ensemble and stack): signal handlers,
    warning filters, environment, logger levels, determinism switches, thread count and the global random
    generator as before."""
    import logging
    import os
    import signal
    import warnings

    import torch
    from rich.console import Console

    from cellgi.experiments.series import train_series
    from cellgi.spec import load_spec

    spec = write_tiny_spec(tmp_path, epochs=1)
    text = spec.read_text().replace("trainer: {accelerator: cpu, devices: 1}",
                                    "trainer: {accelerator: cpu, devices: 1, deterministic: true}")
    assert "deterministic: true" in text
    spec.write_text(text + "  stack: {baselines: [features]}\n")
    spec = load_spec(spec)  # before the snapshot: reading a spec imports modules that add warning filters
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    filters = list(warnings.filters)
    env = dict(os.environ)
    levels = {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict}
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.manual_seed(1234)
    expect = torch.rand(3)  # what the next draw is when nothing else draws
    torch.manual_seed(1234)
    result = train_series(spec, [0, 1], run_dir=tmp_path / "reps", progress=False,
                          console=Console(file=open(tmp_path / "o", "w")))
    assert result.ensemble and result.stack  # the whole path ran
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert warnings.filters == filters
    assert dict(os.environ) == env
    assert {n: logging.getLogger(n).level for n in levels} == levels
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.get_num_threads() == threads
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == cudnn
    assert torch.equal(torch.rand(3), expect)  # the global generator as it was (the runs seed their own)
