"""Building blocks of spec models: strict base model and registry-backed component slots."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from cellgi.registry import ComponentEntry, get_registry
from cellgi.registry.core import check_float32_range

__all__ = ["ComponentSlot", "StrictModel", "component", "data_format", "resolve_model", "resolve_type"]


class StrictModel(BaseModel):
    """Base of every spec section: unknown keys refused, no coercion of '2' into 2, every float within the
    float32 range (the values live in float32 tensors)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _float32_range(cls, value: Any) -> Any:
        return check_float32_range(value)


@dataclass(frozen=True)
class ComponentSlot:
    """Marks a field whose value is ``{type: <registered name>, ...params}`` of one role.

    ``key``/``base`` (data formats): the tag key (``format``) and a model of fields shared by every
    member, which each member's params extend.
    """

    role: str
    key: str = "type"
    base: type[BaseModel] | None = None


def component(role: str) -> Any:
    """Annotation for a component field of ``role``; resolved into a tagged union by :func:`resolve_model`."""
    get_registry(role)  # fail early on a typo in the role
    return Annotated[dict, ComponentSlot(role)]


def data_format(role: str, base: type[BaseModel]) -> Any:
    """Annotation for a ``{format: <registered name>, ...base fields, ...params}`` entry of ``role``
    (``graph_format``, ``screen_format``); resolved like :func:`component` after plugin discovery."""
    get_registry(role)
    return Annotated[dict, ComponentSlot(role, "format", base)]


_FORMAT_MODELS: dict[tuple[str, str, type, type], type[BaseModel]] = {}


def _format_model(entry: ComponentEntry, base: type[BaseModel]) -> type[BaseModel]:
    """``base`` fields + the member's params + ``format: Literal[name]`` (params may override a base
    field's default, e.g. ``directed: true`` for a regulatory graph)."""
    key = (entry.role, entry.name, entry.params, base)
    if key not in _FORMAT_MODELS:
        camel = "".join(p.capitalize() for p in entry.name.replace("-", "_").split("_"))
        _FORMAT_MODELS[key] = create_model(
            f"{camel}{base.__name__.strip('_').removesuffix('Base').removesuffix('Entry')}Spec",
            __base__=(entry.params, base),
            __module__=base.__module__,
            format=(Literal[entry.name], Field(description=f"{entry.role}: {entry.summary}")),  # type: ignore[valid-type]
        )
    return _FORMAT_MODELS[key]


def _union_for(slot: ComponentSlot, names: set[str] | None) -> Any:
    """Tagged union over the loaded members of the slot's role (plus plugin ``names`` the spec mentions)."""
    role = slot.role
    reg = get_registry(role)
    if names:
        for n in sorted(names):
            if n in reg.names():
                reg.get(n)  # imports the plugin; a broken one raises PluginLoadError
    entries: list[ComponentEntry] = sorted(reg.loaded().values(), key=lambda e: e.name)
    if slot.base is not None:
        tagged = [_format_model(e, slot.base) for e in entries if e.factory is not None]
    else:
        tagged = [e.tagged for e in entries if e.tagged is not None]
    if not tagged:
        raise RuntimeError(f"no {role} is registered")
    if len(tagged) == 1:
        return tagged[0]
    return Annotated[Union[tuple(tagged)], Field(discriminator=slot.key)]  # type: ignore[return-value]


def _subst(tp: Any, names: set[str] | None, cache: dict) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        slots = [m for m in meta if isinstance(m, ComponentSlot)]
        if slots:
            return _union_for(slots[0], names), True
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
            new, changed = _union_for(slot, names), True
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


def resolve_type(tp: Any, names: set[str] | None = None) -> Any:
    """A type annotation (e.g. ``ScreenSpec``) with its component slots resolved, for a ``TypeAdapter``."""
    return _subst(tp, names, {})[0]
