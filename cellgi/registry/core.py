"""The registry of one role: its members (built-in and from plugins), registration rules and building.

Built-in members are the entry points of the ``cellgi`` distribution itself (``pyproject.toml``,
``[project.entry-points."cellgi.convs"]`` and so on): they are imported the first time a registry is
used, through the same records as plugins (:mod:`cellgi.registry.records`), so this module imports no
layer above it. Plugin records are only read (metadata) until a spec names one of their components,
the listing asks, or :meth:`Registry.load_all` is called.
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from cellgi import __version__
from cellgi.registry import records as _records
from cellgi.registry.errors import (
    ComponentBuildError,
    ComponentError,
    DuplicateComponentError,
    PluginLoadError,
    UnknownComponentError,
)
from cellgi.registry.records import BUILTIN_DIST, PluginRecord
from cellgi.registry.roles import ROLES

__all__ = [
    "FLOAT32_MAX",
    "check_float32_range",
    "AUTOLOAD_ENV",
    "ComponentEntry",
    "NoParams",
    "ParamRow",
    "Params",
    "Registry",
    "build",
    "builtin_records",
    "get_registry",
    "installed_plugins",
    "register",
    "registries",
]

AUTOLOAD_ENV = "CELLGI_DISABLE_PLUGIN_AUTOLOAD"

_V = TypeVar("_V")
_F = TypeVar("_F", bound=Callable[..., object])


#: the largest magnitude of a float32: spec numbers end up in float32 tensors (weights, targets, the
#: optimiser's updates), so a larger one would become inf there
FLOAT32_MAX = 3.4028234663852886e38


def check_float32_range(value: _V) -> _V:
    """``value`` unchanged when every float in it (lists, tuples and mappings searched) has a magnitude
    of at most :data:`FLOAT32_MAX` and every integer fits an int64; else a ``ValueError`` (pydantic
    reports it at the field's key)."""
    if isinstance(value, float):
        if abs(value) > FLOAT32_MAX:
            raise ValueError(f"Input should be a finite number within the float32 range (|x| <= 3.4e+38), got {value:g}")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2**63:  # counts, sizes and seeds end up in int64 tensors or C integers
            raise ValueError(f"Input should be an integer within the int64 range (|x| < 2**63), got {value}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_float32_range(v)
    elif isinstance(value, dict):
        for v in value.values():
            check_float32_range(v)
    return value


class Params(BaseModel):
    """Base class of every component's params model: unknown keys refused, no silent coercion, every
    float within the float32 range."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _float32_range(cls, value: object) -> object:
        return check_float32_range(value)


class NoParams(Params):
    """Params of a component without parameters."""


class ParamRow(TypedDict):
    """One parameter of a component, as ``cellgi registry show`` lists it."""

    name: str
    type: str
    required: bool
    default: object
    description: str


@dataclass
class ComponentEntry:
    """One registered member of a role."""

    role: str
    name: str
    summary: str
    params: type[Params]
    factory: Callable[..., object] | None
    provider: str
    version: str
    module: str
    status: str = "ok"
    #: params model with ``type: Literal[name]`` added, used in the spec's tagged unions
    tagged: type[BaseModel] | None = field(default=None, repr=False)
    #: the capabilities of the role's contract as this member declares them (the role's default where it
    #: declares nothing), ``{flag: value}``; checked at registration
    capabilities: dict[str, bool] = field(default_factory=dict)

    @property
    def builtin(self) -> bool:
        return self.provider == BUILTIN_DIST

    def declares(self, flag: str) -> bool:
        """The member's declared value of the role's capability ``flag`` (what the model reads instead of
        guessing from attributes); a ``ComponentError`` when the role has no such capability."""
        if flag not in self.capabilities:
            known = ", ".join(c.flag for c in ROLES[self.role].contract.capabilities) or "none"
            raise ComponentError(f"the {self.role} role has no capability {flag!r} (its capabilities: {known})")
        return self.capabilities[flag]

    def build(self, params: Params | dict[str, object] | None = None, /, **context: object) -> Any:
        """Instantiate with validated params (a ``Params``, a dict, or ``None`` for defaults). The result
        is whatever the role's members are (typed ``Any``: this bottom layer knows no role's class)."""
        if self.factory is None:
            raise ComponentError(f"{self.role} {self.name!r} is {self.status}")
        if params is None:
            params = self.params()
        elif isinstance(params, dict):
            params = self.params.model_validate({k: v for k, v in params.items() if k != "type"})
        values = {k: getattr(params, k) for k in type(params).model_fields if k != "type"}
        clash = set(values) & set(context)
        if clash:
            raise ComponentError(
                f"{self.role} {self.name!r}: params {sorted(clash)} collide with structural "
                f"arguments the model passes"
            )
        try:
            obj = self.factory(**values, **context)
        except ComponentBuildError:
            raise
        except ValueError as exc:  # a value the params' types allow but the component cannot use
            raise ComponentBuildError(f"{self.role} {self.name!r}: {exc}") from exc
        problems = ROLES[self.role].contract.check_instance(self.capabilities, obj)
        if problems:
            raise ComponentError(
                f"{self.role} {self.name!r} from {self.provider} {self.version} (module {self.module}) breaks "
                f"the {self.role} contract: " + "; ".join(problems)
            )
        return obj

    def describe(self) -> list[ParamRow]:
        """Parameters as ``[{name, type, default, required, description}]``."""
        rows: list[ParamRow] = []
        for pname, finfo in self.params.model_fields.items():
            ann = finfo.annotation
            tname = ann.__name__ if isinstance(ann, type) else repr(ann).replace("typing.", "")
            rows.append(
                {
                    "name": pname,
                    "type": tname,
                    "required": finfo.is_required(),
                    "default": None if finfo.is_required() else finfo.get_default(call_default_factory=True),
                    "description": finfo.description or "",
                }
            )
        return rows


_loading_provider: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "cellgi_loading_provider", default=None
)


def _cellgi_version() -> str:
    return __version__


def _provider_of(module: str) -> tuple[str, str]:
    """Distribution (name, version) providing a module, for members registered outside a plugin load."""
    current = _loading_provider.get()
    if current is not None:
        return current
    root = module.split(".")[0]
    if root == "cellgi":
        return BUILTIN_DIST, _cellgi_version()
    try:
        dists = metadata.packages_distributions().get(root, [])
    except Exception:  # pragma: no cover - broken metadata in the environment
        dists = []
    if dists:
        try:
            return dists[0], metadata.version(dists[0])
        except metadata.PackageNotFoundError:
            return dists[0], "unknown"
    return f"<{root}>", "local"


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0", "false", "False")


class Registry:
    """The members of one role, built-in and from plugins."""

    def __init__(self, role: str):
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        self.role = role
        self.group, self.description, self.context, self.contract = ROLES[role]
        self._entries: dict[str, ComponentEntry] = {}
        self._pending: dict[str, PluginRecord] = {}
        self._broken: dict[str, ComponentEntry] = {}  # key: name, or name@dist for refused claims
        self._discovered = False
        self.generation = 0  # bumped whenever the set of loaded members changes

    # -- registration -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        factory: Callable[..., object],
        *,
        summary: str,
        params: type[Params],
        override: bool = False,
    ) -> ComponentEntry:
        """Register ``factory`` under ``name``.

        ``override=True`` replaces a member registered by the same or another *plugin*; a built-in
        (provider ``cellgi``) can never be replaced by anything else.
        """
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ComponentError(f"invalid {self.role} name {name!r}: use letters, digits, '_' or '-'")
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise ComponentError(f"{self.role} {name!r}: params must be a pydantic model class")
        if "type" in params.model_fields:
            raise ComponentError(f"{self.role} {name!r}: params may not define a 'type' field")
        _check_signature(self.role, name, factory, params)
        module = getattr(factory, "__module__", "?")
        provider, version = _provider_of(module)
        problems = self.contract.check(self.role, name, factory)
        if problems:
            raise ComponentError(
                f"{self.role} {name!r} from {provider} {version} (module {module}) breaks the {self.role} "
                f"contract: " + "; ".join(problems)
            )
        if provider != BUILTIN_DIST:
            _ensure_builtins()  # a plugin name is checked against every built-in, loaded or not yet
        existing = self._entries.get(name)
        if existing is not None:
            if existing.factory is factory:
                return existing  # the same object imported twice (e.g. module reload in tests)
            if existing.builtin and provider != BUILTIN_DIST:
                raise DuplicateComponentError(
                    f"{self.role} {name!r} is already registered by {existing.provider} {existing.version} "
                    f"(module {existing.module}); {provider} {version} (module {module}) tried to register "
                    f"it again. A built-in name can never be replaced: rename the plugin's component."
                )
            if not override:
                raise DuplicateComponentError(
                    f"{self.role} {name!r} is already registered by {existing.provider} {existing.version} "
                    f"(module {existing.module}); {provider} {version} (module {module}) tried to register "
                    f"it again. Rename one, or pass override=True to replace it on purpose."
                )
        if name in self._pending and self._pending[name].dist != provider:
            other = self._pending[name]
            raise DuplicateComponentError(
                f"{self.role} {name!r} is claimed by plugin {other.who} and by "
                f"{provider} {version} (module {module})"
            )
        self._pending.pop(name, None)  # a plugin registering its own discovered name
        tagged = create_model(
            f"{_camel(self.role)}{_camel(name)}Spec",
            __base__=params,
            __module__=params.__module__,
            type=(Literal[name], Field(description=f"{self.role}: {summary}")),  # type: ignore[valid-type, arg-type]
        )
        entry = ComponentEntry(
            role=self.role,
            name=name,
            summary=summary,
            params=params,
            factory=factory,
            provider=provider,
            version=version,
            module=module,
            tagged=tagged,
            capabilities=self.contract.declared(factory),
        )
        self._entries[name] = entry
        self.generation += 1
        return entry

    def remove(self, name: str) -> None:
        """Forget a member (tests and interactive use)."""
        self._entries.pop(name, None)
        self.generation += 1

    # -- discovery ----------------------------------------------------------------------------
    def discover(self, *, force: bool = False) -> None:
        """Read entry-point metadata for this role (imports no plugin; built-ins are imported)."""
        if self._discovered and not force:
            return
        _ensure_builtins()
        self._discovered = True
        if _autoload_disabled():
            return
        builtins = {n: f"{e.provider} {e.version}" for n, e in self._entries.items() if e.builtin}
        result = _records.classify(_records.find(self.group), builtins, self.role)
        for record, reason in result.refused:
            self._broken[record.name + "@" + record.dist] = self._broken_entry(record, reason)
        for name, record in result.accepted.items():
            if name not in self._entries:
                self._pending[name] = record

    def _broken_entry(self, record: PluginRecord, reason: str) -> ComponentEntry:
        return ComponentEntry(
            role=self.role,
            name=record.name,
            summary="",
            params=Params,
            factory=None,
            provider=record.dist,
            version=record.version,
            module=record.value,
            status=f"broken: {reason}",
        )

    def _load_pending(self, name: str) -> ComponentEntry:
        record = self._pending.pop(name)
        token = _loading_provider.set((record.dist, record.version))
        try:
            obj = _records.load(record)
            if name not in self._entries:
                _register_loaded_object(self, name, obj)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any plugin failure is reported, never swallowed
            cause = f"{type(exc).__name__}: {exc}"
            self._broken[name] = self._broken_entry(record, cause)
            raise PluginLoadError(self.role, name, record.dist, record.version, cause) from exc
        finally:
            _loading_provider.reset(token)
        entry = self._entries[name]
        if entry.provider != record.dist:
            raise PluginLoadError(
                self.role, name, record.dist, record.version,
                f"entry point {record.value!r} registered {name!r} under provider {entry.provider}",
            )
        return entry

    # -- queries ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name a spec may mention: loaded members, discovered plugins not imported yet, and
        plugins known to be broken or refused (their :meth:`get` raises :class:`PluginLoadError` naming
        the distribution and the cause, rather than an unknown-name error)."""
        self.discover()
        broken = {key.split("@")[0] for key in self._broken}
        return sorted(set(self._entries) | set(self._pending) | broken)

    def loaded(self) -> dict[str, ComponentEntry]:
        self.discover()
        return dict(self._entries)

    def get(self, name: str) -> ComponentEntry:
        """The member called ``name``, importing its plugin if needed."""
        self.discover()
        if name in self._entries:
            return self._entries[name]
        if name in self._pending:
            return self._load_pending(name)
        for key, b in self._broken.items():
            if key == name or key.split("@")[0] == name:
                raise PluginLoadError(self.role, name, b.provider, b.version, b.status.removeprefix("broken: "))
        raise UnknownComponentError(self.role, name, self.names())

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def load_all(self) -> list[ComponentEntry]:
        """Import every discovered plugin; broken ones are kept (status ``broken: ...``), not raised."""
        self.discover()
        for name in list(self._pending):
            if name not in self._pending:  # registered meanwhile by a sibling entry point's module
                continue
            try:
                self._load_pending(name)
            except PluginLoadError:
                pass
        return list(self._entries.values()) + list(self._broken.values())

    def build(self, spec: BaseModel | dict[str, object], /, **context: object) -> Any:
        """Build a member from a spec object or dict carrying ``type``."""
        if isinstance(spec, BaseModel):
            name = getattr(spec, "type", None)
        else:
            name = spec.get("type")
        if not isinstance(name, str):
            raise ComponentError(f"{self.role} spec has no 'type' naming the component")
        entry = self.get(name)
        if isinstance(spec, BaseModel) and not isinstance(spec, entry.params):
            spec = spec.model_dump()
        return entry.build(spec, **context)

    def __repr__(self) -> str:
        return f"Registry(role={self.role!r}, members={self.names()})"


def _camel(s: str) -> str:
    return "".join(part.capitalize() for part in s.replace("-", "_").split("_"))


def _check_signature(role: str, name: str, factory: Callable[..., object], params: type[BaseModel]) -> None:
    """Every params field must be accepted by the factory: nothing dropped silently."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if accepts_kwargs:
        return
    missing = [f for f in params.model_fields if f not in sig.parameters]
    if missing:
        raise ComponentError(
            f"{role} {name!r}: constructor does not accept params {missing} of {params.__name__}"
        )


def _register_loaded_object(reg: Registry, name: str, obj: object) -> None:
    """An entry point may point at a module (registering on import) or at a decorated class."""
    meta = getattr(obj, "__cellgi_component__", None)
    if meta is not None and meta["role"] == reg.role and meta["name"] == name and callable(obj):
        if name not in reg._entries:
            reg.add(name, obj, summary=meta["summary"], params=meta["params"])
        return
    raise ComponentError(
        f"entry point for {reg.role} {name!r} was imported but registered no {reg.role} named {name!r}"
    )


_REGISTRIES: dict[str, Registry] = {role: Registry(role) for role in ROLES}
_builtins_state = {"loaded": False, "loading": False}


def builtin_records() -> dict[str, list[PluginRecord]]:
    """role -> the ``cellgi`` distribution's own entry points (the built-in members)."""
    return {role: [r for r in _records.find(info.group) if r.builtin] for role, info in ROLES.items()}


def _ensure_builtins() -> None:
    """Import cellgi's own entry points (once). They are the built-ins: nothing is hard-coded here."""
    if _builtins_state["loaded"] or _builtins_state["loading"]:
        return
    _builtins_state["loading"] = True
    try:
        found = builtin_records()
        if not any(found.values()):
            raise ComponentError(
                "cellgi's own entry points are missing from its installed metadata, so no built-in "
                "component is known; install cellgi (pip install -e . in a checkout)"
            )
        for role, recs in found.items():
            reg = _REGISTRIES[role]
            for rec in recs:
                if rec.name in reg._entries:
                    continue
                obj = rec.entry_point.load()  # cellgi's own code: no guard needed
                _register_loaded_object(reg, rec.name, obj)
        _builtins_state["loaded"] = True
    finally:
        _builtins_state["loading"] = False


def get_registry(role: str) -> Registry:
    """The registry of one role (``conv``, ``aggregator``, ...)."""
    try:
        return _REGISTRIES[role]
    except KeyError:
        raise UnknownComponentError("role", role, list(_REGISTRIES)) from None


def registries() -> dict[str, Registry]:
    """All registries by role."""
    return dict(_REGISTRIES)


def register(
    role: str,
    name: str,
    *,
    summary: str,
    params: type[Params] = NoParams,
    override: bool = False,
) -> Callable[[_F], _F]:
    """Class/function decorator registering a component under ``name`` in ``role``."""

    def deco(obj: _F) -> _F:
        setattr(obj, "__cellgi_component__", {"role": role, "name": name, "summary": summary, "params": params})
        get_registry(role).add(name, obj, summary=summary, params=params, override=override)
        return obj

    return deco


def build(role: str, spec: BaseModel | dict[str, object], /, **context: object) -> Any:
    """Shorthand for ``get_registry(role).build(spec, **context)``."""
    return get_registry(role).build(spec, **context)


def installed_plugins() -> list[tuple[str, str]]:
    """(distribution, version) of every distribution other than cellgi exposing cellgi entry points."""
    if _autoload_disabled():
        return []
    seen: dict[str, str] = {}
    for info in ROLES.values():
        for rec in _records.find(info.group):
            if not rec.builtin and rec.dist != "<unknown>":
                seen[rec.dist] = rec.version
    return sorted(seen.items())


def _reset_for_tests() -> None:  # pragma: no cover - used by the test-suite's plugin fixtures
    """Forget discovered plugins (not built-ins) so that a changed sys.path is rediscovered."""
    for reg in _REGISTRIES.values():
        for name in [n for n, e in reg._entries.items() if not e.builtin]:
            reg._entries.pop(name)
        reg._pending.clear()
        reg._broken.clear()
        reg._discovered = False
        reg.generation += 1
    importlib.invalidate_caches()
    sys.modules.pop("cellgi_test_plugin_probe", None)
