"""``cellgi predict RUN_DIR_OR_CKPT --genes FILE -o OUT.tsv``: predictions for gene sets.

Input: one gene set per line, genes separated by ``;`` (``YAL015C;YBL007C`` or ``ho;abf1``), as ORFs,
case variants, STRING ids, common names or aliases known to the checkpoint's mapper. Blank lines and
lines starting with ``#`` are ignored.

A line naming a gene the model does not know (or naming one gene twice, or fewer than one gene) cannot
be predicted. By default such lines are skipped, listed on stderr with their line number and reason, and
counted; ``--strict`` makes any such line an error (exit 2, nothing written).

Output (TSV, one row per predicted line, in input order): ``line``, ``input``, ``genes`` (the mapped
ORFs), one column per target (original units), then ``local_<target>`` and ``global_<target>`` (the two
heads' predictions, original units) and ``gate_local``/``gate_global`` when the model has them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GeneSets", "add_parser", "parse_gene_sets", "predict_gene_sets", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict targets for gene sets (one ';'-separated set per line)",
        description="Predict with a run's model (model.pt, else checkpoints/best.ckpt) or a checkpoint file. "
        "Lines with genes unknown to the model are skipped and reported (or an error with --strict).",
    )
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="run folder or checkpoint file")
    p.add_argument("--genes", required=True, metavar="FILE", help="gene sets, one per line, genes separated by ';'")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tsv", help="predictions (TSV)")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) if any line cannot be predicted")
    p.add_argument("--batch-size", type=int, default=256, help="gene sets per batch (default 256)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1; default cpu)")
    p.set_defaults(func=run)


@dataclass
class GeneSets:
    """Parsed input: mapped sets and the lines that could not be used."""

    lines: list[int] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    sets: list[list[int]] = field(default_factory=list)
    #: (line number, input text, reason)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)


def parse_gene_sets(text: str, mapper: Any) -> GeneSets:
    """Map every line of ``text`` to gene indices with ``mapper`` (see the module docstring)."""
    out = GeneSets()
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        idents = [x.strip() for x in line.split(";")]
        if any(not x for x in idents):
            out.skipped.append((no, line, "empty gene name (check the ';' separators)"))
            continue
        idx: list[int] = []
        problems: list[str] = []
        for ident in idents:
            gene, reason = mapper.resolve(ident)
            if gene is None:
                problems.append(f"{ident}: {reason}")
            else:
                idx.append(mapper.index(gene))
        if problems:
            out.skipped.append((no, line, "; ".join(problems)))
            continue
        if len(set(idx)) != len(idx):
            out.skipped.append((no, line, "a gene is named twice"))
            continue
        out.lines.append(no)
        out.inputs.append(line)
        out.sets.append(idx)
    return out


def predict_gene_sets(loaded: Any, sets: list[list[int]], *, batch_size: int = 256) -> dict[str, Any]:
    """Predictions for index sets: ``{"pred": [S, T], "local": [S, T] | None, "global": [S, T] | None,
    "gate": [S, 2] | None}`` (float tensors, original units for the first three)."""
    import torch

    from cellgi.data.batch import collate_index_sets

    t = len(loaded.target_names)
    preds, locs, globs, gates = [], [], [], []
    for lo in range(0, len(sets), batch_size):
        chunk = [torch.tensor(s, dtype=torch.long) for s in sets[lo : lo + batch_size]]
        batch = collate_index_sets(chunk, torch.full((len(chunk), t), float("nan")))
        pred, reps = loaded.predict(batch)
        preds.append(pred.cpu())
        if reps.get("local_interaction") is not None:
            locs.append(reps["local_interaction"].float().cpu())
        if reps.get("global_interaction") is not None:
            globs.append(reps["global_interaction"].float().cpu())
        if reps.get("gate_weights") is not None:
            gates.append(reps["gate_weights"].float().cpu())
    cat = lambda xs: torch.cat(xs) if xs else None  # noqa: E731
    return {"pred": cat(preds), "local": cat(locs), "global": cat(globs), "gate": cat(gates)}


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def run(args: argparse.Namespace) -> int:
    """Exit 0 when predictions were written; 2 for unusable inputs (checkpoint, file, strict failures)."""
    from cellgi.train.checkpoint import CheckpointError, load_model
    from cellgi.fileio import write_text_atomic

    try:
        loaded = load_model(args.checkpoint)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        text = Path(args.genes).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.genes}: {exc}", file=sys.stderr)
        return 2
    parsed = parse_gene_sets(text, loaded.mapper)
    for no, line, reason in parsed.skipped[:20]:
        print(f"{args.genes}:{no}: skipped '{line}': {reason}", file=sys.stderr)
    if len(parsed.skipped) > 20:
        print(f"... and {len(parsed.skipped) - 20} more skipped lines", file=sys.stderr)
    if parsed.skipped and args.strict:
        print(f"error: {len(parsed.skipped)} line(s) of {args.genes} cannot be predicted (--strict)", file=sys.stderr)
        return 2
    if not parsed.sets:
        print(f"error: no line of {args.genes} could be predicted ({len(parsed.skipped)} skipped)", file=sys.stderr)
        return 2
    out = predict_gene_sets(loaded, parsed.sets, batch_size=max(1, args.batch_size))
    names = loaded.target_names
    header = ["line", "input", "genes", *names]
    if out["local"] is not None:
        header += [f"local_{n}" for n in names]
    if out["global"] is not None:
        header += [f"global_{n}" for n in names]
    if out["gate"] is not None:
        header += ["gate_local", "gate_global"]
    genes = loaded.mapper.genes
    rows = ["\t".join(header)]
    for i, (no, inp, s) in enumerate(zip(parsed.lines, parsed.inputs, parsed.sets)):
        cells = [str(no), inp, ";".join(genes[g] for g in s)]
        cells += [_fmt(float(v)) for v in out["pred"][i]]
        for key in ("local", "global", "gate"):
            if out[key] is not None:
                cells += [_fmt(float(v)) for v in out[key][i]]
        rows.append("\t".join(cells))
    write_text_atomic(args.output, "\n".join(rows) + "\n")
    msg = f"wrote {len(parsed.sets)} predictions to {args.output}"
    if parsed.skipped:
        msg += f"; skipped {len(parsed.skipped)} line(s) with genes the model cannot use (listed above)"
    print(msg)
    return 0
