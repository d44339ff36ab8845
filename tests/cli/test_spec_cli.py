"""`cellgi spec validate|schema`: exit codes and FILE:LINE messages, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cellgi.cli.main import main

REPO = Path(__file__).resolve().parents[2]
GOOD = "name: t\ndata:\n  synthetic: {num_genes: 50, num_samples: 100}\n"


def test_validate_ok(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD)
    assert main(["spec", "validate", str(f)]) == 0
    out = capsys.readouterr().out
    assert "valid spec 't'" in out and len(out.strip().splitlines()) == 1


def test_validate_errors_exit_2(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD + "model:\n  aggregator: {type: summ}\n")
    assert main(["spec", "validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:5: model.aggregator.type: unknown aggregator 'summ'; did you mean 'sum'?" in err


def test_validate_yaml_syntax_error(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("name: [t\n")
    assert main(["spec", "validate", str(f)]) == 2
    assert f"{f}:" in capsys.readouterr().err


def test_configs_validate(capsys):
    for cfg in sorted((REPO / "configs").glob("*.yaml")):
        assert main(["spec", "validate", str(cfg)]) == 0, capsys.readouterr().err


def test_schema_json(tmp_path, capsys):
    out = tmp_path / "schema.json"
    assert main(["spec", "schema", "-o", str(out)]) == 0
    schema = json.loads(out.read_text())
    assert "properties" in schema and "model" in schema["properties"]


def test_subprocess_no_traceback(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD + "training:\n  max_epochs: '3'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cellgi", "spec", "validate", str(f)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{f}:5: training.max_epochs:" in proc.stderr
