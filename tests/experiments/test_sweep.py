"""``cellgi sweep``: an Optuna study in SQLite, resumed after an interrupted process, with outputs."""

from __future__ import annotations

import csv

import pytest
from tiny_specs import tiny_spec

optuna = pytest.importorskip("optuna")
pytest.importorskip("optuna_integration")

from cellgi.cli.main import main  # noqa: E402
from cellgi.experiments.sweep import SweepConfigError, load_space, run_sweep, trial_overrides  # noqa: E402
from cellgi.spec import SpecError, load_spec  # noqa: E402

SMALL = ["data.synthetic.num_genes=60", "data.synthetic.num_samples=120", "training.baselines=[]",
         "model.hidden_dim=8"]

SPACE = """\
n_trials: {n}
sampler: {{type: random, seed: 1}}
params:
  training.optimizer.lr: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
  model.num_layers: {{type: categorical, choices: [1, 2]}}
"""


def _spec(tmp_path, block: str = ""):
    p = tmp_path / "t.yaml"
    p.write_text(tiny_spec("sw") + block)
    return p


def _states(storage: str, name: str = "sw") -> list[str]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t.state.name for t in study.trials]


def test_sweep_resumes_to_the_total_and_writes_outputs(tmp_path):
    spec = _spec(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.format(n=2))
    runs = tmp_path / "runs"
    seen = []
    res = run_sweep(spec, overrides=SMALL, space=space, runs_root=runs, on_trial=seen.append)
    assert res.storage == f"sqlite:///{(runs / 'sw' / 'study.db').resolve()}"
    assert res.new_trials == 2 and [t.state for t in res.trials] == ["complete", "complete"]
    assert [t.number for t in seen] == [0, 1]
    # the same study again, asking for 3: one new trial, the first two kept
    res = run_sweep(spec, overrides=SMALL, space=space, runs_root=runs, n_trials=3)
    assert res.new_trials == 1 and len(res.trials) == 3
    assert _states(res.storage) == ["COMPLETE"] * 3
    # each trial trained its sampled values, and its value is the run's val/pearson
    for t in res.trials:
        saved = load_spec(t.run_dir + "/spec.yaml")
        assert saved.training.optimizer.lr == pytest.approx(t.params["training.optimizer.lr"])
        assert saved.model.num_layers == t.params["model.num_layers"]
        assert t.value == pytest.approx(t.metrics["val.pearson"])
    best = max(res.trials, key=lambda t: t.value)
    assert res.best.number == best.number
    again = load_spec(res.best_spec)
    assert again.model.num_layers == best.params["model.num_layers"] and again.sweep is None
    rows = list(csv.DictReader(res.table.open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2] and "val/pearson" in rows[0]
    assert {p.name for p in res.plots} >= {"optimization_history.png", "slice.png"}
    assert all(p.stat().st_size > 1000 for p in res.plots)
    # asking for no more than the study holds runs nothing
    assert run_sweep(spec, overrides=SMALL, space=space, runs_root=runs, n_trials=3, plots=False).new_trials == 0


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_sweep_continues_after_an_interrupted_process(tmp_path, monkeypatch, capsys, stop):
    import signal

    import cellgi.training.runner as runner

    spec = _spec(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.format(n=2))
    runs = tmp_path / "runs"
    real = runner.train
    calls = {"n": 0}

    def stopped_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C in an interactive session; SIGTERM (the runner's handler) from a scheduler
            raise KeyboardInterrupt if stop == "ctrl-c" else runner.TrainingInterrupted(signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(runner, "train", stopped_on_second)
    rc = main(["sweep", str(spec), *SMALL, "--space", str(space), "--runs-root", str(runs), "--no-plots"])
    assert rc == (130 if stop == "ctrl-c" else 143)
    assert "run the same command again to resume" in capsys.readouterr().err
    storage = f"sqlite:///{(runs / 'sw' / 'study.db').resolve()}"
    assert _states(storage) == ["COMPLETE", "FAIL"]  # the stopped trial is not left running
    monkeypatch.setattr(runner, "train", real)
    res = run_sweep(spec, overrides=SMALL, space=space, runs_root=runs, plots=False)
    assert res.new_trials == 1
    assert _states(storage) == ["COMPLETE", "FAIL", "COMPLETE"]


def test_sweep_cli_spec_block_and_storage_flags(tmp_path, capsys):
    block = "sweep:\n" + "".join("  " + line + "\n" for line in SPACE.format(n=1).splitlines())
    spec = _spec(tmp_path, block)
    db = tmp_path / "elsewhere.db"
    rc = main(["sweep", str(spec), *SMALL, "--runs-root", str(tmp_path / "runs"), "--storage",
               f"sqlite:///{db}", "--study-name", "mine", "--no-plots"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "study mine: val/pearson (maximize), 1 trials, 1 new" in out and "best: trial 0" in out
    assert _states(f"sqlite:///{db}", "mine") == ["COMPLETE"]
    assert (tmp_path / "runs" / "sw" / "sweeps" / "mine" / "trial_0000" / "metrics.json").is_file()


def test_sweep_errors(tmp_path, capsys):
    spec = _spec(tmp_path)
    with pytest.raises(SweepConfigError, match="no search space"):
        run_sweep(spec, overrides=SMALL, runs_root=tmp_path / "runs")
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  model.hidden_dim: {type: int, low: 8, high: 4}\n")
    with pytest.raises(SpecError, match=r"bad.yaml:2: params.model.hidden_dim: .*must not exceed"):
        load_space(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("params:\n  model.hiden_dim: {type: categorical, choices: [8]}\n")
    with pytest.raises(SpecError, match="hiden_dim"):  # refused before any trial runs
        run_sweep(spec, overrides=SMALL, space=unknown, runs_root=tmp_path / "runs")
    assert not (tmp_path / "runs" / "sw" / "sweeps" / "sw").exists() or not any(
        (tmp_path / "runs" / "sw" / "sweeps" / "sw").iterdir())
    rc = main(["sweep", str(spec), "--space", str(bad), "--runs-root", str(tmp_path / "runs")])
    assert rc == 2 and "bad.yaml:2" in capsys.readouterr().err
    rc = main(["sweep", str(spec), "--space", str(unknown), "--storage", "notaurl"])
    assert rc == 2


def test_trial_overrides_read_back():
    ovs = trial_overrides({"a.b": 1e-3, "c": [1, 2], "d": "x y", "e": None, "f": True})
    assert ovs == ["a.b=0.001", "c=[1, 2]", "d=x y", "e=null", "f=true"]


def test_pruning_stops_training_instead_of_raising():
    """Optuna's Lightning callback decides; ours turns its TrialPruned into a stop, so the run folder of a
    pruned trial is a finished (short) run and run_sweep marks the trial pruned afterwards."""
    from types import SimpleNamespace

    import torch

    from cellgi.experiments.sweep import _pruning_callback

    class Trial:
        def __init__(self, prune: bool):
            self.prune, self.reported = prune, []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return self.prune

    for prune in (False, True):
        trial = Trial(prune)
        cb = _pruning_callback(trial, "val/pearson")
        trainer = SimpleNamespace(sanity_checking=False, should_stop=False,
                                  callback_metrics={"val/pearson": torch.tensor(0.25)})
        cb.on_validation_end(trainer, SimpleNamespace(current_epoch=3))
        assert trial.reported == [(3, 0.25)]
        assert trainer.should_stop is prune and bool(cb.pruned) is prune
