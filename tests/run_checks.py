"""Checks on trained run folders shared by several test files (imported by name: ``tests/`` is on
sys.path through its conftest)."""

from __future__ import annotations

import csv
from pathlib import Path

from cellgi.cli.main import main


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def assert_screen_equals_predict(run: Path, tmp_path: Path, capsys, *, query: str = "SYN0001;SYN0050") -> None:
    """`cellgi screen RUN` writes what `cellgi predict RUN` predicts for the same sets (a single run, a
    seed ensemble or a stacked folder alike)."""
    arrays = tmp_path / "screen_arrays.txt"
    arrays.write_text("".join(f"SYN{i:04d}\n" for i in range(1, 41)))
    out = tmp_path / "screen.tsv"
    code = main(["screen", str(run), "--query", query, "--arrays", str(arrays), "-o", str(out),
                 "--top-k", "5", "--batch-size", "16", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    n = 40 - len(set(query.split(";")) & {f"SYN{i:04d}" for i in range(1, 41)})
    assert f"wrote {n} predictions" in capsys.readouterr().out
    rows = read_tsv(out)
    sets = tmp_path / "screen_sets.txt"
    sets.write_text("".join(f"{query};{r['array']}\n" for r in rows))
    assert main(["predict", str(run), "--genes", str(sets), "-o", str(tmp_path / "screen_pred.tsv"), "--no-progress"]) == 0
    pred = read_tsv(tmp_path / "screen_pred.tsv")
    assert len(pred) == len(rows) == n
    for r, p in zip(rows, pred):
        assert abs(float(r["gene_interaction"]) - float(p["gene_interaction"])) <= 1e-5 + 1e-4 * abs(
            float(p["gene_interaction"]))
    assert len(read_tsv(tmp_path / "screen.top.tsv")) <= 10
