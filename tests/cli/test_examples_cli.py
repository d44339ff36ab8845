"""Shipped example specs: `cellgi spec example`, `cellgi train NAME`, and their place in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from cellgi.cli.main import main
from cellgi.examples import examples_dir, list_examples

REPO = Path(__file__).resolve().parents[2]


def test_examples_are_the_repository_configs():
    assert examples_dir() == REPO / "configs"
    names = [e.name for e in list_examples()]
    assert {"quickstart", "yeast_real", "dango_lazy_kuzmin"} <= set(names)
    assert all(e.summary for e in list_examples())


def test_every_shipped_spec_validates_and_defaults_to_auto(capsys):
    for e in list_examples():
        assert main(["spec", "validate", e.name]) == 0, capsys.readouterr().err
        trainer = yaml.safe_load(e.path.read_text())["training"]["trainer"]
        assert trainer["accelerator"] == "auto", e.name


def test_list_and_write(tmp_path, capsys):
    assert main(["spec", "example"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == "costanzo_genome" and "quickstart" in out  # sorted by name
    dest = tmp_path / "mine.yaml"
    assert main(["spec", "example", "yeast_real", "-o", str(dest)]) == 0
    assert dest.read_text() == (REPO / "configs" / "yeast_real.yaml").read_text()
    assert "data.root" in capsys.readouterr().out  # tells the user to point it at their data
    assert main(["spec", "example", "yeast_real", "-o", str(dest)]) == 2  # no silent overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["spec", "example", "quickstrat"]) == 2
    assert "did you mean 'quickstart'?" in capsys.readouterr().err


def test_train_takes_an_example_name(capsys):
    assert main(["train", "quickstart", "--print-config"]) == 0
    assert "name: quickstart" in capsys.readouterr().out
    assert main(["train", "quickstrt"]) == 2
    err = capsys.readouterr().err
    assert "spec file 'quickstrt' not found" in err and "did you mean 'quickstart'?" in err


def test_relative_root_override_from_cwd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["spec", "validate", "yeast_real", "data.root=mydata", "--print-config"]) == 0
    assert f"root: {(tmp_path / 'mydata').resolve()}" in capsys.readouterr().out


@pytest.mark.slow
def test_wheel_ships_the_examples(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "cellgi", src / "cellgi", ignore=ignore)
    shutil.copytree(REPO / "configs", src / "configs", ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("cellgi-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for cfg in (REPO / "configs").glob("*.yaml"):
        assert f"cellgi/configs/{cfg.name}" in names
    assert "cellgi/cli/main.py" in names and "cellgi/examples.py" in names
    assert any(n.startswith("cellgi/registry/") for n in names) or "cellgi/registry.py" in names
    meta = next(n for n in names if n.endswith("METADATA"))
    assert "Project-URL: Documentation" in zipfile.ZipFile(wheel).read(meta).decode()


def _yaml_blocks(md: Path) -> list[tuple[int, str, str]]:
    """(line, marker above the block, text) of every ```yaml block of a Markdown file."""
    out = []
    lines = md.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            marker = lines[i - 1].strip() if i else ""
            out.append((i + 1, marker, "\n".join(lines[i + 1 : j]) + "\n"))
            i = j
        i += 1
    return out


def test_docs_full_specs_validate():
    """Every complete spec (name + data) shown in the README and docs validates as written."""
    from cellgi.spec import parse_spec

    seen = 0
    for md in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line, _, text in _yaml_blocks(md):
            if "..." in text:  # an outline such as `data: {...}`, not a spec
                continue
            data = yaml.safe_load(text)
            if isinstance(data, dict) and "name" in data and "data" in data:
                parse_spec(text, f"{md.name}:{line}", base_dir=REPO / "configs")
                seen += 1
    assert seen >= 2


@pytest.mark.realdata
def test_docs_real_data_example_files_exist(yeast_dir):
    """docs/data.md's real-data example, read from configs/ as it says, names files that exist."""
    from cellgi.spec import parse_spec

    block = next(t for _, m, t in _yaml_blocks(REPO / "docs" / "data.md") if m == "<!-- real-data-example -->")
    spec = parse_spec(block, "data.md", base_dir=REPO / "configs")
    assert Path(spec.data.root) == (REPO.parent / "shared" / "data" / "yeast").resolve()
    root = yeast_dir  # the same folder, or where $CELLGI_YEAST_DATA puts it
    paths = [spec.data.genes.path] + [g.path for g in spec.data.graphs] + [s.path for s in spec.data.screens]
    paths += [g.genes_path for g in spec.data.graphs if getattr(g, "genes_path", None)]
    missing = [p for p in paths if not (root / p).is_file()]
    assert not missing, missing


def test_shipped_real_data_example_without_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "yeast_real", "data.root=nowhere"], ["data", "summary", "yeast_real", "data.root=nowhere"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'nowhere'} does not exist: pass data.root=DIR" in err
    assert not (tmp_path / "runs").exists()
