"""Component registries: one per role, with entry-point plugin discovery.

Every pluggable part of cellgi (message-passing convs, graph aggregators, predictor heads, poolings,
combiners, losses) is registered under a short name in the registry of its *role*. A member
registers with a one-line summary and a pydantic params model; the params model is the only source
of the member's constructor arguments (besides the structural context the model assembly passes, such
as ``dim`` and ``num_graphs``, which each role documents).

Third-party packages add members through entry points, one group per role (``cellgi.convs``,
``cellgi.aggregators``, ...). Discovery reads distribution metadata only; a plugin module is imported
when a spec names one of its components, when the listing asks, or when :meth:`Registry.load_all`
is called. Setting ``CELLGI_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point discovery off.

Example (inside a plugin module)::

    from cellgi.registry import Params, register

    class TopKParams(Params):
        k: int = Field(2, ge=1, description="graphs kept per node")

    @register("aggregator", "topk", summary="keep the k best-scoring graphs per node", params=TopKParams)
    class TopK(GraphAggregator):
        def __init__(self, k: int = 2, *, dim: int, num_graphs: int): ...
"""

from __future__ import annotations

import contextvars
import difflib
import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = [
    "AUTOLOAD_ENV",
    "ROLES",
    "ComponentEntry",
    "ComponentError",
    "DuplicateComponentError",
    "Params",
    "PluginLoadError",
    "Registry",
    "UnknownComponentError",
    "build",
    "get_registry",
    "register",
    "registries",
]

AUTOLOAD_ENV = "CELLGI_DISABLE_PLUGIN_AUTOLOAD"

#: role -> (entry-point group, one-line description, structural context passed by the assembler)
ROLES: dict[str, tuple[str, str, str]] = {
    "conv": (
        "cellgi.convs",
        "message-passing layer over one gene graph (batched over samples)",
        "in_dim, out_dim",
    ),
    "aggregator": (
        "cellgi.aggregators",
        "combines the per-graph outputs of one layer into one gene state",
        "dim, num_graphs",
    ),
    "pooling": (
        "cellgi.poolings",
        "pools gene states of a (perturbed) cell into one vector",
        "dim",
    ),
    "local_predictor": (
        "cellgi.local_predictors",
        "predicts the interaction from the perturbed genes' embeddings (hypergraph head)",
        "dim, num_targets",
    ),
    "global_predictor": (
        "cellgi.global_predictors",
        "predicts the interaction from the pooled cell states z_w, z_i, z_p",
        "dim, num_targets",
    ),
    "combiner": (
        "cellgi.combiners",
        "combines the local and global predictions into the final one",
        "dim, num_targets",
    ),
    "loss": (
        "cellgi.losses",
        "training loss on (prediction, target, weight)",
        "(none)",
    ),
}

# Modules holding the built-in members; imported on first use of any registry.
_BUILTIN_MODULES = (
    "cellgi.nn.convs",
    "cellgi.nn.aggregators",
    "cellgi.nn.pooling",
    "cellgi.nn.heads",
    "cellgi.train.losses",
)


class Params(BaseModel):
    """Base class of every component's params model: unknown keys refused, no silent coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ComponentError(Exception):
    """Base class of registry errors."""


class UnknownComponentError(ComponentError, KeyError):
    """A name that no registry member or installed plugin provides."""

    def __init__(self, role: str, name: str, valid: list[str]):
        self.role, self.name, self.valid = role, name, valid
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown {role} {name!r}{hint} (valid: {', '.join(sorted(valid)) or 'none'})"
        super().__init__(msg)
        self.message = msg

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class DuplicateComponentError(ComponentError):
    """Two providers claim the same name in one role."""


class PluginLoadError(ComponentError):
    """A plugin distribution failed to import or to register what its entry point promised."""

    def __init__(self, role: str, name: str, dist: str, version: str, cause: str):
        self.role, self.name, self.dist, self.version, self.cause = role, name, dist, version, cause
        super().__init__(
            f"plugin {dist} {version} failed to load {role} {name!r}: {cause}"
        )


@dataclass
class ComponentEntry:
    """One registered member of a role."""

    role: str
    name: str
    summary: str
    params: type[Params]
    factory: Callable[..., Any] | None
    provider: str
    version: str
    module: str
    status: str = "ok"
    #: params model with ``type: Literal[name]`` added, used in the spec's tagged unions
    tagged: type[BaseModel] | None = field(default=None, repr=False)

    def build(self, params: Params | dict[str, Any] | None = None, /, **context: Any) -> Any:
        """Instantiate with validated params (a ``Params``, a dict, or ``None`` for defaults)."""
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
        return self.factory(**values, **context)

    def describe(self) -> list[dict[str, Any]]:
        """Parameters as ``[{name, type, default, required, description}]``."""
        rows = []
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


@dataclass
class _PendingPlugin:
    name: str
    dist: str
    version: str
    entry_point: metadata.EntryPoint


_loading_provider: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "cellgi_loading_provider", default=None
)


def _cellgi_version() -> str:
    from cellgi import __version__

    return __version__


def _provider_of(module: str) -> tuple[str, str]:
    """Distribution (name, version) providing a module, for members registered outside a plugin load."""
    current = _loading_provider.get()
    if current is not None:
        return current
    root = module.split(".")[0]
    if root == "cellgi":
        return "cellgi", _cellgi_version()
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


class Registry:
    """The members of one role, built-in and from plugins."""

    def __init__(self, role: str):
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        self.role = role
        self.group, self.description, self.context = ROLES[role]
        self._entries: dict[str, ComponentEntry] = {}
        self._pending: dict[str, _PendingPlugin] = {}
        self._broken: dict[str, ComponentEntry] = {}
        self._discovered = False
        self.generation = 0  # bumped whenever the set of loaded members changes

    # -- registration -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        summary: str,
        params: type[Params],
        override: bool = False,
    ) -> ComponentEntry:
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ComponentError(f"invalid {self.role} name {name!r}: use letters, digits, '_' or '-'")
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise ComponentError(f"{self.role} {name!r}: params must be a pydantic model class")
        if "type" in params.model_fields:
            raise ComponentError(f"{self.role} {name!r}: params may not define a 'type' field")
        _check_signature(self.role, name, factory, params)
        module = getattr(factory, "__module__", "?")
        provider, version = _provider_of(module)
        existing = self._entries.get(name)
        if existing is not None and not override:
            if existing.factory is factory:
                return existing  # the same object imported twice (e.g. module reload in tests)
            raise DuplicateComponentError(
                f"{self.role} {name!r} is already registered by {existing.provider} {existing.version} "
                f"(module {existing.module}); {provider} {version} (module {module}) tried to register "
                f"it again. Rename one, or pass override=True to replace it on purpose."
            )
        if name in self._pending and self._pending[name].dist != provider:
            other = self._pending[name]
            raise DuplicateComponentError(
                f"{self.role} {name!r} is claimed by plugin {other.dist} {other.version} and by "
                f"{provider} {version} (module {module})"
            )
        self._pending.pop(name, None)  # a plugin registering its own discovered name
        tagged = create_model(
            f"{_camel(self.role)}{_camel(name)}Spec",
            __base__=params,
            __module__=params.__module__,
            type=(Literal[name], Field(description=f"{self.role}: {summary}")),  # type: ignore[valid-type]
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
        """Read entry-point metadata for this role (imports nothing)."""
        if self._discovered and not force:
            return
        _ensure_builtins()
        self._discovered = True
        if os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0", "false", "False"):
            return
        claims: dict[str, list[_PendingPlugin]] = {}
        for ep in _entry_points(self.group):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "<unknown>"
            version = ep.dist.version if ep.dist is not None else "unknown"
            claims.setdefault(ep.name, []).append(_PendingPlugin(ep.name, dist, version, ep))
        for name, plugins in claims.items():
            uniq = {p.dist: p for p in plugins}
            if name in self._entries and self._entries[name].provider not in uniq:
                builtin = self._entries[name]
                for p in uniq.values():
                    self._broken[name + "@" + p.dist] = self._broken_entry(
                        name,
                        p,
                        f"refused: name {name!r} is already provided by {builtin.provider} "
                        f"{builtin.version}; plugin {p.dist} {p.version} must use another name",
                    )
                continue
            if len(uniq) > 1:
                who = ", ".join(f"{p.dist} {p.version}" for p in uniq.values())
                for p in uniq.values():
                    self._broken[name + "@" + p.dist] = self._broken_entry(
                        name, p, f"refused: {self.role} {name!r} is provided by several plugins: {who}"
                    )
                continue
            if name not in self._entries:
                self._pending[name] = next(iter(uniq.values()))

    def _broken_entry(self, name: str, p: _PendingPlugin, reason: str) -> ComponentEntry:
        return ComponentEntry(
            role=self.role,
            name=name,
            summary="",
            params=Params,
            factory=None,
            provider=p.dist,
            version=p.version,
            module=p.entry_point.value,
            status=f"broken: {reason}",
        )

    def _load_pending(self, name: str) -> ComponentEntry:
        p = self._pending.pop(name)
        token = _loading_provider.set((p.dist, p.version))
        try:
            obj = p.entry_point.load()
            if name not in self._entries:
                _register_loaded_object(self, name, obj)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, never swallowed
            cause = f"{type(exc).__name__}: {exc}"
            self._broken[name] = self._broken_entry(name, p, cause)
            raise PluginLoadError(self.role, name, p.dist, p.version, cause) from exc
        finally:
            _loading_provider.reset(token)
        entry = self._entries[name]
        if entry.provider != p.dist:
            raise PluginLoadError(
                self.role, name, p.dist, p.version,
                f"entry point {p.entry_point.value!r} registered {name!r} under provider {entry.provider}",
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
        if name in self._broken:
            b = self._broken[name]
            raise PluginLoadError(self.role, name, b.provider, b.version, b.status.removeprefix("broken: "))
        for key, b in self._broken.items():
            if key.split("@")[0] == name:
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

    def build(self, spec: BaseModel | dict[str, Any], /, **context: Any) -> Any:
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


def _check_signature(role: str, name: str, factory: Callable[..., Any], params: type[BaseModel]) -> None:
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


def _register_loaded_object(reg: Registry, name: str, obj: Any) -> None:
    """An entry point may point at a module (registering on import) or at a decorated class."""
    meta = getattr(obj, "__cellgi_component__", None)
    if meta is not None and meta["role"] == reg.role and meta["name"] == name:
        if name not in reg._entries:
            reg.add(name, obj, summary=meta["summary"], params=meta["params"])
        return
    raise ComponentError(
        f"entry point for {reg.role} {name!r} was imported but registered no {reg.role} named {name!r}"
    )


def _entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=group)


_REGISTRIES: dict[str, Registry] = {role: Registry(role) for role in ROLES}
_builtins_state = {"loaded": False, "loading": False}


def _ensure_builtins() -> None:
    if _builtins_state["loaded"] or _builtins_state["loading"]:
        return
    _builtins_state["loading"] = True
    try:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
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
    params: type[Params],
    override: bool = False,
) -> Callable[[Any], Any]:
    """Class/function decorator registering a component under ``name`` in ``role``."""

    def deco(obj: Any) -> Any:
        obj.__cellgi_component__ = {"role": role, "name": name, "summary": summary, "params": params}
        get_registry(role).add(name, obj, summary=summary, params=params, override=override)
        return obj

    return deco


def build(role: str, spec: BaseModel | dict[str, Any], /, **context: Any) -> Any:
    """Shorthand for ``get_registry(role).build(spec, **context)``."""
    return get_registry(role).build(spec, **context)


def installed_plugins() -> list[tuple[str, str]]:
    """(distribution, version) of every distribution exposing cellgi entry points, sorted."""
    if os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0", "false", "False"):
        return []
    seen: dict[str, str] = {}
    for group, _, _ in ROLES.values():
        for ep in _entry_points(group):
            if ep.dist is not None:
                seen[ep.dist.metadata["Name"]] = ep.dist.version
    return sorted(seen.items())


def _reset_for_tests() -> None:  # pragma: no cover - used by the test-suite's plugin fixtures
    """Forget discovered plugins (not built-ins) so that a changed sys.path is rediscovered."""
    for reg in _REGISTRIES.values():
        for name in [n for n, e in reg._entries.items() if e.provider != "cellgi"]:
            reg._entries.pop(name)
        reg._pending.clear()
        reg._broken.clear()
        reg._discovered = False
        reg.generation += 1
    importlib.invalidate_caches()
    sys.modules.pop("cellgi_test_plugin_probe", None)
