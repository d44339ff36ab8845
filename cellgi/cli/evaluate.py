"""``cellgi evaluate RUN_DIR_OR_CKPT --data FILE``: metrics of a trained model on new measured samples.

Genes of the file are mapped with the checkpoint's own gene list and mapper (ORFs, case variants,
STRING ids, common names and aliases of the training data). Samples with a gene the model does not know
cannot be evaluated: they are skipped, counted (``n_unmapped``) and reported with the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellgi.cli._common import add_model_command

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

if TYPE_CHECKING:  # pragma: no cover - types only: the predictors are imported when the command runs
    from cellgi.predictors.base import TrainedPredictor

__all__ = ["add_parser", "evaluate_file", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub, "evaluate",
        help="metrics of a trained model on a new file of measured samples",
        description="Evaluate a run's model (model.pt, else checkpoints/best.ckpt) or a checkpoint file on "
        "measured samples. Prints a table and writes JSON with n_samples, n_unmapped and the reasons.",
        epilog="--format table reads a TSV/CSV with a 'genes' column (YAL015C;YBL007C, or use --gene-columns) "
        "and one column per target named like the model's targets (or --target-column NAME=COLUMN).",
    )
    p.add_argument("--data", required=True, metavar="FILE", help="measured samples")
    p.add_argument("--format", choices=("kuzmin", "table"), default="kuzmin", help="file layout (default: kuzmin)")
    p.add_argument("-o", "--output", metavar="METRICS.json", help="write the metrics as JSON")
    p.add_argument(
        "--predictions", metavar="OUT.tsv", default=None,
        help="write every evaluated row, in input order: the input's gene columns with their standard names "
        "(gene_a, gene_a_name), the measured targets and prediction (prediction_<target> with several)",
    )
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
    from cellgi.apps.evaluate import EvaluateError, screen_description

    cols: dict[str, str] = {}
    for item in args.target_column:
        if "=" not in item:
            raise EvaluateError(f"--target-column expects NAME=COLUMN, got {item!r}")
        name, col = (x.strip() for x in item.split("=", 1))
        if name in cols:
            raise EvaluateError(f"--target-column names target {name!r} twice")
        cols[name] = col
    gene_columns = [c.strip() for c in args.gene_columns.split(",") if c.strip()] if args.gene_columns else None
    return screen_description(
        args.data, args.format, targets, gene_columns=gene_columns, genes_column=args.genes_column,
        target_columns=cols or None,
    )


def evaluate_file(
    checkpoint: str | Path | TrainedPredictor,
    screen: dict[str, Any],
    *,
    batch_size: int | None = None,
    device: str = "cpu",
    predictions: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint (a path to anything :func:`cellgi.predictors.load_predictor` loads, or a
    trained predictor already loaded) on a screen description; see :func:`cellgi.apps.evaluate.evaluate_screen`."""
    from cellgi.apps.evaluate import evaluate_screen
    from cellgi.predictors import load_predictor

    loaded = load_predictor(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    return evaluate_screen(loaded, screen, batch_size=batch_size, device=device, predictions=predictions)


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
        if k.split(".")[-1].startswith("prevalence_"):  # beside its AUPRC: the AUPRC of a random predictor
            k = f"{k} (chance auprc)"
        table.add_row(k, "-" if v is None or v != v else (f"{int(v)}" if count else f"{v:.4f}"))
    console.print(table)
    if report.get("predictor"):
        console.print(f"predictor: {report['predictor']}")
    for name, mm in (report.get("members") or {}).items():  # a stacked run: each member alone
        cells = ", ".join(f"{k} {v:.4f}" for k, v in mm.items() if k.split(".")[-1] in ("pearson", "spearman") and v == v)
        console.print(f"  {name} alone: {cells}")
    skipped = report["skipped"]
    console.print(
        f"{report['n_samples']} samples evaluated of {report['n_rows']} rows read"
        + (f"; {sum(skipped.values())} skipped: " + ", ".join(f"{k}: {v}" for k, v in skipped.items())
           if skipped else "")
    )
    if report["unmapped_identifiers"]:
        ex = ", ".join(f"{i['id']} ({i['reason']}, {i['rows']} rows)" for i in report["unmapped_identifiers"][:5])
        console.print(f"unmapped identifiers, e.g.: {ex}")
    if report["missing_targets"]:
        console.print(f"[yellow]the file has no column for target(s) {report['missing_targets']}[/yellow]")
    if report.get("unmeasured_targets"):
        console.print(f"[yellow]no sample has a measured value of target(s) {report['unmeasured_targets']}[/yellow]")


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 on unusable inputs (checkpoint, data file, no sample or no measured target left:
    cellgi errors that :func:`cellgi.cli.main.main` reports)."""
    from cellgi.apps.evaluate import check_output_file
    from cellgi.predictors import load_predictor
    from cellgi.runfolder.runs import write_json

    if args.batch_size is not None and args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return 2
    if args.output:  # checked before any work, so a finished evaluation is never lost on writing
        from cellgi.fileio import check_writable

        check_writable(args.output, label="-o")
    if args.predictions:
        check_output_file(args.predictions, "--predictions", inputs=[args.data])
    loaded = load_predictor(args.checkpoint)
    screen = _screen_desc(args, loaded.target_names)
    report = evaluate_file(loaded, screen, batch_size=args.batch_size, device=args.device,
                           predictions=args.predictions)
    _print_report(report)
    if args.predictions:
        print(f"wrote {report['n_samples']} rows to {args.predictions}")
    if args.output:
        write_json(args.output, report)
        print(f"wrote {args.output}")
    return 0
