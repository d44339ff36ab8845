"""``cellgi pretrained build|list|path``: shipped specs trained once into the user cache, used by name.

``cellgi pretrained build emap_real`` trains ``configs/emap_real.yaml`` into
``<user cache>/cellgi/pretrained/emap_real`` (see :mod:`cellgi.pretrained`); afterwards ``cellgi predict
emap_real ...``, ``cellgi screen emap_real ...`` and ``cellgi.load("emap_real")`` use that folder.
"""

from __future__ import annotations

import argparse
import json

from cellgi.cli import command_group
from cellgi.cli._common import add_spec_command

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["add_parser", "run_build", "run_list", "run_path"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    psub = command_group(sub, "pretrained", "build and list the pretrained models (shipped specs trained once, used by name)")
    b = add_spec_command(
        psub, "build", spec="name", spec_metavar="NAME", spec_help="a shipped spec name (emap_real, quickstart, ...)",
        overrides_help="spec overrides, recorded in pretrained.json",
        help="train a shipped spec into the user cache, once",
        description="Train the shipped spec NAME (cellgi spec example lists them) into the pretrained folder; "
        "afterwards every command that takes a run folder accepts NAME. The folder appears only when "
        "training finished.",
        epilog="examples:\n  cellgi pretrained build emap_real\n"
        "  cellgi pretrained build emap_real --data-root /data/yeast 'training.seeds=[0]'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--data-root", metavar="DIR", help="folder of the yeast data files (data.root) when the spec "
                   "does not find them where it expects them")
    b.add_argument("--force", action="store_true", help="rebuild a model that is already built")
    b.add_argument("--no-progress", action="store_true", help="no training progress bar")
    b.set_defaults(func=run_build)
    ls = psub.add_parser("list", help="shipped names, where each builds to, and which are built",
                         description="Every shipped spec name with its pretrained folder and, when built, "
                         "its build date and test Pearson.")
    ls.add_argument("--json", action="store_true", help="print the list as JSON")
    ls.set_defaults(func=run_list)
    pp = psub.add_parser("path", help="print the folder of a built pretrained model",
                         description="Print the folder NAME resolves to; exit 2 with the build command when "
                         "it is not built.")
    pp.add_argument("name", metavar="NAME")
    pp.set_defaults(func=run_path)


def run_build(args: argparse.Namespace) -> int:
    from cellgi.pretrained import build
    from cellgi.runfolder.pretrained import MANIFEST

    folder = build(args.name, args.overrides, data_root=args.data_root, force=args.force,
                   progress=not args.no_progress)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    print(f"built pretrained model {manifest['name']!r} in {folder}")
    for key, value in sorted(manifest["metrics"].items()):
        if key.endswith("pearson"):
            print(f"  {key} {value:.4f}")
    print(f"use it by name: cellgi predict {manifest['name']} ...  |  cellgi.load({manifest['name']!r})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from cellgi.runfolder.pretrained import list_pretrained

    items = list_pretrained()
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "built": m.built, "summary": m.summary,
                           "manifest": m.manifest} for m in items], indent=1))
        return 0
    for m in items:
        if m.built and m.manifest is not None:
            pearson = {k: v for k, v in m.manifest.get("metrics", {}).items() if k.endswith("pearson")}
            head = next((f"{k} {v:.3f}" for k, v in sorted(pearson.items()) if k.startswith("test")), "")
            state = f"built {m.manifest.get('finished', '?')} {head}".rstrip()
        else:
            state = f"not built (cellgi pretrained build {m.name})"
        print(f"{m.name:<20} {state}\n{'':<20} {m.path}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from cellgi.runfolder.pretrained import pretrained_path

    print(pretrained_path(args.name))
    return 0
