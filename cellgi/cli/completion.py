"""Shell completion (argcomplete): commands and flags come from the parser; these add values.

Enable it once per shell (``pip install argcomplete`` is a dependency of cellgi)::

    eval "$(register-python-argcomplete cellgi)"        # bash/zsh; fish: see docs/specs.md

Completed values: spec arguments (``*.yaml`` files and shipped example names), override keys
(``model.hidden_dim=``), registered component names (``registry show``, ``bench --aggregator``) and
shipped example names (``spec example``). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import glob
import os
from typing import Any, Callable, Iterable

from cellgi.examples import list_examples
from cellgi.registry import ROLES, get_registry

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["attach_completers", "component_names", "example_names", "override_keys", "spec_files"]


def example_names(prefix: str = "", **_: Any) -> list[str]:
    return [e.name for e in list_examples() if e.name.startswith(prefix)]


def spec_files(prefix: str = "", **kw: Any) -> list[str]:
    """``*.yaml``/``*.yml`` files and folders under the typed prefix, plus shipped example names."""
    out = example_names(prefix)
    for p in glob.glob(os.path.expanduser(prefix) + "*"):
        if os.path.isdir(p):
            out.append(p + "/")
        elif p.endswith((".yaml", ".yml")):
            out.append(p)
    return out


def component_names(prefix: str = "", **_: Any) -> list[str]:
    names = sorted({n for role in ROLES for n in get_registry(role).names()})
    return [n for n in names if n.startswith(prefix)]


def _aggregators(prefix: str = "", **_: Any) -> list[str]:
    return [n for n in get_registry("aggregator").names() if n.startswith(prefix)]


def override_keys(prefix: str = "", **_: Any) -> list[str]:
    """Dotted keys of the spec schema as ``key=`` (a value after ``=`` is left to the user)."""
    if "=" in prefix:
        return []
    from cellgi.spec.overrides import spec_key_paths

    # a component's params are completed once its slot is typed (model.conv.<TAB>): that needs the
    # registry's built-ins (torch, a second or two); everything else completes without importing torch
    deep = prefix.count(".") >= 2
    return [k + "=" for k in spec_key_paths(components=deep) if k.startswith(prefix)]


def _subparsers(parser: argparse.ArgumentParser) -> Iterable[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child


def _find(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser | None:
    cur: argparse.ArgumentParser | None = parser
    for name in path:
        cur = dict(_subparsers(cur)).get(name) if cur is not None else None
    return cur


#: (sub)command path -> {argument dest: completer}
COMPLETERS: dict[tuple[str, ...], dict[str, Callable[..., list[str]]]] = {
    ("train",): {"spec": spec_files, "overrides": override_keys},
    ("spec", "validate"): {"file": spec_files, "overrides": override_keys},
    ("spec", "example"): {"name": example_names},
    ("data", "summary"): {"spec": spec_files, "overrides": override_keys},
    ("registry", "show"): {"name": component_names},
    ("bench",): {"spec": spec_files, "aggregator": _aggregators},
}


def attach_completers(parser: argparse.ArgumentParser) -> None:
    """Set ``action.completer`` (argcomplete's hook) on the arguments named in :data:`COMPLETERS`."""
    for path, by_dest in COMPLETERS.items():
        sub = _find(parser, path)
        if sub is None:
            continue
        for action in sub._actions:
            fn = by_dest.get(action.dest)
            if fn is not None:
                action.completer = fn  # type: ignore[attr-defined]
