"""``cellgi train SPEC key=a,b other=x,y --multirun``: a grid of overrides, one run per combination.

Comma-separated override values expand to a grid (as Hydra's ``--multirun`` does). Splitting is
aware of YAML quoting and brackets: ``key='a,b'`` is one value (the string ``a,b``), ``key=[1,2]`` one
list and ``key={type: gate, x: 1}`` one mapping. Every combination is validated before any run starts.

The runs go to ``RUNS_ROOT/<name>/multirun-<timestamp>/<job>/`` (or ``RUN_DIR/<job>/``), with
``multirun.csv`` and ``multirun.json`` beside them: one row per job with its overrides, status and
metrics.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console

from cellgi.experiments.report import report
from cellgi.experiments.series import train_series
from cellgi.nn.memory import check_memory
from cellgi.nn.model import NonFiniteError
from cellgi.runfolder.runs import RunDirError, timestamp, write_json
from cellgi.spec import Spec, load_spec

__all__ = ["GridJob", "MultirunResult", "expand_grid", "run_grid", "split_values"]

#: the metrics a grid's table shows by default (those a run has)
TABLE_METRICS = ("val.pearson", "val.spearman", "test.pearson", "test.spearman", "val.mse")


def split_values(raw: str) -> list[str]:
    """Split an override value on top-level commas (outside quotes, brackets and braces).

    >>> split_values("16,32")
    ['16', '32']
    >>> split_values("'a,b',c")
    ["'a,b'", 'c']
    >>> split_values("[1,2],[3]")
    ['[1,2]', '[3]']

    Raises:
        ValueError: an unclosed quote or bracket, or an empty item (``a,,b``).
    """
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    cur: list[str] = []
    for ch in raw:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {ch!r} in {raw!r}")
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if quote:
        raise ValueError(f"unclosed quote {quote} in {raw!r}")
    if depth:
        raise ValueError(f"unclosed bracket in {raw!r}")
    parts.append("".join(cur))
    if len(parts) > 1 and any(not p.strip() for p in parts):
        raise ValueError(f"empty value in {raw!r} (a,,b or a trailing comma)")
    return parts


def expand_grid(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of the overrides' comma-separated values, in order (the last key varies
    fastest, as in Hydra). ``~key`` and single values take part in every combination.

    Raises:
        ValueError: an override whose value cannot be split (names the override).
    """
    axes: list[list[str]] = []
    for i, ov in enumerate(overrides, start=1):
        if ov.startswith("~") or "=" not in ov:
            axes.append([ov])
            continue
        key, raw = ov.split("=", 1)
        try:
            values = split_values(raw)
        except ValueError as exc:
            raise ValueError(f"override {i} ({ov}): {exc}") from None
        axes.append([f"{key}={v}" for v in values])
    return [list(combo) for combo in itertools.product(*axes)]


@dataclass
class GridJob:
    """One run of a grid."""

    number: int
    overrides: list[str]
    run_dir: Path
    status: str = "pending"  # pending, completed, failed
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def varying(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: value}`` of the overrides whose key is in ``keys`` (the grid's varying ones)."""
        out = {}
        for ov in self.overrides:
            if "=" in ov:
                k, v = ov.split("=", 1)
                if k in keys:
                    out[k] = v
        return out


@dataclass
class MultirunResult:
    """The grid's folder, its jobs and the keys that vary across them."""

    folder: Path
    jobs: list[GridJob]
    varying: list[str]
    notes: list[str] = field(default_factory=list)  # what overrides changed beyond their key (type changes)

    def rows(self, metrics: Sequence[str] = TABLE_METRICS) -> list[dict[str, Any]]:
        """One flat row per job: number, the varying values, status, the chosen metrics, run folder."""
        shown = [m for m in metrics if any(m in j.metrics for j in self.jobs)]
        out = []
        for j in self.jobs:
            row: dict[str, Any] = {"job": j.number, **j.varying(self.varying), "status": j.status}
            for m in shown:
                row[m] = j.metrics.get(m, math.nan)
            row["run_dir"] = str(j.run_dir)
            if j.error:
                row["error"] = j.error
            out.append(row)
        return out


def _varying_keys(grid: Sequence[Sequence[Any]]) -> list[str]:
    keys: list[str] = []
    for col in zip(*grid):
        if isinstance(col[0], str) and len(set(col)) > 1 and "=" in col[0]:
            keys.append(col[0].split("=", 1)[0])
    return keys


def run_grid(
    spec_path: str | Path,
    grid: Sequence[Sequence[Any]],
    *,
    runs_root: str | Path = "runs",
    folder: str | Path | None = None,
    progress: bool = False,
    console: Console | None = None,
    on_job: Callable[[GridJob], None] | None = None,
    load: Callable[[str | Path, Sequence[str]], Spec] | None = None,
) -> MultirunResult:
    """Validate every combination of ``grid`` (lists of override strings), then train one run each.

    Args:
        spec_path: the spec file.
        grid: the override lists (:func:`expand_grid`; strings or parsed overrides).
        runs_root: parent of the default folder, ``runs_root/<name>/multirun-<timestamp>``.
        folder: where the grid goes instead (must not exist).
        progress: show each run's progress bar.
        console: where each run's own messages go (default: nowhere).
        on_job: called after every job (started and finished).
        load: ``(spec_path, overrides) -> Spec`` (default :func:`cellgi.spec.load_spec`).

    A run that diverges (non-finite loss) is recorded as failed and the grid goes on; any other error
    (data, run folder, interrupt) stops the grid after writing the table of the jobs so far.

    Raises:
        SpecError: a combination is invalid (nothing was trained).
        RunDirError: ``folder`` exists.
    """
    notes: list[str] = []
    load = load or (lambda p, ovs: load_spec(p, list(ovs), notes=notes, checks=[check_memory]))
    specs = [load(spec_path, combo) for combo in grid]  # all validated before anything runs
    name = specs[0].name if specs else "multirun"
    out = Path(folder) if folder is not None else Path(runs_root) / name / f"multirun-{timestamp()}"
    if out.exists():
        raise RunDirError(f"{out} exists; a multirun never writes into an existing folder")
    out.mkdir(parents=True)
    console = console or Console(quiet=True)
    jobs = [GridJob(i, [o if isinstance(o, str) else o.label for o in combo], out / str(i))
            for i, combo in enumerate(grid)]
    result = MultirunResult(out, jobs, _varying_keys(grid), list(dict.fromkeys(notes)))
    try:
        for job, spec in zip(jobs, specs):
            try:
                res = train_series(spec, run_dir=job.run_dir, progress=progress, console=console)  # one run each
                for part in report(res):  # the run's summary, as `cellgi train` prints it
                    console.print(part)
                job.status, job.metrics = "completed", dict(res.metrics)
            except NonFiniteError as exc:
                job.status, job.error = "failed", f"training diverged: {exc}"
            except BaseException as exc:
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                if on_job is not None:
                    on_job(job)
    finally:
        write_table(result)
    return result


def write_table(result: MultirunResult) -> None:
    """``multirun.csv`` (one row per job) and ``multirun.json`` (jobs with every metric)."""
    rows = result.rows()
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with (result.folder / "multirun.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    write_json(result.folder / "multirun.json", {
        "varying": result.varying,
        "jobs": [{**asdict(j), "run_dir": str(j.run_dir)} for j in result.jobs],
    })
