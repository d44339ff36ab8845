"""Hostile YAML fails fast with a located error: alias bombs, self-referencing aliases, deep nesting,
oversized files. Timings are not asserted here (benchmarks hold timings); the checks run before any
expansion, so a bomb that would need 10^9 nodes is refused after visiting a few dozen."""

from __future__ import annotations

import pytest

from cellgi.spec.yamlio import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES, SpecSyntaxError, load_yaml, parse_yaml


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    text = "a: &a [" + ", ".join(['"lol"'] * width) + "]\n"
    prev = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]\n"
        prev = name
    return text


def test_alias_bomb_is_refused_with_line():
    with pytest.raises(SpecSyntaxError) as exc:
        parse_yaml(billion_laughs(), "bomb.yaml")
    assert exc.value.file == "bomb.yaml"
    assert "alias" in exc.value.message and str(MAX_NODES) in exc.value.message
    # the first level whose expansion passes the limit: 9**6 > 100000 on line 6
    assert exc.value.line == 6


def test_moderate_alias_reuse_still_works():
    loc = parse_yaml("base: &b {lr: 0.1, betas: [0.9, 0.99]}\nx: *b\ny: *b\n")
    assert loc.data["x"] == loc.data["y"] == {"lr": 0.1, "betas": [0.9, 0.99]}
    assert loc.lines[("y",)] == 3


@pytest.mark.parametrize("text", ["a: &x\n  b: *x\n", "a: &x [1, *x]\n"])
def test_self_referencing_alias_is_refused(text):
    with pytest.raises(SpecSyntaxError, match="refers to itself") as exc:
        parse_yaml(text, "rec.yaml")
    assert exc.value.line == 1


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,  # flow style: PyYAML's composer would hit RecursionError
        "\n".join("  " * i + f"k{i}:" for i in range(MAX_DEPTH + 5)) + " 1\n",  # block style
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_is_a_located_error_not_recursion_error(text):
    with pytest.raises(SpecSyntaxError, match=f"deeper than {MAX_DEPTH}") as exc:
        parse_yaml(text, "deep.yaml")
    assert exc.value.line >= 1


def test_nesting_at_the_limit_is_accepted():
    text = "\n".join("  " * i + f"k{i}:" for i in range(MAX_DEPTH)) + " 1\n"
    assert parse_yaml(text).data is not None


def test_oversized_text_is_refused():
    with pytest.raises(SpecSyntaxError, match="limited to"):
        parse_yaml("x: " + "a" * MAX_SPEC_BYTES, "big.yaml")


def test_oversized_file_is_refused_without_reading_it_all(tmp_path):
    p = tmp_path / "big.yaml"
    with p.open("wb") as fh:  # a sparse 40 MB file: only its size matters
        fh.truncate(40 * 1024 * 1024)
    with pytest.raises(SpecSyntaxError, match="41,943,040 bytes") as exc:
        load_yaml(p)
    assert exc.value.file == str(p)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SpecSyntaxError, match="is a folder"):
        load_yaml(tmp_path)
