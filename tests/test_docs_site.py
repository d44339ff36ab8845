"""The documentation site: ``mkdocs build --strict`` passes (a broken link or API reference fails), and
every ``docs/<page>.md`` that a help text or error message names is a page of the site."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC_REF = re.compile(r"docs/([A-Za-z0-9_./-]+\.md)(?:#([A-Za-z0-9_-]+))?")


def _need_mkdocs() -> None:
    """CI (CELLGI_REQUIRE_REAL_DATA=1) must build the site; elsewhere a missing mkdocs skips."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        if os.environ.get("CELLGI_REQUIRE_REAL_DATA") == "1":
            pytest.fail("mkdocs and mkdocstrings-python are not installed (pip install -e '.[docs]')")
        pytest.skip("mkdocs not installed (pip install -e '.[docs]')")


def _nav_pages() -> set[str]:
    class _Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may use !!python/name tags in plugin options; the nav needs none of them
    _Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    cfg = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=_Loader)
    pages: set[str] = set()

    def walk(item: object) -> None:
        if isinstance(item, str):
            pages.add(item)
        elif isinstance(item, list):
            for x in item:
                walk(x)
        elif isinstance(item, dict):
            for v in item.values():
                walk(v)

    walk(cfg["nav"])
    return pages


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (its default slugify)."""
    # markup goes (emphasis marks, backticks, brackets); underscores inside code spans stay, as in the site
    text = re.sub(r"`([^`]*)`", lambda m: m.group(1).replace("*", "\0"), heading)
    text = re.sub(r"(?<![\w\0])_+|_+(?![\w\0])|[*\[\]()]", "", text).replace("\0", "*")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    out, fence = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            out.add(_slug(line.lstrip("#").strip()))
    return out


def test_every_doc_page_is_in_the_nav():
    pages = _nav_pages()
    on_disk = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert on_disk - pages == set(), "pages missing from mkdocs.yml's nav"
    assert pages - on_disk == set(), "nav entries without a page"


def test_pages_named_by_help_and_errors_exist():
    """Help texts and error messages name docs/<page>.md[#anchor]: each must be a page of the site."""
    pages = _nav_pages()
    found = 0
    for src in sorted((REPO / "cellgi").rglob("*.py")):
        for m in DOC_REF.finditer(src.read_text()):
            page, anchor = m.group(1), m.group(2)
            where = f"{src.relative_to(REPO)}: docs/{page}"
            assert page in pages, f"{where} is not a page of the site (mkdocs.yml nav)"
            if anchor:
                assert anchor in _anchors(REPO / "docs" / page), f"{where}#{anchor}: no such heading"
            found += 1
    assert found >= 5


def test_slug_matches_markdown():
    assert _slug("Composed specs: `extends` and `include`") == "composed-specs-extends-and-include"
    assert _slug("Where the data comes from") == "where-the-data-comes-from"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    _need_mkdocs()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # no -q: a quiet build does not count warnings
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()
    html = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    assert "cellgi.api.load" in html  # the reference was generated from the docstrings
