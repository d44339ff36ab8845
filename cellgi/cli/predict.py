"""``cellgi predict RUN_DIR_OR_CKPT --genes FILE -o OUT.tsv``: predictions for gene sets.

Input: one gene set per line, genes separated by ``;`` (``YAL015C;YBL007C`` or ``ho;abf1``), as ORFs,
case variants, STRING ids, common names or aliases known to the checkpoint's mapper. Blank lines and
lines starting with ``#`` are ignored.

A line naming a gene the model does not know (or naming one gene twice, or fewer than one gene) cannot
be predicted. By default such lines are skipped, listed on stderr with their line number and reason, and
counted; ``--strict`` makes any such line an error (exit 2, nothing written). Sets whose size the model
was not trained on (1 or 10 genes for a model of pairs and triples) are predicted, counted and warned about.

Rows are written in batches as they are predicted (a progress bar shows the input read), so an
interrupted run (Ctrl-C: exit 130; SIGTERM: exit 143) keeps every finished batch and ``--resume``
continues the file without writing a row twice. ``OUT.predict.json`` records the model's digest, the
input's digest and the columns; ``--resume`` refuses an output that another model, input or column set
made, naming what differs. An existing output is refused unless ``--resume`` or ``--overwrite`` is given. The core lives in :mod:`cellgi.apps.predict`.

Output (TSV, one row per predicted line, in input order): ``line``, ``input``, ``genes`` (the mapped
ORFs), ``names`` (their standard names, e.g. RAD52 for YML032C; the ORF where a gene has none), one
column per target (original units), then ``local_<target>`` and ``global_<target>`` (the two
heads' predictions, original units) and ``gate_local``/``gate_global`` when the model has them.
"""

from __future__ import annotations

import argparse
import sys

from cellgi.cli._common import Terminated, add_model_command, add_stream_options, load_on_device, sigterm_raises
from cellgi.fileio import check_writable, replace_when_done

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.


__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub, "predict",
        help="predict targets for gene sets (one ';'-separated set per line)",
        description="Predict with a run's model (model.pt, else checkpoints/best.ckpt) or a checkpoint file. "
        "Lines with genes unknown to the model are skipped and reported (or an error with --strict). Rows are "
        "written batch by batch; an interrupted run keeps them and --resume continues it.",
    )
    p.add_argument("--genes", required=True, metavar="FILE", help="gene sets, one per line, genes separated by ';'")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tsv", help="predictions (TSV)")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) if any line cannot be predicted")
    p.add_argument("--batch-size", type=int, default=None,
                   help="gene sets per batch and per write (default: 16384 for models that read only the wildtype "
                   "cell, 256 for the others: the predictor's default_batch_size)")
    add_stream_options(p, "OUT.tsv")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when predictions were written; 2 for unusable inputs (checkpoint, files, strict failures);
    130 when interrupted (Ctrl-C), 143 on SIGTERM (rows written so far are kept; --resume continues).
    Unusable checkpoints, devices and inputs raise cellgi errors that :func:`cellgi.cli.main.main` reports."""
    from cellgi.apps.predict import PredictInterrupted, predict_file

    if args.resume and args.overwrite:
        print("error: --resume and --overwrite exclude each other", file=sys.stderr)
        return 2
    if args.batch_size is not None and args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return 2
    out = check_writable(args.output, label="-o")  # before any work: one line, exit 2
    loaded = load_on_device(args.checkpoint, args.device)
    shown = 0

    def on_skip(no: int, line: str, reason: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= 20:
            print(f"{args.genes}:{no}: skipped '{line}': {reason}", file=sys.stderr)

    try:
        # --overwrite: the old file stays until the new one is complete
        with sigterm_raises(), replace_when_done(out, enabled=args.overwrite and out.exists()) as dest:
            report = predict_file(
                loaded, args.genes, str(dest), batch_size=args.batch_size, resume=args.resume,
                overwrite=args.overwrite, strict=args.strict, progress=not args.no_progress, on_skip=on_skip,
            )
    except (PredictInterrupted, Terminated) as exc:
        rep = getattr(exc, "report", None)
        kept = f"{rep.written} new rows kept in {args.output}" if rep is not None else f"finished batches kept in {args.output}"
        if args.overwrite and out.exists():
            print(f"interrupted: {out} left as it was (--overwrite replaces it only when complete)", file=sys.stderr)
            return 143 if isinstance(exc, Terminated) else 130
        print(f"interrupted: {kept}; rerun with --resume to continue", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    if shown > 20:
        print(f"... and {shown - 20} more skipped lines", file=sys.stderr)
    warning = report.size_warning()
    if warning:
        ex = ", ".join(f"line {no}" for no, _ in report.unusual_examples[:5])
        print(f"warning: {warning} (e.g. {ex})", file=sys.stderr)
    msg = f"wrote {report.written} predictions to {args.output}"
    if report.already_written:
        msg += f" after the {report.already_written} already there (resumed after input line {report.resumed_after_line})"
    if report.skipped:
        msg += f"; skipped {report.skipped} line(s) with genes the model cannot use (listed above)"
    print(f"{msg} (predictor: {loaded.describe()})")
    return 0

