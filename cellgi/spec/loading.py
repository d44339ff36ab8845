"""Reading a spec: YAML text or a file (``extends``/``include`` composed first, :mod:`cellgi.spec.compose`),
command-line overrides applied (:mod:`cellgi.spec.overrides`), then validated
(:func:`~cellgi.spec.validation.validate_spec`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cellgi.spec.compose import compose, load_composed
from cellgi.spec.errors import SpecError, SpecIssue
from cellgi.spec.overrides import Override, validate_with_overrides
from cellgi.spec.validation import Spec, SpecCheck, validate_spec
from cellgi.spec.yamlio import SpecSyntaxError, parse_yaml

__all__ = ["load_spec", "parse_spec"]


def parse_spec(
    text: str, file: str = "<string>", *, base_dir: str | Path | None = None, overrides: Sequence[str | Override] = (),
    checks: Sequence[SpecCheck] = (),
) -> Spec:
    """Validate a spec given as YAML text (``overrides``: see :mod:`cellgi.spec.overrides`; ``checks``: see
    :func:`~cellgi.spec.validation.validate_spec`)."""
    try:
        located = parse_yaml(text, file)
        located = compose(located, Path(base_dir) if base_dir is not None else Path.cwd())
    except SpecSyntaxError as exc:
        raise SpecError([SpecIssue(exc.file, exc.line, "", exc.message)]) from None
    if overrides:
        return validate_with_overrides(located, overrides, base_dir=base_dir, checks=checks)
    return validate_spec(located.data, located, base_dir=base_dir, checks=checks)


def load_spec(path: str | Path, overrides: Sequence[str | Override] = (), *, notes: list[str] | None = None,
              checks: Sequence[SpecCheck] = ()) -> Spec:
    """Read and validate a spec file. Relative ``data.root`` is taken from the file's folder.

    ``overrides``: ``key.path=value`` strings applied before validation (:mod:`cellgi.spec.overrides`).
    ``extends``/``include`` keys are resolved first (:mod:`cellgi.spec.compose`). ``notes``: receives
    what overrides changed beyond their own key (see :func:`~cellgi.spec.overrides.validate_with_overrides`).
    ``checks``: see :func:`~cellgi.spec.validation.validate_spec`.
    """
    path = Path(path)
    try:
        located = load_composed(path)
    except SpecSyntaxError as exc:
        raise SpecError([SpecIssue(exc.file, exc.line, "", exc.message)]) from None
    if overrides:
        return validate_with_overrides(located, overrides, base_dir=path.parent, notes=notes, checks=checks)
    return validate_spec(located.data, located, base_dir=path.parent, checks=checks)
