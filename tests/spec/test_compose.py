"""Composed specs: ``extends`` a base spec, ``include`` shared blocks; errors at the file and line of the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellgi.cli.main import main
from cellgi.spec import SpecError, load_spec

DATA = """\
root: ../yeast
synthetic:
  num_genes: 60
  num_samples: 120
  edge_types: {physical: 100}
  directed: []
batch_size: 16
"""
TRAINER = """\
accelerator: cpu
devices: 1
"""
BASE = """\
name: base
data:
  include: shared/data.yaml
  cache: false
model:
  hidden_dim: 8
  conv: {type: masked_gin, num_mlp_layers: 2}
training:
  max_epochs: 3
  trainer: {include: shared/trainer.yaml}
"""
CHILD = """\
extends: base.yaml
name: child
data:
  batch_size: 32
training:
  max_epochs: 1
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data.yaml").write_text(DATA)
    (tmp_path / "shared" / "trainer.yaml").write_text(TRAINER)
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "child.yaml").write_text(CHILD)
    return tmp_path


def test_extends_and_include_merge(files):
    spec = load_spec(files / "child.yaml")
    assert spec.name == "child" and spec.training.max_epochs == 1  # the child's keys win
    assert spec.data.batch_size == 32 and spec.data.synthetic.num_genes == 60 and spec.data.cache is False
    assert spec.model.conv.num_mlp_layers == 2 and spec.training.trainer.accelerator == "cpu"
    # a relative data.root written in an included file is taken from that file's folder
    assert spec.data.root == str((files / "yeast").resolve())
    base = load_spec(files / "base.yaml")
    assert base.name == "base" and base.data.batch_size == 16 and base.training.max_epochs == 3


def test_lists_and_scalars_replace(files):
    (files / "c2.yaml").write_text("extends: base.yaml\ndata:\n  synthetic:\n    edge_types: {coexp: 20}\n"
                                   "    directed: [coexp]\n")
    spec = load_spec(files / "c2.yaml")
    assert spec.data.synthetic.edge_types == {"physical": 100, "coexp": 20}  # mappings merge key by key
    assert spec.data.synthetic.directed == ["coexp"]  # a list replaces the base's list
    assert spec.data.synthetic.num_samples == 120


def test_errors_point_at_the_file_and_line_of_the_value(files):
    (files / "shared" / "trainer.yaml").write_text("accelerator: cpu\ndevices: 1\nprecision: 32\n")
    with pytest.raises(SpecError) as info:
        load_spec(files / "child.yaml")
    text = info.value.render()
    assert text.startswith(f"{files / 'shared' / 'trainer.yaml'}:3: training.trainer.precision:")
    assert "    precision: 32\n    ^" in text
    (files / "shared" / "trainer.yaml").write_text(TRAINER)
    (files / "base.yaml").write_text(BASE.replace("hidden_dim: 8", "hiden_dim: 8"))
    with pytest.raises(SpecError, match=r"base.yaml:6: model.hiden_dim: unknown key"):
        load_spec(files / "child.yaml")
    # the child's own lines still point at the child
    (files / "base.yaml").write_text(BASE)
    (files / "child.yaml").write_text(CHILD.replace("max_epochs: 1", "max_epochs: '1'"))
    with pytest.raises(SpecError, match=r"child.yaml:6: training.max_epochs"):
        load_spec(files / "child.yaml")


@pytest.mark.parametrize("text,match", [
    ("extends: nothere.yaml\nname: x\n", r"child.yaml:1: .*nothere.yaml: file not found"),
    ("extends: [1]\nname: x\n", r"child.yaml:1: extends: give a file path"),
    ("extends: child.yaml\nname: x\n", r"child.yaml:1: include cycle: .*child.yaml -> .*child.yaml"),
    ("name: x\ndata: {include: list.yaml}\n", r"list.yaml:1: included file must hold a mapping"),
])
def test_bad_composition(files, text, match):
    (files / "list.yaml").write_text("- 1\n- 2\n")
    (files / "child.yaml").write_text(text)
    with pytest.raises(SpecError, match=match):
        load_spec(files / "child.yaml")


def test_include_cycle_through_two_files(files):
    (files / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (files / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(SpecError, match=r"b.yaml:1: include cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_spec(files / "a.yaml")


def test_composed_spec_on_the_command_line(files, capsys):
    assert main(["spec", "validate", str(files / "child.yaml"), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "include" not in out and "extends" not in out and "batch_size: 32" in out
    assert main(["spec", "validate", str(files / "child.yaml"), "training.trainer.devices=2"]) == 0


def test_a_component_with_another_type_replaces_the_base_one(files):
    (files / "gat.yaml").write_text("extends: base.yaml\nmodel:\n  conv: {type: masked_gatv2, heads: 2}\n")
    spec = load_spec(files / "gat.yaml")
    assert spec.model.conv.type == "masked_gatv2" and spec.model.conv.heads == 2  # num_mlp_layers gone
    (files / "gin.yaml").write_text("extends: base.yaml\nmodel:\n  conv: {type: masked_gin, eps: 0.5}\n")
    spec = load_spec(files / "gin.yaml")
    assert spec.model.conv.num_mlp_layers == 2 and spec.model.conv.eps == 0.5  # same type: merged


def test_docs_compose_example_runs_as_written(tmp_path):
    """The bash block of docs/specs.md ('compose-example'), run from a folder laid out like the repository."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    lines = (repo / "docs" / "specs.md").read_text().splitlines()
    start = lines.index("<!-- test: compose-example -->") + 2
    end = lines.index("```", start)
    script = "\n".join(lines[start:end]) + "\n"
    (tmp_path / "configs").symlink_to(repo / "configs")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name: quickstart-gat" in proc.stdout and "heads: 2" in proc.stdout and "accelerator: cpu" in proc.stdout
    assert "num_mlp_layers" not in proc.stdout
