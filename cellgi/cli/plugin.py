"""``cellgi plugin new NAME``: a working plugin package to start from.

The skeleton is a separately installable distribution (``pyproject.toml`` with setuptools and one entry
point), a module registering one component of the chosen kind with a documented ``Params`` model, a
test that builds the component from spec YAML and runs it, and a README. Templates are package data
under ``cellgi/cli/templates/plugin/``; ``{{ key }}`` placeholders are filled in from the names.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cellgi import __version__
from cellgi.cli import command_group
from cellgi.registry import ROLES, get_registry

__all__ = ["KINDS", "PluginNames", "add_parser", "plugin_names", "render", "run", "write_skeleton"]

#: kinds a skeleton can be made for (a subset of the registry roles)
KINDS = ("aggregator", "loss", "pooling", "conv", "graph_format", "gene_features", "baseline", "local_predictor")

_DIST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_COMPONENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: (template file, output path); ``{module}`` and ``{kind}`` are filled in
_FILES = (
    ("common/pyproject.toml.tmpl", "pyproject.toml"),
    ("common/README.md.tmpl", "README.md"),
    ("common/__init__.py.tmpl", "src/{module}/__init__.py"),
    ("common/py.typed.tmpl", "src/{module}/py.typed"),
    ("{kind}/component.py.tmpl", "src/{module}/{kind}.py"),
    ("{kind}/test_component.py.tmpl", "tests/test_{module}.py"),
)

_SUMMARIES = {
    "aggregator": "softmax-weighted sum of the graph outputs with one learnable weight per graph",
    "loss": "Cauchy (Lorentzian) loss: quadratic near 0, logarithmic in the tails",
    "pooling": "sum over each sample's kept genes divided by (number kept) ** power",
    "conv": "mean over kept in-neighbours, plus a root transform (GraphSAGE-style)",
    "graph_format": "gene pairs as GENE<sep>GENE[<sep>weight] lines with a chosen separator",
    "gene_features": "1 for the genes a list file names, 0 for the others (e.g. a lab's hit list)",
    "baseline": "ridge regression on the set's summed per-gene inputs and its size (scores unseen genes)",
    "local_predictor": "MLP on the deleted genes' mean state and their pairs' mean relations",
}
#: where a component of each kind goes in a spec
_SPEC_SECTION = {"aggregator": "model", "loss": "training", "pooling": "model", "conv": "model",
                 "local_predictor": "model"}
_CLASS_SUFFIX = {"aggregator": "Aggregator", "loss": "Loss", "pooling": "Pooling", "conv": "Conv",
                 "graph_format": "Format", "gene_features": "Features", "baseline": "Baseline",
                 "local_predictor": "Head"}


def _spec_snippet(kind: str, component: str) -> str:
    """How a spec names a component of ``kind`` (for the README)."""
    if kind == "graph_format":
        return f"data:\n  graphs:\n    - {{name: my_edges, format: {component}, path: edges.csv, sep: ','}}"
    if kind == "gene_features":
        return f"data:\n  features:\n    - {{type: {component}, path: my_hits.txt}}"
    if kind == "baseline":
        return (f"training:\n  baselines: [{{type: additive}}, {{type: features}}, {{type: {component}}}]\n"
                f"  stack: {{baselines: [features, {component}]}}   # optional: blend it with the network")
    return f"{_SPEC_SECTION[kind]}:\n  {kind}: {{type: {component}}}"


@dataclass(frozen=True)
class PluginNames:
    """Every name a skeleton uses, derived from the distribution name."""

    dist: str
    module: str
    kind: str
    component: str
    class_name: str
    params_class: str
    group: str
    summary: str

    def context(self) -> dict[str, str]:
        """Placeholder values for the templates."""
        major, minor = (__version__.split(".") + ["0"])[:2]
        return {
            "dist": self.dist,
            "module": self.module,
            "kind": self.kind,
            "component": self.component,
            "class_name": self.class_name,
            "params_class": self.params_class,
            "group": self.group,
            "summary": self.summary,
            "cellgi_version": __version__,
            "cellgi_requirement": f"cellgi>={major}.{minor},<{major}.{int(minor) + 1}",
            "spec_snippet": _spec_snippet(self.kind, self.component),
            "title": self.dist,
            "title_rule": "=" * len(self.dist),
        }


def plugin_names(dist: str, kind: str, component: str | None = None) -> PluginNames:
    """Validate ``dist`` (a distribution name) and derive module, component and class names.

    Raises:
        ValueError: a name that cannot be used, with the reason.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    if not _DIST_RE.match(dist):
        raise ValueError(
            f"invalid distribution name {dist!r}: use letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (e.g. cellgi-my-aggregator)"
        )
    module = re.sub(r"[-_.]+", "_", dist).lower()
    if not module.isidentifier() or keyword.iskeyword(module) or module[0].isdigit():
        raise ValueError(f"distribution name {dist!r} gives module {module!r}, which is not a Python identifier")
    if module == "cellgi":
        raise ValueError(f"the plugin may not be called {dist!r}: pick a name of its own (e.g. cellgi-my-{kind})")
    if component is None:
        component = module.removeprefix("cellgi_") or module
    if not _COMPONENT_RE.match(component):
        raise ValueError(
            f"invalid component name {component!r}: lower-case letters, digits and '_', starting with a letter"
        )
    camel = "".join(part.capitalize() for part in component.split("_") if part)
    return PluginNames(
        dist=dist,
        module=module,
        kind=kind,
        component=component,
        class_name=camel + _CLASS_SUFFIX[kind],
        params_class=camel + "Params",
        group=ROLES[kind][0],
        summary=_SUMMARIES[kind],
    )


def render(text: str, context: dict[str, str], *, source: str = "<template>") -> str:
    """Replace every ``{{ key }}``; an unknown key is an error (no placeholder left behind)."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in context:
            raise KeyError(f"{source}: unknown placeholder {{{{ {key} }}}}")
        return context[key]

    return _PLACEHOLDER.sub(sub, text)


def _template_root() -> resources.abc.Traversable:
    return resources.files("cellgi.cli").joinpath("templates", "plugin")


def write_skeleton(names: PluginNames, target: Path) -> list[Path]:
    """Write the skeleton into ``target`` (which must not exist or be empty); return the files written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty; choose another --dir or name")
    root = _template_root()
    ctx = names.context()
    written: list[Path] = []
    for tmpl, out in _FILES:
        src = root.joinpath(*tmpl.format(kind=names.kind).split("/"))
        text = render(src.read_text(encoding="utf-8"), ctx, source=tmpl)
        path = target / out.format(module=names.module, kind=names.kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``cellgi plugin new``."""
    psub = command_group(sub, "plugin", "start a plugin package (new components installed with pip)")
    np_ = psub.add_parser(
        "new",
        help="create a working plugin skeleton",
        description=(
            "Create DIR/NAME: a pip-installable plugin registering one component through an entry point, "
            "with a Params model, a passing test and a README. See docs/plugins.md."
        ),
    )
    np_.add_argument("name", help="distribution name, e.g. cellgi-my-aggregator (module: cellgi_my_aggregator)")
    np_.add_argument("--dir", default=".", help="folder to create the package in (default: current folder)")
    np_.add_argument("--kind", choices=KINDS, default="aggregator", help="role of the component (default aggregator)")
    np_.add_argument(
        "--component",
        help="registered name used as 'type:' in specs (default: the module name without 'cellgi_')",
    )
    np_.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create the skeleton; 0 on success, 2 on a bad name or an existing folder."""
    try:
        names = plugin_names(args.name, args.kind, args.component)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reg = get_registry(names.kind)
    if names.component in reg.names():
        taken = reg.loaded().get(names.component)
        who = f"{taken.provider} {taken.version}" if taken else "an installed plugin"
        print(
            f"error: {names.kind} {names.component!r} already exists (provided by {who}); "
            "a plugin must use a new name: pass --component",
            file=sys.stderr,
        )
        return 2
    target = Path(args.dir) / names.dist
    try:
        files = write_skeleton(names, target)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {names.kind} plugin {names.dist} in {target} ({len(files)} files):")
    for f in files:
        print(f"  {f.relative_to(target)}")
    print(
        f"next:\n  pip install -e {target}\n  pytest {target / 'tests'}\n"
        f"  cellgi registry show {names.component}\n"
        f"then name it in a spec: {{type: {names.component}}}"
    )
    return 0
