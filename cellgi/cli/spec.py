"""``cellgi spec validate|schema|example``: check a spec; JSON Schema for editors; the shipped specs.

Also the spec helpers every spec-taking command shares: a SPEC argument that is a file or a shipped
example name, ``KEY=VALUE`` overrides, the ``--accelerator``/``--devices`` sugar and ``--print-config``.
Nothing heavy is imported to build the parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cellgi import __version__
from cellgi.cli import command_group
from cellgi.cli._common import add_spec_command
from cellgi.examples import example_path, list_examples, resolve_spec_path
from cellgi.fileio import check_writable, write_text_atomic

if TYPE_CHECKING:
    from cellgi.spec import Spec

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = [
    "add_parser",
    "load_spec_arg",
    "load_spec_or_report",
    "missing_data_root",
    "print_resolved",
    "run_example",
    "run_schema",
    "run_validate",
    "trainer_flags",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    ssub = command_group(
        sub, "spec", "validate a spec, print the spec's JSON Schema, list or write the shipped example specs"
    )
    vp = add_spec_command(
        ssub, "validate", spec="file", overrides_help="spec overrides, e.g. model.hidden_dim=128",
        help="validate a spec file (no data is read)",
        description="Exit 0 with a summary when valid; otherwise FILE:LINE: path: message lines (or "
        "'override N (KEY=VALUE): path: message' for an override) and exit 2.",
    )
    vp.add_argument("--quiet", action="store_true", help="no snippet under each error")
    vp.add_argument("--print-config", action="store_true", help="print the resolved spec as YAML")
    vp.set_defaults(func=run_validate)
    sp = ssub.add_parser("schema", help="JSON Schema of the spec with the installed components")
    sp.add_argument("-o", "--output", help="write to this file instead of stdout")
    sp.set_defaults(func=run_schema)
    ep = ssub.add_parser(
        "example",
        help="list the example specs shipped with cellgi, or write one",
        description="Without NAME: list the shipped example specs. With NAME: print it, or write it to "
        "FILE with -o (an existing file is not overwritten without --force). Real-data examples read "
        "data.root relative to the spec file: point it at your download folder.",
    )
    ep.add_argument("name", nargs="?", metavar="NAME", help="example name, e.g. quickstart")
    ep.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    ep.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    ep.set_defaults(func=run_example)


# ------------------------------------------------------------------------------------ shared helpers
def trainer_flags(args: argparse.Namespace) -> list[Any]:
    """``--accelerator``/``--devices`` as overrides of ``training.trainer.*`` (applied last)."""
    from cellgi.spec.overrides import parse_override

    out = []
    for flag, key in (("accelerator", "training.trainer.accelerator"), ("devices", "training.trainer.devices")):
        value = getattr(args, flag, None)
        if value is not None:  # a bad value raises SpecError naming the flag
            out.append(parse_override(f"{key}={value}", label=f"--{flag} {value}"))
    return out


def load_spec_arg(arg: str | Path, overrides: Sequence[Any] = ()) -> Spec:
    """Load a SPEC argument (a file, else a shipped example name) with ``overrides`` applied, its sizes
    checked against memory (:func:`cellgi.nn.memory.check_memory`) before any data is read.

    Raises SpecError (invalid spec or override, too large for memory), LookupError (no such file or
    example), OSError.
    """
    from cellgi.nn.memory import check_memory
    from cellgi.spec import load_spec

    notes: list[str] = []
    spec = load_spec(resolve_spec_path(arg), overrides, notes=notes, checks=[check_memory])
    for line in notes:  # e.g. the parameters a type override dropped
        print(f"note: {line}", file=sys.stderr)
    return spec


def load_spec_or_report(arg: str | Path, overrides: Sequence[Any] = (), *, snippet: bool = True) -> Spec | None:
    """:func:`load_spec_arg` for a command: the spec, or None (exit status 2) after printing why to stderr
    (the ``FILE:LINE`` issues, with the offending lines unless ``snippet=False``; a missing file or example
    in one line)."""
    from cellgi.spec import SpecError

    try:
        return load_spec_arg(arg, overrides)
    except SpecError as exc:
        print(exc.render(snippet=snippet), file=sys.stderr)
    except (OSError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return None


def missing_data_root(arg: str | Path, spec: Spec) -> str | None:
    """For a shipped example named by NAME whose ``data.root`` does not exist (a pip install has no
    data next to it): what to do, else None."""
    if Path(arg).is_file() or getattr(spec.data, "synthetic", None) is not None:
        return None
    root = Path(spec.data.root)
    if root.is_dir():
        return None
    return (
        f"the shipped example {str(arg)!r} reads real data from data.root, and {root} does not exist: "
        f"pass data.root=DIR (the folder with the files listed in docs/data.md, 'Where the data comes "
        f"from'), or write the spec with 'cellgi spec example {arg} -o my.yaml' and edit it"
    )


def print_resolved(spec: Spec, source: str | Path, overrides: Sequence[Any] = ()) -> None:
    """``--print-config``: the resolved spec as YAML (loads back to the same spec)."""
    from cellgi.spec.overrides import dump_spec_yaml

    given = " ".join(o if isinstance(o, str) else o.label for o in overrides)
    sys.stdout.write(f"# resolved by cellgi {__version__} from {source}{' with ' + given if given else ''}\n")
    sys.stdout.write(dump_spec_yaml(spec))


# ------------------------------------------------------------------------------------------ commands
def run_validate(args: argparse.Namespace) -> int:
    spec = load_spec_or_report(args.file, args.overrides, snippet=not args.quiet)
    if spec is None:
        return 2
    if args.print_config:
        print_resolved(spec, args.file, args.overrides)
        return 0
    m, d = spec.model, spec.data
    source = "synthetic" if d.synthetic is not None else f"{len(d.graphs)} graphs, {len(d.screens)} screens"
    local = m.local_predictor.type if m.local_predictor is not None else "none"
    print(
        f"{args.file}: valid spec {spec.name!r}: data {source}, targets {','.join(d.targets)}; "
        f"model {m.conv.type} x {m.num_layers} layers (H={m.hidden_dim}), aggregator {m.aggregator.type}, "
        f"local {local}, combiner {m.combiner.type}; training {spec.training.max_epochs} epochs, "
        f"loss {spec.training.loss.type}, baselines {', '.join(b.type for b in spec.training.baselines) or 'none'}"
        + (f", stack with {', '.join(spec.training.stack.baselines)}" if spec.training.stack is not None else "")
        + (f" ({len(args.overrides)} override(s) applied)" if args.overrides else "")
    )
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from cellgi.spec import spec_json_schema

    if args.output:
        check_writable(args.output, label="-o")
    text = json.dumps(spec_json_schema(), indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def run_example(args: argparse.Namespace) -> int:
    if args.name is None:
        examples = list_examples()
        if not examples:
            print("error: no example spec is installed (a broken install?)", file=sys.stderr)
            return 1
        width = max(len(e.name) for e in examples)
        for e in examples:
            print(f"{e.name:<{width}}  {e.summary}")
        print("\nwrite one: cellgi spec example NAME -o my.yaml   train one: cellgi train NAME", file=sys.stderr)
        return 0
    try:
        src = example_path(args.name)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = src.read_text(encoding="utf-8")
    if not args.output:
        sys.stdout.write(text)
        return 0
    out = check_writable(args.output, label="-o")
    if out.exists() and not args.force:
        print(f"error: {out} exists; not overwritten (use --force)", file=sys.stderr)
        return 2

    write_text_atomic(out, text)
    print(f"wrote {out} (from the shipped example {src.stem!r})")
    if "root:" in text and "synthetic:" not in text:
        print(
            "note: data.root in it is relative to the spec file; edit it to point at your data folder, "
            "or pass data.root=DIR (taken from the current directory) to cellgi train",
        )
    return 0
