"""``cellgi screen RUN_DIR_OR_CKPT --query A;B -o OUT.parquet``: a virtual screen (see :mod:`cellgi.screen`).

Every array gene (default: every gene the model knows; ``--arrays FILE`` to choose) against each query
(``--query`` repeated, or ``--queries FILE``, genes of a query separated by ``;``), or every pair of a
gene list (``--pairs-of FILE``) against each query (or alone, without a query). Rows stream to OUT.tsv or
OUT.parquet (a folder of parts), the top-K strongest negative and positive predictions per query go to
OUT.top.tsv, and a progress bar shows predictions/s. An interrupted screen (Ctrl-C: exit 130; SIGTERM:
exit 143) keeps every finished batch; ``--resume`` continues it without writing a row twice.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "screen",
        help="virtual screen: every array gene (or gene pair) against query genes or pairs",
        description="Score every array gene (or every pair of a gene list) against query genes or query pairs "
        "with a run's model, streaming rows to OUT.tsv or OUT.parquet and the top-K strongest negative and "
        "positive predictions per query to OUT.top.tsv. The wildtype cell is computed once per screen. "
        "Interrupted screens keep their rows; --resume continues them.",
    )
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="run folder or checkpoint file")
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
    p.add_argument("--batch-size", type=int, default=32, help="gene sets per forward pass and per write (default 32)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1; default cpu)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted screen in OUT")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def run(args: argparse.Namespace) -> int:
    """0 when the screen completed; 2 for unusable input; 130 (Ctrl-C) or 143 (SIGTERM) when interrupted,
    with every finished batch kept."""
    from cellgi.screen import ScreenError, ScreenInterrupted, plan_screen, run_screen
    from cellgi.train.checkpoint import CheckpointError, load_model

    try:
        loaded = load_model(args.checkpoint)
        loaded.model.to(args.device)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as exc:  # a device that does not exist here
        print(f"error: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        plan = plan_screen(loaded.mapper, args.query, queries_file=args.queries, arrays_file=args.arrays,
                           pairs_file=args.pairs_of)
        print(f"screen: {len(plan.queries)} quer{'y' if len(plan.queries) == 1 else 'ies'} x "
              f"{len(plan.genes)} {'genes (pairs)' if plan.mode == 'pairs' else 'array genes'}: "
              f"{plan.total:,} predictions", file=sys.stderr)
        report = run_screen(loaded, plan, args.output, top_k=args.top_k, batch_size=args.batch_size,
                            rank_target=args.rank_target, resume=args.resume, overwrite=args.overwrite,
                            progress=not args.no_progress)
    except ScreenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ScreenInterrupted, _Terminated) as exc:
        rep = getattr(exc, "report", None)
        kept = f"{rep.already_written + rep.written} rows kept" if rep is not None else "finished batches kept"
        print(f"interrupted: {kept} in {args.output}; rerun with --resume to continue", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    msg = f"wrote {report.written:,} predictions to {report.output}"
    if report.already_written:
        msg += f" after the {report.already_written:,} already there"
    msg += f" ({report.predictions_per_s:,.1f} predictions/s; wildtype pass {report.setup_seconds:.1f} s)"
    if args.top_k:
        msg += f"; top {args.top_k} per query in {report.top_path}"
    print(msg)
    return 0
