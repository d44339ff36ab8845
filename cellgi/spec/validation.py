"""The root :class:`Spec` and its validation: component slots resolved against the registries (plugins a spec
names are imported), pydantic errors turned into ``FILE:LINE: path: message`` issues, and checks of the
validated spec (:data:`SpecCheck`) that the caller passes in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence

from pydantic import Field, ValidationError, field_validator

from cellgi.errors import resolve_path
from cellgi.registry import ROLES, PluginLoadError, get_registry
from cellgi.spec.base import StrictModel, resolve_model
from cellgi.spec.data import DataSpec
from cellgi.spec.errors import SpecError, SpecIssue, issues_from_validation
from cellgi.spec.model import ModelSpec
from cellgi.spec.sweep import SweepSpec
from cellgi.spec.training import TrainingSpec, monitor_problems
from cellgi.spec.yamlio import Located

__all__ = ["Spec", "SpecCheck", "mentioned_types", "spec_json_schema", "spec_model", "validate_spec"]


class Spec(StrictModel):
    """A whole run: name, seed, data, model, training."""

    name: str = Field(description="run name; runs go to runs/<name>/<timestamp>/")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="global seed (model init, data order)")
    data: DataSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    sweep: SweepSpec | None = Field(None, description="search space of `cellgi sweep` (training ignores it)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("use letters, digits, '_', '-' or '.' (it names a folder)")
        return v


#: a check of a validated spec against the YAML it was read from (raises :class:`SpecError`), run by
#: :func:`validate_spec`; the checks that need more than the spec layer (building a model) live above it
SpecCheck = Callable[[Spec, Located], object]

_MODEL_CACHE: dict[tuple[int, ...], type[Spec]] = {}


def mentioned_types(data: Any) -> set[str]:
    """Every string value of a ``type`` (component) or ``format`` (data format) key in the document."""
    found: set[str] = set()
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key in ("type", "format"):
                t = cur.get(key)
                if isinstance(t, str):
                    found.add(t)
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return found


def spec_model(names: set[str] | None = None, *, all_plugins: bool = False) -> type[Spec]:
    """The :class:`Spec` class with component slots resolved against the registries.

    ``names``: component names mentioned by a spec (their plugins are imported); ``all_plugins``
    imports every installed plugin (for the JSON schema).
    """
    if all_plugins:
        for role in ROLES:
            get_registry(role).load_all()
    regs = [get_registry(r) for r in ROLES]
    mentioned = frozenset(n for n in (names or ()) if any(n in r.names() for r in regs))
    for r in regs:  # load mentioned plugins before computing the cache key
        for n in mentioned:
            if n in r.names():
                r.get(n)
    key = tuple(r.generation for r in regs)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = resolve_model(Spec, set(mentioned))  # type: ignore[assignment]
    return _MODEL_CACHE[key]


def validate_spec(data: Any, located: Located | None = None, *, base_dir: str | Path | None = None,
                  checks: Sequence[SpecCheck] = ()) -> Spec:
    """Validate parsed spec data; raise :class:`SpecError` with positions when ``located`` is given.

    ``checks``: run on the validated spec and ``located`` when the spec was read from YAML (checks a higher
    layer owns, such as :func:`cellgi.nn.memory.check_memory`, which builds small models).
    """
    file = located.file if located else "<spec>"
    if not isinstance(data, dict):
        raise SpecError([SpecIssue(file, 1, "", "a spec must be a mapping with data/model/training sections")])
    try:
        cls = spec_model(mentioned_types(data))
    except PluginLoadError as exc:
        loc = _find_type_loc(data, exc.name)
        line = located.line_of(loc) if located and loc is not None else 1
        if located is not None and loc is not None:
            file = located.file_of(loc)
        raise SpecError([SpecIssue(file, line, ".".join(map(str, loc or ())), str(exc))]) from None
    try:
        spec = cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, data, located)) from None
    if located is not None:  # a spec read from a file: e.g. sizes that cannot fit in memory fail here
        for check in checks:
            check(spec, located)
        problems = monitor_problems(spec)
        if problems:
            raise SpecError([SpecIssue(located.file, located.line_of(loc), ".".join(loc), msg,
                                       located.snippet(located.line_of(loc))) for loc, msg in problems])
    if base_dir is not None:
        root = resolve_path(base_dir, spec.data.root)
        if not Path(spec.data.root).is_absolute():  # relative (or ~), also from a spec in the current
            root = root.resolve()  # folder ('spec.yaml', whose parent is '.'): made absolute once, here
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"root": str(root)})})
    return spec


def _find_type_loc(data: Any, name: str, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    if isinstance(data, dict):
        for key in ("type", "format"):
            if data.get(key) == name:
                return loc + (key,)
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for k, v in items:
        found = _find_type_loc(v, name, loc + (k,))
        if found is not None:
            return found
    return None


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of the spec with every installed component (imports all plugins)."""
    return spec_model(all_plugins=True).model_json_schema()
