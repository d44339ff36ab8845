"""Building blocks of spec models: strict base model and registry-backed component slots."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from cellgi.registry import ComponentEntry, get_registry

__all__ = ["ComponentSlot", "StrictModel", "component", "resolve_model"]


class StrictModel(BaseModel):
    """Base of every spec section: unknown keys refused, no coercion of '2' into 2."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class ComponentSlot:
    """Marks a field whose value is ``{type: <registered name>, ...params}`` of one role."""

    role: str


def component(role: str) -> Any:
    """Annotation for a component field of ``role``; resolved into a tagged union by :func:`resolve_model`."""
    get_registry(role)  # fail early on a typo in the role
    return Annotated[dict, ComponentSlot(role)]


def _union_for(role: str, names: set[str] | None) -> Any:
    """Tagged union over the loaded members of ``role`` (plus plugin ``names`` the spec mentions)."""
    reg = get_registry(role)
    if names:
        for n in sorted(names):
            if n in reg.names():
                reg.get(n)  # imports the plugin; a broken one raises PluginLoadError
    entries: list[ComponentEntry] = sorted(reg.loaded().values(), key=lambda e: e.name)
    tagged = [e.tagged for e in entries if e.tagged is not None]
    if not tagged:
        raise RuntimeError(f"no {role} is registered")
    if len(tagged) == 1:
        return tagged[0]
    return Annotated[Union[tuple(tagged)], Field(discriminator="type")]  # type: ignore[return-value]


def _subst(tp: Any, names: set[str] | None, cache: dict) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        slots = [m for m in meta if isinstance(m, ComponentSlot)]
        if slots:
            return _union_for(slots[0].role, names), True
        new, changed = _subst(base, names, cache)
        return (Annotated[tuple([new, *meta])] if changed else tp), changed  # type: ignore[misc]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        new = _resolve(tp, names, cache)
        return new, new is not tp
    if origin in (Union, types.UnionType):
        parts = [_subst(a, names, cache) for a in get_args(tp)]
        if any(c for _, c in parts):
            return Union[tuple(p for p, _ in parts)], True  # type: ignore[return-value]
        return tp, False
    if origin in (list, dict, tuple, set, frozenset):
        parts = [_subst(a, names, cache) for a in get_args(tp)]
        if any(c for _, c in parts):
            return origin[tuple(p for p, _ in parts)], True
        return tp, False
    return tp, False


def _resolve(cls: type[BaseModel], names: set[str] | None, cache: dict) -> type[BaseModel]:
    if cls in cache:
        return cache[cls]
    overrides: dict[str, Any] = {}
    for fname, finfo in cls.model_fields.items():
        ann = finfo.annotation
        # pydantic strips Annotated metadata into finfo.metadata; put it back for the walk
        if any(isinstance(m, ComponentSlot) for m in finfo.metadata):
            slot = next(m for m in finfo.metadata if isinstance(m, ComponentSlot))
            new, changed = _union_for(slot.role, names), True
        else:
            new, changed = _subst(ann, names, cache)
        if changed:
            kept = typing.cast(Any, finfo)
            factory = kept.default_factory
            if isinstance(factory, type) and issubclass(factory, BaseModel):
                # a default instance of the unresolved class would fail strict validation
                factory = dict
            if factory is not None:
                fld = Field(default_factory=factory, description=kept.description, validate_default=True)
            else:
                fld = Field(default=kept.default, description=kept.description, validate_default=True)
            overrides[fname] = (new, fld)
    if not overrides:
        cache[cls] = cls
        return cls
    new_cls = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **overrides)
    new_cls.__doc__ = cls.__doc__
    cache[cls] = new_cls
    return new_cls


def resolve_model(cls: type[BaseModel], names: set[str] | None = None) -> type[BaseModel]:
    """A copy of ``cls`` whose component slots are tagged unions over the registered members.

    ``names`` are component names the spec mentions: plugins providing them are imported first, so
    that they are valid tags; other plugins stay unimported.
    """
    return _resolve(cls, names, {})
