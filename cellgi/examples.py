"""The example specs shipped with cellgi (``configs/`` of the repository, ``cellgi/configs/`` in a wheel).

``cellgi spec example`` lists them, ``cellgi spec example NAME -o FILE`` writes one, and
``cellgi train NAME`` accepts a shipped name where a spec path is expected.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from cellgi.errors import CellgiError

__all__ = ["Example", "UnknownExampleError", "example_path", "examples_dir", "list_examples", "resolve_spec_path"]


class UnknownExampleError(CellgiError, LookupError):
    """Neither a spec file nor a shipped example name."""

    exit_code = 2


def examples_dir() -> Path:
    """Folder of the shipped specs: ``cellgi/configs`` in an installed wheel, ``configs/`` in a checkout."""
    pkg = Path(__file__).resolve().parent
    for cand in (pkg / "configs", pkg.parent / "configs"):
        if cand.is_dir() and any(cand.glob("*.yaml")):
            return cand
    return pkg / "configs"


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    summary: str


def _summary(path: Path) -> str:
    """The first sentence of a spec file's leading comment (its one-line description)."""
    words: list[str] = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if not s.startswith("#"):
                break
            text = s.lstrip("#").strip()
            if not text:
                if words:
                    break
                continue
            words.append(text)
    except OSError:
        return ""
    para = " ".join(words)
    # the first sentence; "et al." and "S. cerevisiae" do not end one
    first = re.split(r"(?<=[a-z0-9)]{3}\.)\s+(?=[A-Z])", para, maxsplit=1)[0]
    return first if len(first) <= 120 else first[:117].rstrip() + "..."


def list_examples() -> list[Example]:
    """Every shipped spec, sorted by name."""
    return [Example(p.stem, p, _summary(p)) for p in sorted(examples_dir().glob("*.yaml"))]


def example_path(name: str) -> Path:
    """Path of the shipped spec ``name`` (``quickstart`` or ``quickstart.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    p = examples_dir() / f"{stem}.yaml"
    if p.is_file():
        return p
    names = [e.name for e in list_examples()]
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownExampleError(f"no shipped example spec {name!r}{hint} (shipped: {', '.join(names) or 'none'})")


def resolve_spec_path(arg: str | Path) -> Path:
    """``arg`` itself when it is a file, else the shipped example of that name.

    Raises :class:`UnknownExampleError` (a ``LookupError``) saying that neither exists.
    """
    p = Path(arg)
    if p.is_file():
        return p
    text = str(arg)
    if "/" not in text and "\\" not in text:
        try:
            return example_path(text)
        except UnknownExampleError as exc:
            raise UnknownExampleError(f"spec file {text!r} not found, and {exc}") from None
    raise UnknownExampleError(
        f"spec file {text!r} not found (shipped example names: {', '.join(e.name for e in list_examples())})"
    )
