import pytest

from cellgi.data.build import build_data
from cellgi.data.cache import cache_key, read_cache, write_cache
from cellgi.spec import validate_spec


def _spec(tmp_path, **data):
    base = {"name": "t", "data": {"cache_dir": str(tmp_path / "cache"), **data}}
    return validate_spec(base, base_dir=tmp_path).data


def _files(tmp_path):
    (tmp_path / "g.txt").write_text("A B\nB C\nC D\nA D\nB D\n")
    rows = ["g1\tg2\tg3\teps"] + [f"{a}\t{b}\t{c}\t{i * 0.1}" for i, (a, b, c) in
                                   enumerate([("A", "B", ""), ("B", "C", ""), ("A", "C", "D"), ("C", "D", ""),
                                              ("A", "D", ""), ("B", "D", ""), ("A", "B", "C"), ("B", "C", "D"),
                                              ("A", "C", ""), ("B", "D", "A")])]
    (tmp_path / "s.tsv").write_text("\n".join(rows) + "\n")
    return {
        "genes": {"source": "union"},
        "graphs": [{"name": "p", "format": "edgelist", "path": "g.txt"}],
        "screens": [{"format": "table", "path": "s.tsv", "gene_columns": ["g1", "g2", "g3"],
                     "target_columns": {"gene_interaction": "eps"}}],
        "split": {"kind": "random", "fractions": [0.6, 0.2, 0.2]},
    }


def test_hit_rebuild_on_content_change_and_corruption(tmp_path):
    spec = _spec(tmp_path, **_files(tmp_path))
    first = build_data(spec, progress=False)
    assert not first.from_cache and first.cache_path.is_file()
    again = build_data(spec, progress=False)
    assert again.from_cache and again.cache_path == first.cache_path
    assert again.graph.genes == first.graph.genes == ["A", "B", "C", "D"]
    assert again.mapper.to_dict() == first.mapper.to_dict()
    # same size, same mtime is irrelevant: the content counts
    (tmp_path / "g.txt").write_text("A B\nB C\nC D\nA D\nB C\n")
    changed = build_data(spec, progress=False)
    assert not changed.from_cache and changed.cache_path != first.cache_path
    # corrupt entry: detected, deleted, rebuilt
    data = changed.cache_path.read_bytes()
    changed.cache_path.write_bytes(data[:-20] + b"x" * 20)
    rebuilt = build_data(spec, progress=False)
    assert not rebuilt.from_cache and rebuilt.graph.edge_types["p"].num_edges == changed.graph.edge_types["p"].num_edges
    assert build_data(spec, progress=False).from_cache
    # options that do not change the data share the entry; ones that do, do not
    assert build_data(_spec(tmp_path, **_files(tmp_path), batch_size=7), progress=False).from_cache


def test_truncated_file_and_no_temp_left(tmp_path):
    p = tmp_path / "c" / "x.pt"
    write_cache(p, {"a": 1})
    assert read_cache(p) == ({"a": 1}, "")
    p.write_bytes(p.read_bytes()[:30])
    obj, status = read_cache(p)
    assert obj is None and status.startswith("corrupt") and not p.exists()
    assert [f.name for f in (tmp_path / "c").iterdir()] == []


class Evil:
    """Not a tensor/str/number: must not be unpickled from a cache entry."""


def test_write_refuses_arbitrary_objects_on_load(tmp_path):
    p = tmp_path / "e.pt"
    write_cache(p, {"obj": Evil()})
    obj, status = read_cache(p)  # weights_only=True refuses to unpickle it
    assert obj is None and status.startswith("corrupt")


def test_key_depends_on_content_and_options(tmp_path):
    f = tmp_path / "a"
    f.write_text("x")
    k1 = cache_key({"a": 1}, [f])
    assert cache_key({"a": 2}, [f]) != k1
    f.write_text("y")
    assert cache_key({"a": 1}, [f]) != k1


def test_cache_off_writes_nothing(tmp_path):
    spec = _spec(tmp_path, **_files(tmp_path), cache=False)
    b = build_data(spec, progress=False)
    assert b.cache_path is None and not (tmp_path / "cache").exists()
    with pytest.raises(Exception):
        _spec(tmp_path, cache="no")


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import os

    target = tmp_path / "c" / "x.pt"

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_cache(target, {"a": 1})
    assert not target.exists() and list((tmp_path / "c").iterdir()) == []


def test_unwritable_cache_is_a_warning(tmp_path, monkeypatch):
    import cellgi.data.build as build_mod

    def fail(path, payload):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(build_mod, "write_cache", fail)
    b = build_data(_spec(tmp_path, **_files(tmp_path)), progress=False)
    assert b.cache_path is None and any("could not write the data cache" in w for w in b.report.warnings)
