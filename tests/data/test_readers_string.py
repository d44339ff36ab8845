import gzip

import numpy as np
import pytest

from cellgi.data.errors import DataError
from cellgi.data.readers import read_string_actions, read_string_v9

HEADER = "item_id_a\titem_id_b\tmode\taction\tis_directional\ta_is_acting\tscore\n"


def test_real_string_v9(yeast_dir):
    d = yeast_dir / "networks" / "string_v9.1"
    raw = read_string_v9(d / "database.txt", d / "genes.txt")
    assert raw.num_rows == 66972
    assert raw.weight.min() > 0 and raw.weight.max() <= 1
    assert raw.names[0] == "Q0010"


def test_real_string_actions(yeast_dir):
    path = yeast_dir / "networks" / "string_v11" / "4932.protein.actions.v11.0.txt.gz"
    raw = read_string_actions(path, min_score=900, modes=["binding"])
    assert raw.num_rows > 0 and raw.filtered["score < min_score"] > 0 and raw.filtered["mode filter"] > 0
    assert raw.names[0].startswith("4932.")
    assert raw.weight.min() >= 0.9


def test_string_v9_out_of_range_and_malformed(tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_text("YAL001C\nYAL002W\n")
    f = tmp_path / "ch.txt"
    f.write_text("1 2 0.5\n1 3 0.4\n")
    with pytest.raises(DataError, match=r"ch.txt:2: id 3 is outside 1..2"):
        read_string_v9(f, genes)
    f.write_text("1 2\n")
    with pytest.raises(DataError, match=r"ch.txt:1: expected"):
        read_string_v9(f, genes)
    f.write_text("1 2 x\n")
    with pytest.raises(DataError, match=r"ch.txt:1: weight 'x'"):
        read_string_v9(f, genes)
    f.write_text("")
    with pytest.raises(DataError, match="no edges"):
        read_string_v9(f, genes)


def test_string_actions_direction(tmp_path):
    f = tmp_path / "a.tsv"
    f.write_text(
        HEADER
        + "4932.A\t4932.B\tactivation\tactivation\tt\tt\t800\n"
        + "4932.B\t4932.A\tactivation\tactivation\tt\tf\t800\n"
        + "4932.C\t4932.D\tbinding\t\tf\tf\t500\n"
        + "4932.C\t4932.E\tbinding\t\tf\tf\t100\n"
    )
    raw = read_string_actions(f, directed=True, min_score=200)
    pairs = {(raw.names[a], raw.names[b]) for a, b in zip(raw.src, raw.dst)}
    assert pairs == {("4932.A", "4932.B"), ("4932.C", "4932.D"), ("4932.D", "4932.C")}
    assert raw.filtered["score < min_score"] == 1
    np.testing.assert_allclose(sorted(set(raw.weight)), [0.5, 0.8])
    und = read_string_actions(f, actions=["activation"])
    assert und.num_rows == 2 and und.filtered["action filter"] == 2


def test_string_actions_bad(tmp_path):
    f = tmp_path / "a.tsv"
    f.write_text("item_id_a\titem_id_b\n")
    with pytest.raises(DataError, match="header lacks"):
        read_string_actions(f)
    f.write_text(HEADER + "4932.A\t4932.B\tbinding\t\tf\tf\n")
    with pytest.raises(DataError, match=r"a.tsv:2: expected 7"):
        read_string_actions(f)
    f.write_text(HEADER + "4932.A\t4932.B\tbinding\t\tf\tf\thigh\n")
    with pytest.raises(DataError, match=r"a.tsv:2: score"):
        read_string_actions(f)


def test_truncated_gzip(tmp_path):
    f = tmp_path / "a.tsv.gz"
    data = gzip.compress((HEADER + "4932.A\t4932.B\tbinding\t\tf\tf\t900\n" * 5000).encode())
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_string_actions(f)
