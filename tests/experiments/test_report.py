"""The report of ``cellgi train``: the summary table, the verdict lines, nothing for a run complete before."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cellgi.experiments.report import baseline_verdicts, report
from cellgi.experiments.series import SeriesResult
from cellgi.training.runner import TrainResult


def test_baseline_verdicts_say_ties_at_the_printed_precision():
    lines = baseline_verdicts({"test.pearson": 0.09241, "baseline_additive.test.pearson": 0.09238,
                               "baseline_features.test.pearson": 0.0801})
    assert lines[0] == "test pearson 0.0924 ties the additive baseline (0.0924)"
    assert lines[1] == "test pearson 0.0924 beats the features baseline (0.0801, +0.0123)"
    worse = baseline_verdicts({"test.pearson": 0.30, "baseline_additive.test.pearson": 0.30006})
    assert worse == ["test pearson 0.3000 does not beat the additive baseline (0.3001, -0.0001)"]
    exact = baseline_verdicts({"test.pearson": 0.5, "baseline_additive.test.pearson": 0.5})
    assert "ties" in exact[0] and "beat" not in exact[0]


def _single(metrics: dict[str, float], **kw) -> SeriesResult:
    run = TrainResult(Path("r"), metrics=metrics, epochs=3, best_epoch=1, target_names=["gi"], **kw)
    return SeriesResult(Path("r"), [0], {"0": "."}, {}, members={0: run}, series=False, spec_name="tiny",
                        complete_before=run.complete_before)


def _text(parts) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for part in parts:
        console.print(part)
    return console.export_text()


def test_a_run_is_reported_with_its_table_verdicts_and_files():
    metrics = {"train.pearson": 0.9, "val.pearson": 0.6, "test.pearson": 0.5, "test.n": 10.0,
               "baseline_additive.test.pearson": 0.4, "stack.test.pearson": 0.55}
    parts = report(_single(metrics, stopped_early=3))
    assert isinstance(parts[0], Table) and parts[0].title == "tiny: best epoch 2 of 3 (early stopping)"
    text = _text(parts)
    assert "test pearson 0.5000 beats the additive baseline (0.4000, +0.1000)" in text
    assert "stacked test pearson 0.5500 beats the additive baseline (0.4000, +0.1500)" in text
    assert f"wrote {Path('r') / 'metrics.json'}" in text


def test_a_run_complete_before_is_not_reported_again():
    assert report(_single({"test.pearson": 0.5}, complete_before=True)) == []


def test_a_series_is_reported_with_mean_sd_and_the_ensembles_verdict():
    summary = {"test.pearson": {"mean": 0.5, "sd": 0.01, "n": 2, "values": {"0": 0.49, "1": 0.51}},
               "baseline_additive.test.pearson": {"mean": 0.4, "sd": 0.0, "n": 2, "values": {"0": 0.4, "1": 0.4}}}
    result = SeriesResult(Path("reps"), [0, 1], {"0": "seed_0", "1": "seed_1"}, summary,
                          ensemble={"test.pearson": 0.52})
    text = _text(report(result))
    assert "0.5000 ± 0.0100" in text and "0.5200" in text
    assert "ensemble test pearson 0.5200 beats the additive baseline (0.4000, +0.1200)" in text
    assert f"wrote {Path('reps') / 'replicates.json'}" in text
