"""`cellgi embed RUN -o FILE`: per-gene embeddings as TSV, Parquet, AnnData."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cellgi.cli.main import main


def test_tsv(run, tmp_path, capsys):
    out = tmp_path / "genes.tsv"
    assert main(["embed", str(run), "-o", str(out)]) == 0
    assert "wrote 200 genes x 16 dims" in capsys.readouterr().out
    rows = out.read_text().splitlines()
    assert rows[0].split("\t")[:4] == ["gene", "name", "dim_0", "dim_1"] and len(rows) == 201
    # the tiny run's genes have no standard name: the name column repeats the gene
    assert all(r.split("\t")[0] == r.split("\t")[1] for r in rows[1:])
    assert main(["embed", str(run), "-o", str(out)]) == 2  # no silent overwrite
    assert main(["embed", str(run), "-o", str(out), "--kind", "input", "--force"]) == 0


def test_parquet_matches_api(run, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import cellgi

    out = tmp_path / "genes.parquet"
    assert main(["embed", str(run), "-o", str(out)]) == 0
    df = pd.read_parquet(out)
    assert list(df.columns[:2]) == ["name", "dim_0"]
    np.testing.assert_allclose(df.drop(columns="name").values, cellgi.load(run).embeddings().values, rtol=1e-6)


def test_h5ad_needs_the_extra_or_writes(run, tmp_path, capsys):
    out = tmp_path / "genes.h5ad"
    rc = main(["embed", str(run), "-o", str(out)])
    try:
        import anndata
    except ImportError:
        assert rc == 2 and "pip install 'cellgi[anndata]'" in capsys.readouterr().err
        assert not out.exists()
        return
    assert rc == 0 and anndata.read_h5ad(out).shape == (200, 16)


def test_bad_inputs_subprocess(run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cellgi", "embed", str(run), "-o", str(tmp_path / "x.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown output format '.csv'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "cellgi", "embed", str(tmp_path / "nothing"), "-o",
                           str(tmp_path / "x.tsv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
