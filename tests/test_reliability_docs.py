"""docs/reliability.md names a test for every case: each named test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _named_tests() -> list[tuple[str, str]]:
    """``(file, test)`` for every ``tests/x.py::name`` and every ``::name`` (same file as the previous)."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    out: list[tuple[str, str]] = []
    current = ""
    for m in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)`", text):
        current = m.group(1) or current
        out.append((current, m.group(2)))
    return out


def test_every_case_names_an_existing_test():
    named = _named_tests()
    assert len(named) >= 50
    missing = []
    for file, name in named:
        path = ROOT / file
        if not path.is_file() or not re.search(rf"^def {name}\(", path.read_text(encoding="utf-8"), re.M):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
