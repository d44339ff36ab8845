"""`cellgi train|spec validate|data summary SPEC KEY=VALUE ...`, --print-config, --accelerator/--devices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from cellgi.cli.main import main
from cellgi.spec import parse_spec
from tiny_specs import tiny_spec

REPO = Path(__file__).resolve().parents[2]


def test_validate_with_overrides(tmp_path, capsys):
    f = tmp_path / "t.yaml"
    f.write_text(tiny_spec("t"))
    assert main(["spec", "validate", str(f), "model.hidden_dim=8", "model.num_layers=1"]) == 0
    out = capsys.readouterr().out
    assert "(H=8)" in out and "x 1 layers" in out and "2 override(s) applied" in out


def test_bad_override_located_at_the_argument(tmp_path, capsys):
    f = tmp_path / "t.yaml"
    f.write_text(tiny_spec("t"))
    assert main(["train", str(f), "model.num_layers=2", "model.hiden_dim=8", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("override 2 (model.hiden_dim=8): model.hiden_dim: unknown key")
    assert "did you mean 'hidden_dim'?" in err
    assert not (tmp_path / "r").exists()  # nothing started


def test_print_config_is_the_resolved_spec(tmp_path, capsys):
    assert main(["train", "quickstart", "model.hidden_dim=8", "--accelerator", "cpu", "--devices", "1",
                 "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# resolved by cellgi")
    spec = parse_spec(text, "printed.yaml")
    assert spec.model.hidden_dim == 8 and spec.training.trainer.accelerator == "cpu"
    data = yaml.safe_load(text)
    assert data["model"]["pooling"] == {"type": "attentional"} or "type" in data["model"]["pooling"]
    assert "optimizer" in data["training"] and "betas" in data["training"]["optimizer"]  # defaults written


def test_device_flags_are_trainer_overrides(capsys):
    assert main(["spec", "validate", "quickstart", "training.trainer.devices=2", "--print-config"]) == 0
    assert "devices: 2" in capsys.readouterr().out
    assert main(["train", "quickstart", "--devices", "[0", "--print-config"]) == 2
    assert capsys.readouterr().err.startswith("--devices [0: training.trainer.devices: invalid YAML")


def test_overrides_after_flags_and_resume_refuses_them(tmp_path, capsys):
    f = tmp_path / "t.yaml"
    f.write_text(tiny_spec("t"))
    # key=value after an option still counts as an override
    assert main(["train", str(f), "--run-dir", str(tmp_path / "r"), "model.hidden_dim=4", "--print-config"]) == 0
    assert "hidden_dim: 4" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path), "model.hidden_dim=4"]) == 2
    assert "do not apply to --resume" in capsys.readouterr().err


def test_train_with_overrides_writes_them_into_the_run(tmp_path, capsys):
    f = tmp_path / "t.yaml"
    f.write_text(tiny_spec("t"))
    rc = main(["train", str(f), "model.hidden_dim=8", "data.synthetic.num_samples=300", "--accelerator", "cpu",
               "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    saved = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())
    assert saved["model"]["hidden_dim"] == 8 and saved["data"]["synthetic"]["num_samples"] == 300


def test_data_summary_override_subprocess(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(tiny_spec("t"))
    proc = subprocess.run([sys.executable, "-m", "cellgi", "data", "summary", str(f), "data.synthetic.num_genes=120",
                           "--json", "--no-cache"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout)["genes"] == 120
    bad = subprocess.run([sys.executable, "-m", "cellgi", "data", "summary", str(f), "data.synthetic.num_gene=120"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "override 1 (data.synthetic.num_gene=120): data.synthetic.num_gene: unknown key" in bad.stderr
