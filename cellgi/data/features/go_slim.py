"""``go_slim``: multi-hot GO-slim terms per gene from SGD's ``go_slim_mapping.tab``.

Caution (target leak): GO annotations inferred from genetic interactions (evidence code IGI) encode the
very thing the model predicts. The slim mapping has no evidence codes, so such annotations cannot be
identified or removed here; terms can be left out by name or id with ``exclude_terms``. Use a full GO
annotation file with evidence codes (and drop IGI) where the leak matters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from cellgi.data.errors import DataError
from cellgi.data.features.base import FeatureContext, GeneFeatureBlock, GeneFeatureSource, resolve_path
from cellgi.data.readers._io import check_file, iter_lines
from cellgi.registry import Params, register

__all__ = ["GoSlimFeatures", "GoSlimParams"]

#: the three roots: in the slim they mean "no annotation yet", not a shared function
ROOT_TERMS = ("GO:0008150", "GO:0003674", "GO:0005575")


class GoSlimParams(Params):
    path: str = Field(description="go_slim_mapping.tab (7 tab-separated columns, no header)")
    aspects: list[str] = Field(default_factory=lambda: ["P", "F", "C"], description="GO aspects kept: P, F, C")
    min_genes: int = Field(5, ge=1, description="keep terms annotated to at least this many genes of the gene list")
    exclude_terms: list[str] = Field(
        default_factory=lambda: list(ROOT_TERMS), description="GO ids or term names left out (default: the 3 roots)"
    )
    missing_indicator: bool = Field(True, description="add a column that is 1 for genes without any kept term")


@register("gene_features", "go_slim", summary="multi-hot GO-slim terms (aspects, min genes per term)",
          params=GoSlimParams)
class GoSlimFeatures(GeneFeatureSource):
    """Columns ``go.<aspect>.<GO id>`` (0/1), sorted by aspect and id, and ``go.missing``."""

    kind = "go_slim"

    def __init__(self, path: str, aspects: list[str] | None = None, min_genes: int = 5,
                 exclude_terms: list[str] | None = None, missing_indicator: bool = True):
        self.path = path
        self.aspects = list(aspects) if aspects is not None else ["P", "F", "C"]
        bad = [a for a in self.aspects if a not in ("P", "F", "C")]
        if bad:
            raise ValueError(f"go_slim aspects must be P, F or C, got {bad}")
        self.min_genes = min_genes
        self.exclude = {t.lower() for t in (exclude_terms if exclude_terms is not None else ROOT_TERMS)}
        self.missing_indicator = missing_indicator

    def input_files(self, root: Path) -> list[Path]:
        return [resolve_path(root, self.path)]

    def compute(self, ctx: FeatureContext) -> GeneFeatureBlock:
        p = check_file(resolve_path(ctx.root, self.path), "GO slim mapping")
        index = {g: i for i, g in enumerate(ctx.genes)}
        terms: dict[tuple[str, str], set[int]] = {}
        rows = unmapped = excluded = 0
        for lineno, line in iter_lines(p, "GO slim mapping"):
            if not line.strip() or line.startswith("!") or line.startswith("#"):
                continue
            f = line.split("\t")
            if len(f) < 6:
                raise DataError(f"expected 7 tab-separated columns, found {len(f)}", p, lineno)
            rows += 1
            aspect, name, goid = f[3].strip(), f[4].strip(), f[5].strip()
            if aspect not in self.aspects:
                continue
            if goid.lower() in self.exclude or name.lower() in self.exclude or not goid:
                excluded += 1
                continue
            gene = ctx.mapper.map(f[0].strip())
            if gene is None or gene not in index:
                unmapped += 1
                continue
            terms.setdefault((aspect, goid), set()).add(index[gene])
        kept = sorted(k for k, v in terms.items() if len(v) >= self.min_genes)
        n = len(ctx.genes)
        x = np.zeros((n, len(kept) + int(self.missing_indicator)), dtype=np.float32)
        for j, key in enumerate(kept):
            x[list(terms[key]), j] = 1.0
        cols = [f"go.{a}.{g}" for a, g in kept]
        has = x[:, : len(kept)].sum(1) > 0 if kept else np.zeros(n, dtype=bool)
        if self.missing_indicator:
            x[~has, -1] = 1.0
            cols.append("go.missing")
        if not kept:
            raise DataError(f"no GO-slim term with >= {self.min_genes} genes of the gene list "
                            f"(aspects {self.aspects})", p)
        info = {"source": "go_slim", "path": str(p), "rows": rows, "rows_not_in_gene_list": unmapped,
                "rows_excluded": excluded, "terms": len(kept), "terms_below_min_genes": len(terms) - len(kept),
                "genes_with_terms": int(has.sum()), "genes_without_terms": int(n - has.sum()),
                "note": "the GO slim has no evidence codes: IGI (genetic-interaction) annotations cannot be removed"}
        return GeneFeatureBlock(x, cols, info)
