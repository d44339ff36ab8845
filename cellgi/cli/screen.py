"""``cellgi screen RUN_DIR_OR_CKPT --query A;B -o OUT.parquet``: a virtual screen (see :mod:`cellgi.apps.screen`).

Every array gene (default: every gene the model knows; ``--arrays FILE`` to choose) against each query
(``--query`` repeated, or ``--queries FILE``, genes of a query separated by ``;``), or every pair of a
gene list (``--pairs-of FILE``) against each query (or alone, without a query). Rows stream to OUT.tsv or
OUT.parquet (a folder of parts, one row group per batch), with the ORFs and their standard names
(``array``, ``array_names``); the top-K strongest negative and positive predictions per query go to
OUT.top.tsv, OUT.screen.json records the model's digest, the plan and the options, and a progress bar
shows predictions/s. An interrupted screen (Ctrl-C: exit 130; SIGTERM:
exit 143) keeps every finished batch; ``--resume`` continues it without writing a row twice, and refuses
an output that another model, plan or option set made.
"""

from __future__ import annotations

import argparse
import sys

from cellgi.cli._common import Terminated, add_model_command, add_stream_options, load_on_device, sigterm_raises
from cellgi.fileio import check_writable

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub, "screen",
        help="virtual screen: every array gene (or gene pair) against query genes or pairs",
        description="Score every array gene (or every pair of a gene list) against query genes or query pairs "
        "with a run's model, streaming rows to OUT.tsv or OUT.parquet and the top-K strongest negative and "
        "positive predictions per query to OUT.top.tsv. The wildtype cell is computed once per screen. "
        "Interrupted screens keep their rows; --resume continues them.",
    )
    p.add_argument("--query", action="append", default=[], metavar="GENES",
                   help="a query gene or ';'-separated query pair/set (repeatable), e.g. YAL015C;YBL007C")
    p.add_argument("--queries", metavar="FILE", help="queries, one per line (genes separated by ';')")
    p.add_argument("--arrays", metavar="FILE", help="array genes, one per line (default: every gene of the model)")
    p.add_argument("--pairs-of", metavar="FILE",
                   help="screen every pair of these genes (one per line) against each query instead of arrays")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.tsv or OUT.parquet (a folder of parts)")
    p.add_argument("--top-k", type=int, default=20, help="strongest negative and positive predictions kept per "
                   "query in OUT.top.tsv (default 20; 0: none)")
    p.add_argument("--rank-target", help="target ranked for the top-K (default: the model's first target)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="gene sets per forward pass and per write (default: 16384 for models that read only the "
                   "wildtype cell, 256 for the others: the predictor's default_batch_size)")
    add_stream_options(p, "OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """0 when the screen completed; 2 for unusable input; 130 (Ctrl-C) or 143 (SIGTERM) when interrupted,
    with every finished batch kept. Unusable checkpoints, devices and inputs raise cellgi errors that
    :func:`cellgi.cli.main.main` reports (exit 2)."""
    from cellgi.apps.screen import ScreenInterrupted, plan_screen, run_screen

    check_writable(args.output, label="-o", folder_ok=True)  # before any work (parquet: a folder of parts)
    loaded = load_on_device(args.checkpoint, args.device)
    try:
        with sigterm_raises():
            plan = plan_screen(loaded.mapper, args.query, queries_file=args.queries, arrays_file=args.arrays,
                               pairs_file=args.pairs_of)
            print(f"screen: {len(plan.queries)} quer{'y' if len(plan.queries) == 1 else 'ies'} x "
                  f"{len(plan.genes)} {'genes (pairs)' if plan.mode == 'pairs' else 'array genes'}: "
                  f"{plan.total:,} predictions", file=sys.stderr)
            report = run_screen(loaded, plan, args.output, top_k=args.top_k, batch_size=args.batch_size,
                                rank_target=args.rank_target, resume=args.resume, overwrite=args.overwrite,
                                progress=not args.no_progress)
    except (ScreenInterrupted, Terminated) as exc:
        rep = getattr(exc, "report", None)
        kept = f"{rep.already_written + rep.written} rows kept" if rep is not None else "finished batches kept"
        print(f"interrupted: {kept} in {args.output}; rerun with --resume to continue", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    msg = f"wrote {report.written:,} predictions to {report.output}"
    if report.already_written:
        msg += f" after the {report.already_written:,} already there"
    msg += f" ({report.predictions_per_s:,.1f} predictions/s; wildtype pass {report.setup_seconds:.1f} s)"
    if args.top_k:
        msg += f"; top {args.top_k} per query in {report.top_path}"
    print(msg)
    return 0
