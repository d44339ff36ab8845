"""``cellgi spec validate|schema``: check a spec file; print the JSON Schema for editors."""

from __future__ import annotations

import argparse
import json
import sys

from cellgi.spec import SpecError, load_spec, spec_json_schema

__all__ = ["add_parser", "run_schema", "run_validate"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spec", help="validate a spec, print the spec's JSON Schema")
    ssub = p.add_subparsers(dest="spec_command", metavar="SUBCOMMAND")
    vp = ssub.add_parser(
        "validate",
        help="validate a spec file (no data is read)",
        description="Exit 0 with a summary when valid; otherwise FILE:LINE: path: message lines and exit 2.",
    )
    vp.add_argument("file", help="spec YAML")
    vp.add_argument("--quiet", action="store_true", help="no snippet under each error")
    vp.set_defaults(func=run_validate)
    sp = ssub.add_parser("schema", help="JSON Schema of the spec with the installed components")
    sp.add_argument("-o", "--output", help="write to this file instead of stdout")
    sp.set_defaults(func=run_schema)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_validate(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.file)
    except SpecError as exc:
        print(exc.render(snippet=not args.quiet), file=sys.stderr)
        return 2
    m, d = spec.model, spec.data
    source = "synthetic" if d.synthetic is not None else f"{len(d.graphs)} graphs, {len(d.screens)} screens"
    local = m.local_predictor.type if m.local_predictor is not None else "none"
    print(
        f"{args.file}: valid spec {spec.name!r}: data {source}, targets {','.join(d.targets)}; "
        f"model {m.conv.type} x {m.num_layers} layers (H={m.hidden_dim}), aggregator {m.aggregator.type}, "
        f"local {local}, combiner {m.combiner.type}; training {spec.training.max_epochs} epochs, "
        f"loss {spec.training.loss.type}"
    )
    return 0


def run_schema(args: argparse.Namespace) -> int:
    text = json.dumps(spec_json_schema(), indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
