"""``cellgi embed RUN_DIR_OR_CKPT -o FILE``: per-gene embeddings of a trained model.

The format follows the file's suffix: ``.tsv`` (``gene`` column, ``name`` column (the standard name, e.g.
RAD52 for YML032C; the gene itself where it has none), then ``dim_0 .. dim_{H-1}``), ``.parquet`` (the same
table; needs pandas and pyarrow: ``pip install 'cellgi[parquet]'``) or ``.h5ad`` (AnnData with genes as
observations and their names in ``obs["name"]``, for scanpy; needs ``pip install 'cellgi[anndata]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cellgi.cli._common import add_model_command
from cellgi.errors import CellgiError

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

if TYPE_CHECKING:  # pragma: no cover - types only: cellgi.api is imported when the command runs
    from cellgi.api import Model

__all__ = ["FORMATS", "add_parser", "run", "write_embeddings"]

FORMATS = (".tsv", ".parquet", ".h5ad")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_model_command(
        sub, "embed",
        help="write per-gene embeddings of a trained model (TSV, Parquet or AnnData .h5ad)",
        description="Per-gene vectors of a run's model (model.pt, else checkpoints/best.ckpt) or a checkpoint "
        "file. --kind wildtype (default): each gene's state after message passing on the unperturbed "
        "graph; --kind input: the preprocessed embedding before message passing.",
        epilog="examples:\n  cellgi embed runs/quickstart/20260101-120000 -o genes.tsv\n"
        "  cellgi embed runs/yeast_real/20260101-120000 -o genes.h5ad   (pip install 'cellgi[anndata]')",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output: .tsv, .parquet or .h5ad")
    p.add_argument("--kind", choices=("wildtype", "input"), default="wildtype", help="which vectors (default wildtype)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=run)


class EmbedError(CellgiError):
    """An unusable output path or a missing optional package."""

    exit_code = 2


def write_embeddings(model: Model, path: str | Path, *, kind: str = "wildtype") -> tuple[int, int]:
    """Write ``model`` (a :class:`cellgi.api.Model`)'s per-gene vectors to ``path`` by suffix; returns
    ``(genes, dims)``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise EmbedError(f"{path}: unknown output format {suffix or '(no suffix)'!r}; use one of {', '.join(FORMATS)}")
    from cellgi.api import gene_embeddings

    loaded = model.trained_predictor
    emb = gene_embeddings(loaded, kind)
    from cellgi.predictors.scoring import gene_labels

    genes = list(loaded.mapper.genes)
    names = gene_labels(loaded.mapper)
    cols = [f"dim_{i}" for i in range(emb.shape[1])]
    if suffix == ".tsv":
        from cellgi.fileio import write_text_atomic

        rows = ["\t".join(["gene", "name", *cols])]
        rows += ["\t".join([g, n, *(f"{v:.7g}" for v in row)]) for g, n, row in zip(genes, names, emb.tolist())]
        write_text_atomic(path, "\n".join(rows) + "\n")
        return emb.shape
    try:
        import pandas as pd
    except ImportError:
        raise EmbedError(f"{path}: writing {suffix} needs pandas: pip install 'cellgi[parquet]'") from None
    df = pd.DataFrame(emb, index=pd.Index(genes, name="gene"), columns=cols)
    df.insert(0, "name", names)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise EmbedError(f"{path}: writing Parquet needs pyarrow: pip install 'cellgi[parquet]'") from None
        df.to_parquet(tmp)
    else:
        try:
            import anndata
        except ImportError:
            raise EmbedError(f"{path}: writing .h5ad needs anndata: pip install 'cellgi[anndata]'") from None
        adata = anndata.AnnData(X=emb, obs=pd.DataFrame({"name": names}, index=pd.Index(genes, name="gene")),
                                var=pd.DataFrame(index=pd.Index(cols, name="dim")))
        adata.uns["cellgi"] = {"kind": kind, "checkpoint": str(loaded.path), "targets": list(loaded.target_names)}
        adata.write_h5ad(tmp)
    tmp.replace(path)
    return emb.shape


def run(args: argparse.Namespace) -> int:
    """Exit 0 when written; 2 for an unusable checkpoint, output path or missing optional package (an
    unusable checkpoint and :class:`EmbedError` are reported by :func:`cellgi.cli.main.main`)."""
    from cellgi.api import load
    from cellgi.fileio import check_writable

    out = check_writable(args.output, label="-o")  # before any work: one line, exit 2
    if out.exists() and not args.force:
        print(f"error: {out} exists; not overwritten (use --force)", file=sys.stderr)
        return 2
    if out.suffix.lower() not in FORMATS:
        print(f"error: {out}: unknown output format {out.suffix or '(no suffix)'!r}; use one of "
              f"{', '.join(FORMATS)}", file=sys.stderr)
        return 2
    model = load(args.checkpoint)
    n, dims = write_embeddings(model, out, kind=args.kind)
    print(f"wrote {n} genes x {dims} dims ({args.kind} states) to {out}")
    return 0
