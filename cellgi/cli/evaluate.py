"""``cellgi evaluate RUN_DIR_OR_CKPT --data FILE``: metrics of a trained model on new measured samples.

Genes of the file are mapped with the checkpoint's own gene list and mapper (ORFs, case variants,
STRING ids, common names and aliases of the training data). Samples with a gene the model does not know
cannot be evaluated: they are skipped, counted (``n_unmapped``) and reported with the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "evaluate_file", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of a trained model on a new file of measured samples",
        description="Evaluate a run's model (model.pt, else checkpoints/best.ckpt) or a checkpoint file on "
        "measured samples. Prints a table and writes JSON with n_samples, n_unmapped and the reasons.",
        epilog="--format table reads a TSV/CSV with a 'genes' column (YAL015C;YBL007C, or use --gene-columns) "
        "and one column per target named like the model's targets (or --target-column NAME=COLUMN).",
    )
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="run folder or checkpoint file")
    p.add_argument("--data", required=True, metavar="FILE", help="measured samples")
    p.add_argument("--format", choices=("kuzmin", "table"), default="kuzmin", help="file layout (default: kuzmin)")
    p.add_argument("-o", "--output", metavar="METRICS.json", help="write the metrics as JSON")
    p.add_argument("--genes-column", default=None, help="table: column of ';'-joined genes (default: genes)")
    p.add_argument("--gene-columns", default=None, help="table: comma-separated columns, one gene each")
    p.add_argument(
        "--target-column", action="append", default=[], metavar="NAME=COLUMN",
        help="table: column holding target NAME (repeatable; default: a column named like the target)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="samples per batch (default: the run's)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1; default cpu)")
    p.set_defaults(func=run)


def _screen_desc(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    if args.format == "kuzmin":
        return {"format": "kuzmin", "path": str(Path(args.data).resolve()), "duplicates": "keep_all"}
    cols: dict[str, str] = {t: t for t in targets}
    for item in args.target_column:
        if "=" not in item:
            raise ValueError(f"--target-column expects NAME=COLUMN, got {item!r}")
        name, col = item.split("=", 1)
        if name not in targets:
            raise ValueError(f"--target-column: {name!r} is not a target of this model ({', '.join(targets)})")
        cols[name] = col
    desc: dict[str, Any] = {
        "format": "table", "path": str(Path(args.data).resolve()), "target_columns": cols, "duplicates": "keep_all"
    }
    if args.gene_columns:
        desc["gene_columns"] = [c.strip() for c in args.gene_columns.split(",") if c.strip()]
    else:
        desc["genes_column"] = args.genes_column or "genes"
    return desc


def evaluate_file(
    checkpoint: Any,
    screen: dict[str, Any],
    *,
    batch_size: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a checkpoint (path, run folder or :class:`~cellgi.train.checkpoint.LoadedModel`) on a
    screen description (a ``load_screen`` dict); returns the JSON report."""
    import torch

    from cellgi.data.screens import load_screen
    from cellgi.train.checkpoint import LoadedModel, load_model
    from cellgi.train.metrics import InteractionMetrics

    loaded = checkpoint if isinstance(checkpoint, LoadedModel) else load_model(checkpoint, map_location="cpu")
    loaded.model.to(device)
    targets = loaded.target_names
    load = load_screen(screen, loaded.mapper, targets, root=".")
    ds = load.dataset
    missing = [t for t in targets if t in load.missing_targets]
    bs = batch_size or loaded.spec.data.eval_batch_size or loaded.spec.data.batch_size
    metrics = InteractionMetrics(targets, loaded.spec.training.metrics.strong_threshold, sync=False)
    for lo in range(0, len(ds), bs):
        batch = ds.batch(torch.arange(lo, min(lo + bs, len(ds))))
        pred, _ = loaded.predict(batch)
        metrics.update(pred.cpu(), batch.y)
    values = metrics.compute() if len(ds) else {}
    unmapped = load.unmapped.to_dict(limit=20)
    return {
        "checkpoint": str(loaded.path),
        "data": screen["path"],
        "format": screen["format"],
        "targets": targets,
        "missing_targets": missing,
        "n_rows": int(load.n_rows),
        "n_samples": int(len(ds)),
        "n_unmapped": int(load.n_unmapped),
        "skipped": {str(k): int(v) for k, v in load.reasons.items()},
        "unmapped_identifiers": unmapped["items"],
        "kinds": ds.kind_counts(),
        "metrics": {k.replace("/", "."): float(v) for k, v in values.items()},
    }


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report["metrics"]
    table = Table(title=f"evaluate {Path(report['checkpoint']).name} on {Path(report['data']).name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in m.items():
        count = k.split(".")[-1] in ("n", "n_strong")
        table.add_row(k, "-" if v is None or v != v else (f"{int(v)}" if count else f"{v:.4f}"))
    console.print(table)
    console.print(
        f"{report['n_samples']} samples evaluated of {report['n_rows']} rows read; "
        f"{report['n_unmapped']} skipped because a gene is not in the model's gene list"
    )
    if report["skipped"]:
        console.print("skipped rows by reason: " + ", ".join(f"{k}: {v}" for k, v in report["skipped"].items()))
    if report["unmapped_identifiers"]:
        ex = ", ".join(f"{i['id']} ({i['reason']}, {i['rows']} rows)" for i in report["unmapped_identifiers"][:5])
        console.print(f"unmapped identifiers, e.g.: {ex}")
    if report["missing_targets"]:
        console.print(f"[yellow]the file has no column for target(s) {report['missing_targets']}[/yellow]")


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 on unusable inputs (checkpoint, data file, no sample left)."""
    from cellgi.data.errors import DataError
    from cellgi.train.checkpoint import CheckpointError, load_model
    from cellgi.train.runs import write_json

    try:
        loaded = load_model(args.checkpoint)
        screen = _screen_desc(args, loaded.target_names)
        report = evaluate_file(loaded, screen, batch_size=args.batch_size, device=args.device)
    except (CheckpointError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report["n_samples"] == 0:
        print(
            f"error: no sample of {args.data} could be evaluated ({report['n_rows']} rows read, "
            f"{report['n_unmapped']} with genes unknown to the model; skipped: {report['skipped']})",
            file=sys.stderr,
        )
        return 2
    if len(report["missing_targets"]) == len(report["targets"]):
        print(f"error: {args.data} provides none of the model's targets {report['targets']}", file=sys.stderr)
        return 2
    _print_report(report)
    if args.output:
        write_json(args.output, report)
        print(f"wrote {args.output}")
    return 0
