"""Atomic writes: the old file survives a failed write, no temporary is left behind."""

from __future__ import annotations

import pytest

from cellgi.fileio import atomic_open, write_text_atomic


def test_text_and_bytes(tmp_path):
    write_text_atomic(tmp_path / "sub" / "a.txt", "héllo\n")
    assert (tmp_path / "sub" / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    with atomic_open(tmp_path / "b.bin") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a.txt"
    write_text_atomic(p, "old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(p, "w") as fh:
            fh.write("new, half written")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_only_whole_file_write_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_permissions_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
