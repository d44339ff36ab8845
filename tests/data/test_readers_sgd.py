import pytest

from cellgi.data.errors import DataError
from cellgi.data.genes import REASON_AMBIGUOUS, REASON_NOT_IN_GENES, REASON_UNKNOWN, GeneMapper, UnmappedLog
from cellgi.data.readers import read_gene_list, read_sgd_features


def _row(orf, qual="Verified", std="", aliases="", ftype="ORF"):
    cols = ["S1", ftype, qual, orf, std, aliases] + [""] * 10
    return "\t".join(cols)


def test_real_sgd_features(yeast_dir):
    f = read_sgd_features(yeast_dir / "genes" / "SGD_features.tab")
    assert len(f.genes) == 6607
    m = f.mapper()
    for x in ("YKL112W", "YKL112w", "4932.YKL112W", "ABF1", "Abf1", " abf1 "):
        assert m.map(x) == "YKL112W", x
    only_verified = read_sgd_features(yeast_dir / "genes" / "SGD_features.tab", ["Verified"])
    assert len(only_verified.genes) == 5093 + 4  # incl. Verified|silenced_gene


def test_mapper_reasons_and_dict_roundtrip(tmp_path):
    p = tmp_path / "sgd.tab"
    p.write_text("\n".join([
        _row("YAL001C", std="TFC3", aliases="FUN24|SHARED"),
        _row("YAL002W", std="VPS8", aliases="SHARED"),
        _row("YAL003W", qual="Dubious", std="EFB1"),
        _row("X", ftype="tRNA_gene"),
    ]) + "\n")
    f = read_sgd_features(p, ["Verified"])
    assert f.genes == ["YAL001C", "YAL002W"] and f.skipped_qualifier == 1
    m = f.mapper()
    assert m.resolve("fun24") == ("YAL001C", "")
    assert m.resolve("SHARED") == (None, REASON_AMBIGUOUS)
    assert m.resolve("EFB1") == (None, REASON_NOT_IN_GENES)
    assert m.resolve("YAL003W") == (None, REASON_NOT_IN_GENES)
    assert m.resolve("nope") == (None, REASON_UNKNOWN)
    m2 = GeneMapper.from_dict(m.to_dict())
    for x in ("fun24", "SHARED", "EFB1", "nope", "4932.yal002w"):
        assert m2.resolve(x) == m.resolve(x)
    assert m.indices(["TFC3", "x"]) == [0, -1]


def test_sgd_bad_rows(tmp_path):
    p = tmp_path / "sgd.tab"
    p.write_text(_row("YAL001C") + "\nS2\tORF\tVerified\n")
    with pytest.raises(DataError, match=r"sgd.tab:2: .*truncated"):
        read_sgd_features(p)
    p.write_text(_row("YAL001C") + "\n" + _row("YAL001C") + "\n")
    with pytest.raises(DataError, match=r":2: .*listed twice"):
        read_sgd_features(p)
    with pytest.raises(DataError, match="not found"):
        read_sgd_features(tmp_path / "missing.tab")


def test_gene_list(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# genes\nYAL001C\n\nYAL002W extra\n")
    assert read_gene_list(p) == ["YAL001C", "YAL002W"]
    p.write_text("A\nB\nA\n")
    with pytest.raises(DataError, match=r"g.txt:3"):
        read_gene_list(p)


def test_unmapped_log_counts():
    log = UnmappedLog("src")
    log.add("a", REASON_UNKNOWN, 3)
    log.add("a", REASON_UNKNOWN, 9)
    log.add("b", REASON_AMBIGUOUS, 5)
    d = log.to_dict()
    assert d["identifiers"] == 2 and d["rows"] == 3
    assert d["items"][0] == {"id": "a", "rows": 2, "reason": REASON_UNKNOWN, "line": 3}
