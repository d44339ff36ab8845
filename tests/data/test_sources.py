"""Data sources by name: listing, pinned checksums, spec blocks, and downloads from a local HTTP server
(127.0.0.1): a good file, a wrong checksum, a cut connection that resumes, a 404, archives."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest
import yaml

from cellgi.cli.main import main
from cellgi.data.fetch import DataSourceError, fetch, sha256_of
from cellgi.data.sources import BUILTIN_SOURCES, DataSource, get_source, list_sources
from cellgi.registry import UnknownComponentError, get_registry
from cellgi.spec import validate_spec

PAYLOAD = b"YAL001C YBR123C\nYAL001C YDR362C\n" * 4000  # 128 kB


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: set[str] = set()  # paths whose first response stops half-way
    ranges: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head: bool = False):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            self.ranges.append(rng)
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if head:
            return
        if self.path in self.cut:
            self.cut.discard(self.path)
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-transfer
            return
        self.wfile.write(part)


@pytest.fixture
def server():
    _Handler.files, _Handler.cut, _Handler.ranges = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def source_factory():
    """Register throw-away sources (removed afterwards) the way a plugin would."""
    reg = get_registry("data_source")
    added: list[str] = []

    def make(name: str, **attrs):
        cls = type(name, (DataSource,), attrs)
        cls.__cellgi_component__ = {"role": "data_source", "name": name, "summary": "test", "params": None}
        from cellgi.registry import NoParams

        cls.__cellgi_component__["params"] = NoParams
        reg.add(name, cls, summary="test source", params=NoParams)
        added.append(name)
        return get_source(name)

    yield make
    for n in added:
        reg.remove(n)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_every_builtin_is_listed_with_its_fields():
    names = [s.name for s in list_sources()]
    assert set(BUILTIN_SOURCES) <= set(names)
    for s in list_sources():
        if s.name not in BUILTIN_SOURCES:
            continue
        assert s.url.startswith(("http://", "https://")) and s.path and s.licence and s.layout
        assert (s.sha256 is None) == (s.size is None), s.name  # a size only where the file was measured
        assert s.spec_block or s.note, f"{s.name}: no spec block and no note saying what to do"
        for dep in s.needs:
            get_source(dep)


def test_pinned_checksums_are_those_of_the_shared_files(yeast_dir):
    """A pinned checksum was computed from the very file: the project's copy has it, byte for byte."""
    pinned = [s for s in list_sources() if s.name in BUILTIN_SOURCES and s.pinned]
    assert {s.name for s in pinned} == {"string_v11_actions", "string_v9_genes", "krogan2006_physical",
                                        "hu2007_coexpression"}
    for s in pinned:
        f = yeast_dir / s.path
        assert sha256_of(f) == s.sha256, s.name
        assert f.stat().st_size == s.size, s.name


@pytest.mark.parametrize("name", [n for n in BUILTIN_SOURCES if get_source(n).spec_block])
def test_spec_blocks_validate(name, tmp_path):
    block = yaml.safe_load(get_source(name).spec_block)
    data = {"root": str(tmp_path), **block}  # the source's block, completed with minimal other parts
    data.setdefault("graphs", [{"name": "g", "format": "edgelist", "path": "g.txt"}])
    data.setdefault("screens", [{"format": "kuzmin", "path": "s.tsv"}])
    spec = validate_spec({"name": "x", "data": data})
    assert spec.data.root == str(tmp_path)


def test_download_verifies_pinned_checksum_and_is_kept(server, source_factory, tmp_path, capsys):
    url, h = server
    h.files["/genes.txt"] = PAYLOAD
    src = source_factory("t_good", url=f"{url}/genes.txt", path="networks/x/genes.txt", sha256=_sha(PAYLOAD),
                         size=len(PAYLOAD), licence="MIT", layout="ORF ORF", spec_block="graphs: []")
    res = fetch(src, folder=tmp_path, progressbar=False)
    assert res.path == tmp_path / "networks/x/genes.txt" and res.path.read_bytes() == PAYLOAD
    assert res.downloaded and res.sha256 == _sha(PAYLOAD)
    again = fetch("t_good", folder=tmp_path, progressbar=False)
    assert not again.downloaded
    # the CLI prints the path, the checksum and the spec block
    assert main(["data", "get", "t_good", "--dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(res.path) in out and "matches the pinned checksum" in out and "graphs: []" in out


def test_unpinned_download_prints_the_hash_it_found(server, source_factory, tmp_path, capsys):
    url, h = server
    h.files["/f.txt"] = b"hello\n"
    source_factory("t_unpinned", url=f"{url}/f.txt", path="f.txt", licence="x", layout="y", note="n")
    assert main(["data", "get", "t_unpinned", "--dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert _sha(b"hello\n") in out and "not pinned" in out


def test_wrong_checksum_keeps_nothing(server, source_factory, tmp_path, capsys):
    url, h = server
    h.files["/f.txt"] = PAYLOAD
    source_factory("t_bad", url=f"{url}/f.txt", path="d/f.txt", sha256=_sha(b"something else"), size=14,
                   licence="x", layout="y", spec_block=None, note="n")
    with pytest.raises(DataSourceError, match="does not have the pinned checksum"):
        fetch("t_bad", folder=tmp_path, progressbar=False)
    assert not (tmp_path / "d" / "f.txt").exists()
    assert not any(p.is_file() for p in (tmp_path / "d").iterdir())  # no partial file left either
    assert main(["data", "get", "t_bad", "--dir", str(tmp_path), "--no-progress"]) == 1
    assert "pinned checksum" in capsys.readouterr().err


def test_cut_connection_resumes(server, source_factory, tmp_path):
    url, h = server
    h.files["/big.txt"] = PAYLOAD
    h.cut.add("/big.txt")
    source_factory("t_cut", url=f"{url}/big.txt", path="big.txt", sha256=_sha(PAYLOAD), size=len(PAYLOAD),
                   licence="x", layout="y", spec_block=None, note="n")
    with pytest.raises(DataSourceError, match="interrupted after .* run the same command again to resume"):
        fetch("t_cut", folder=tmp_path, progressbar=False)
    part = tmp_path / "big.txt.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    have = part.stat().st_size
    res = fetch("t_cut", folder=tmp_path, progressbar=False)
    assert res.path.read_bytes() == PAYLOAD and not part.exists()
    assert h.ranges == [f"bytes={have}-"]  # only the rest was asked for


def test_404_is_reported(server, source_factory, tmp_path, capsys):
    url, _ = server
    source_factory("t_missing", url=f"{url}/nothing.txt", path="n.txt", licence="x", layout="y", note="n")
    with pytest.raises(DataSourceError, match="HTTP 404"):
        fetch("t_missing", folder=tmp_path, progressbar=False)
    assert main(["data", "get", "t_missing", "--dir", str(tmp_path), "--no-progress"]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_archives_keep_their_member(server, source_factory, tmp_path):
    url, h = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/a.txt", b"A\n")
        zf.writestr("b.txt", b"B\n")
    h.files["/x.zip"] = buf.getvalue()
    gz = gzip.compress(PAYLOAD, mtime=0)  # one archive, byte for byte (gzip stamps the time otherwise)
    h.files["/y.gz"] = gz
    source_factory("t_zip", url=f"{url}/x.zip", path="z/a.txt", archive="zip:a.txt", licence="x", layout="y", note="n")
    source_factory("t_gz", url=f"{url}/y.gz", path="g/y.txt", archive="gzip", sha256=_sha(gz),
                   size=1, licence="x", layout="y", note="n")
    source_factory("t_nomember", url=f"{url}/x.zip", path="z/c.txt", archive="zip:c.txt", licence="x", layout="y",
                   note="n")
    assert fetch("t_zip", folder=tmp_path, progressbar=False).path.read_bytes() == b"A\n"
    assert fetch("t_gz", folder=tmp_path, progressbar=False).path.read_bytes() == PAYLOAD
    with pytest.raises(DataSourceError, match=r"no member c.txt \(it has: inner/a.txt, b.txt\)"):
        fetch("t_nomember", folder=tmp_path, progressbar=False)


def test_local_file_and_data_dir_env(server, source_factory, tmp_path, monkeypatch, capsys):
    url, _ = server
    src_file = tmp_path / "manual.txt"
    src_file.write_bytes(PAYLOAD)
    source_factory("t_manual", url=f"{url}/refused", path="m/manual.txt", sha256=_sha(PAYLOAD), size=len(PAYLOAD),
                   licence="x", layout="y", note="n")
    monkeypatch.setenv("CELLGI_DATA_DIR", str(tmp_path / "cache"))
    assert main(["data", "get", "t_manual", "--file", str(src_file), "--no-progress"]) == 0
    assert (tmp_path / "cache" / "m" / "manual.txt").read_bytes() == PAYLOAD
    capsys.readouterr()
    bad = tmp_path / "other.txt"
    bad.write_bytes(b"no")
    assert main(["data", "get", "t_manual", "--file", str(bad), "--force", "--no-progress"]) == 1
    assert "expected" in capsys.readouterr().err


def test_list_and_unknown_names(capsys):
    assert main(["data", "list", "kuzmin*"]) == 0
    out = capsys.readouterr().out
    assert "kuzmin2018" in out and "kuzmin2020" in out and "not pinned" in out and "string" not in out
    assert main(["data", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= set(BUILTIN_SOURCES)
    assert main(["data", "get", "kuzmin2019"]) == 2
    assert "kuzmin2018" in capsys.readouterr().err  # did-you-mean
    with pytest.raises(UnknownComponentError):
        get_source("nope")
