"""What notebooks import: one :class:`Model` object that trains, predicts, screens, evaluates and saves.

Example::

    import cellgi

    model = cellgi.fit("quickstart", overrides=["training.max_epochs=2"])   # or cellgi.Model.fit(...)
    df = model.predict([["YAL015C", "YBL007C"], "abf1;rad51;sir2"])      # pandas.DataFrame
    top = model.screen(["YAL015C"], arrays=model.genes[:100])            # query x array genes, DataFrame
    report = model.evaluate("screen.tsv", format="kuzmin")               # metrics dict
    emb = model.embeddings()                                             # genes x H DataFrame
    model.save("my_model")                                               # a run folder cellgi.load reads
    model = cellgi.load("my_model")      # or a pretrained name: cellgi.load("emap_real")

``cellgi.fit(spec, data=df)`` trains on a DataFrame of gene sets and scores, with the genes, graphs and
features of ``spec``. ``import cellgi`` stays light: torch, Lightning and pandas are imported when these are
first called.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence, overload

from rich.console import Console

from cellgi.errors import CellgiError
from cellgi.examples import resolve_spec_path
from cellgi.predictors import load_predictor
from cellgi.runfolder.pretrained import resolve_model_path
from cellgi.runfolder.runs import INPUTS_DIR, create_run_dir, release_run_dir
from cellgi.spec import Spec, load_spec
from cellgi.spec.overrides import validate_with_overrides

# `import cellgi; cellgi.load` imports this module (the lazy attributes of cellgi/__init__.py) and must not
# pull torch, Lightning or pandas (startup time; tests/test_api.py::test_import_is_light): the modules that
# do (cellgi.apps.*, cellgi.experiments.*, cellgi.nn.memory, torch, pandas) are imported where they are used.

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    from torch import nn

    from cellgi.apps.screen import ScreenReport
    from cellgi.experiments.series import SeriesResult
    from cellgi.predictors.base import TrainedPredictor

    #: what :func:`train` and :meth:`Model.fit` take as a spec: a file, an example name, spec data, a Spec
    SpecSource = str | Path | Mapping[str, Any] | Spec

__all__ = ["FitDataError", "GeneSetError", "Model", "fit", "load", "train"]


class GeneSetError(ValueError):
    """A gene set that cannot be predicted (unknown gene, a gene named twice, empty set)."""


class FitDataError(CellgiError, ValueError):
    """A DataFrame :meth:`Model.fit` cannot train on (no gene column, no target column, a synthetic spec)."""

    exit_code = 2


def _pandas() -> ModuleType:
    import pandas as pd  # a core dependency; imported on first use (startup time, the comment at the top)

    return pd


def _kind(n: int) -> str:
    return {1: "single", 2: "digenic", 3: "trigenic"}.get(n, f"{n}-genic")


class Model:
    """A trained model with its gene list, mapper and target units.

    Make one with :meth:`Model.fit` (train a spec, or a DataFrame of scored gene sets) or :meth:`Model.load`
    (a run folder, checkpoint file or pretrained name); then :meth:`predict`, :meth:`screen`,
    :meth:`evaluate`, :meth:`embeddings`, :meth:`save`. :func:`cellgi.fit` and :func:`cellgi.load` are the
    same two constructors.
    """

    def __init__(self, loaded: TrainedPredictor, source: str | Path | None = None):
        self._loaded = loaded
        self._source = Path(source) if source is not None else None
        self.train_result: SeriesResult | None = None  #: what training returned, for a model made by :meth:`fit`

    # ---------------------------------------------------------------------------- constructors
    @classmethod
    def load(cls, run_or_checkpoint: str | Path, *, device: str = "cpu",
             prefer: Literal["best", "last"] = "best") -> Model:
        """The model of a run folder, checkpoint file or pretrained name (see :func:`cellgi.load`)."""
        return load(run_or_checkpoint, device=device, prefer=prefer)

    @classmethod
    def fit(
        cls,
        spec: SpecSource,
        data: pd.DataFrame | None = None,
        *,
        overrides: Sequence[str] = (),
        gene_columns: Sequence[str] | None = None,
        genes_column: str | None = None,
        target_columns: Mapping[str, str] | None = None,
        weight_column: str | None = None,
        split_column: str | None = None,
        source: str | None = None,
        run_dir: str | Path | None = None,
        runs_root: str | Path = "runs",
        progress: bool = False,
        device: str = "cpu",
    ) -> Model:
        """Train a model and return it loaded (the run folder stays on disk: :attr:`run_dir`).

        Args:
            spec: a spec file, a shipped example name (``"quickstart"``, ``"emap_real"``), a dict of spec
                data or a validated :class:`~cellgi.spec.Spec` (as :func:`cellgi.train` takes).
            data: ``None``: train on the spec's own data. A DataFrame: train on its rows instead of the
                spec's screens, with the spec's genes, graphs, features, model and training settings. One
                row per gene set: either one ``genes_column`` of ``;``-joined genes (default ``"genes"``
                when present) or ``gene_columns`` (default ``gene_a, gene_b[, gene_c]`` when present;
                an empty cell means fewer genes), and one column per target (``target_columns`` maps target
                name to column; default: the spec's targets, found by name). Genes may be ORFs, standard
                names or aliases, as the spec's gene list maps them.
            overrides: ``KEY.PATH=VALUE`` strings, as on the command line.
            weight_column: an optional column of per-row weights.
            split_column: an optional column of ``train``/``val``/``test`` (needs ``data.split.kind=column``,
                given here as an override).
            source: a few words on where ``data`` came from, recorded in the run (default: "a pandas
                DataFrame").
            run_dir: the run folder to create (default ``runs_root/<spec name>/<timestamp>``).
            runs_root: the folder under which a new run folder is made when ``run_dir`` is not given.

        The DataFrame is written into the run folder as ``inputs/data.tsv`` beside ``inputs/data.json``
        (rows, columns, SHA-256 of the table, ``source``, the base spec and the screen entry made from it),
        and the run's ``spec.yaml`` names that table as its screen: the run records what it was trained on.

        Raises:
            FitDataError: a DataFrame without usable gene or target columns, or with a synthetic spec
                (which generates its own samples).
            cellgi.spec.SpecError: an invalid spec or override, before anything is trained.
        """
        if data is None:
            result = train(spec, overrides, run_dir=run_dir, runs_root=runs_root, progress=progress)
        else:
            result = _fit_frame(spec, data, overrides, gene_columns=gene_columns, genes_column=genes_column,
                                target_columns=target_columns, weight_column=weight_column,
                                split_column=split_column, source=source, run_dir=run_dir,
                                runs_root=runs_root, progress=progress)
        model = load(result.run_dir, device=device)
        model.train_result = result
        return model

    # ---------------------------------------------------------------------------------- saving
    @property
    def run_dir(self) -> Path | None:
        """The folder this model was loaded from (a run, replicates or pretrained folder); None for a
        checkpoint file loaded alone."""
        return self._source if self._source is not None and self._source.is_dir() else None

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model to ``path`` so that :func:`cellgi.load` (and every ``cellgi`` command) reads it back.

        A model loaded from a folder (a run, a seed ensemble, a stacked or pretrained folder) is copied
        whole, its checkpoints, metrics and plots included; one loaded from a checkpoint file is copied as
        that file (``path`` then names the new file). Returns the written path.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
        """
        dest = Path(path).expanduser()
        if dest.exists():
            if not overwrite:
                raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it")
            if dest.resolve() == (self.run_dir or self.path).resolve():
                raise ValueError(f"{dest} is where this model was loaded from")
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        if self.run_dir is not None:
            shutil.copytree(self.run_dir, dest, ignore=shutil.ignore_patterns("run.lock"))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.path, dest)
        return dest

    # ------------------------------------------------------------------------------- description
    @property
    def path(self) -> Path:
        """The checkpoint file the weights came from."""
        return self._loaded.path

    @property
    def trained_predictor(self) -> TrainedPredictor:
        """What predicts (:class:`~cellgi.predictors.base.TrainedPredictor`: one network, a seed ensemble, a
        stack, a plugin's kind), for code that works with the predictors layer directly."""
        return self._loaded

    @property
    def spec(self) -> Spec:
        """The validated spec the model was trained with."""
        return self._loaded.spec

    @property
    def target_names(self) -> list[str]:
        """What the model predicts (``gene_interaction``, ``fitness``, ...), in output-column order."""
        return list(self._loaded.target_names)

    @property
    def genes(self) -> list[str]:
        """The model's genes (ORFs), in embedding order."""
        return list(self._loaded.mapper.genes)

    @overload
    def name_of(self, genes: str) -> str: ...
    @overload
    def name_of(self, genes: Iterable[str]) -> list[str]: ...

    def name_of(self, genes: str | Iterable[str]) -> str | list[str]:
        """Standard name(s) of ORFs (``"YML032C" -> "RAD52"``), from the gene list the model was trained
        with (SGD_features.tab). A str gives a str, a list gives a list; an ORF without a standard name
        gives the ORF itself. Any identifier the model maps (alias, lower case) is accepted.

        Raises:
            GeneSetError: an identifier the model does not know.
        """
        one = isinstance(genes, str)
        out = []
        for g in [genes] if one else list(genes):
            orf = self._orf(str(g))
            out.append(self._standard_names().get(orf, orf))
        return out[0] if one else out

    @overload
    def orf_of(self, names: str) -> str: ...
    @overload
    def orf_of(self, names: Iterable[str]) -> list[str]: ...

    def orf_of(self, names: str | Iterable[str]) -> str | list[str]:
        """ORF(s) of gene names, standard names or aliases (``"rad52" -> "YML032C"``); a str gives a str, a
        list a list.

        Raises:
            GeneSetError: a name the model does not know (with the reason: unknown, ambiguous alias, ...).
        """
        if isinstance(names, str):
            return self._orf(names)
        return [self._orf(str(x)) for x in names]

    @property
    def gene_table(self) -> pd.DataFrame:
        """One row per model gene, in embedding order: ``orf`` and ``name`` (standard name, or the ORF)."""
        pd = _pandas()
        names = self._standard_names()
        return pd.DataFrame({"orf": self.genes, "name": [names.get(g, g) for g in self.genes]})

    def _orf(self, ident: str) -> str:
        gene, reason = self._loaded.mapper.resolve(ident)
        if gene is None:
            raise GeneSetError(f"{ident!r}: {reason}")
        return gene

    def _standard_names(self) -> dict[str, str]:
        cached = getattr(self, "_names_cache", None)
        if cached is None:
            cached = {}
            for name, orf in self._loaded.mapper.names.items():
                cached.setdefault(orf, name)
            self._names_cache = cached
        return cached

    @property
    def torch_model(self) -> nn.Module:
        """The underlying :class:`~cellgi.nn.model.LazyDango` module (a seed ensemble's module averages its
        members; for a stacked folder it is the network alone: :meth:`predict` adds the baselines)."""
        return self._loaded.model

    @property
    def predictor(self) -> str:
        """What :meth:`predict` uses, in words: one network, a seed ensemble, or a stack with its weights."""
        return self._loaded.describe()

    def __repr__(self) -> str:
        return (
            f"cellgi.Model({str(self.path)!r}, genes={len(self.genes)}, targets={self.target_names}, "
            f"model={self.spec.model.conv.type} x {self.spec.model.num_layers} (H={self.spec.model.hidden_dim}))"
        )

    # ----------------------------------------------------------------------------------- predict
    def _map_set(self, item: str | Sequence[str]) -> tuple[str, list[int]]:
        from cellgi.apps.predict import parse_gene_set_line

        names = [x.strip() for x in item.split(";")] if isinstance(item, str) else [str(x).strip() for x in item]
        text = ";".join(names)
        idx, reason = parse_gene_set_line(text, self._loaded.mapper)
        if idx is None:
            raise GeneSetError(f"{text!r}: {reason}")
        return text, idx

    def predict(
        self,
        gene_sets: Iterable[str | Sequence[str]],
        *,
        batch_size: int | None = None,
        errors: Literal["raise", "skip"] = "raise",
    ) -> pd.DataFrame:
        """Predictions for gene sets, one row per set, in input order.

        Args:
            gene_sets: each a list of genes (``["YAL015C", "YBL007C"]``) or a ``;``-joined string
                (``"abf1;rad51;sir2"``); ORFs, common names, aliases and STRING ids the training data's
                mapper knows. Digenic and trigenic sets may be mixed.
            batch_size: gene sets per batch (default: the predictor's ``default_batch_size``).
            errors: ``"raise"`` (default): a set that cannot be predicted raises :class:`GeneSetError`
                naming it and the reason; ``"skip"``: such sets are left out and listed in
                ``df.attrs["skipped"]`` as ``(position, input, reason)``.

        Returns:
            A DataFrame with ``input``, ``genes`` (mapped ORFs), ``kind`` (digenic/trigenic), one column
            per target (original units), ``local_<target>`` and ``global_<target>`` (the two heads, original
            units) and ``gate_local``/``gate_global`` when the model has those parts.
        """
        from cellgi.apps.predict import predict_sets

        pd = _pandas()
        if isinstance(gene_sets, str):
            gene_sets = [gene_sets]
        inputs: list[str] = []
        sets: list[list[int]] = []
        skipped: list[tuple[int, str, str]] = []
        for pos, item in enumerate(gene_sets):
            try:
                text, idx = self._map_set(item)
            except GeneSetError as exc:
                if errors == "raise":
                    raise GeneSetError(f"gene set {pos}: {exc}") from None
                skipped.append((pos, item if isinstance(item, str) else ";".join(map(str, item)), str(exc)))
                continue
            inputs.append(text)
            sets.append(idx)
        names = self.target_names
        genes = self._loaded.mapper.genes
        cols: dict[str, Any] = {
            "input": inputs,
            "genes": [";".join(genes[g] for g in s) for s in sets],
            "kind": [_kind(len(s)) for s in sets],
        }
        if sets:
            out = predict_sets(self._loaded, sets, batch_size=None if batch_size is None else max(1, int(batch_size)))
            parts = [("", out["pred"], names), ("local_", out["local"], names), ("global_", out["global"], names),
                     ("gate_", out["gate"], ["local", "global"])]
            for prefix, values, labels in parts:
                if values is None:
                    continue
                arr = values.float().numpy()
                for j, label in enumerate(labels):
                    cols[f"{prefix}{label}"] = arr[:, j]
        else:
            for t in names:
                cols[t] = []
        df = pd.DataFrame(cols)
        df.attrs["skipped"] = skipped
        return df

    # ---------------------------------------------------------------------------------- evaluate
    def evaluate(
        self,
        file: str | Path,
        *,
        format: Literal["kuzmin", "table"] = "kuzmin",
        genes_column: str | None = None,
        gene_columns: Sequence[str] | None = None,
        target_columns: Mapping[str, str] | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
    ) -> dict[str, Any]:
        """Metrics on a file of measured samples, as ``cellgi evaluate`` computes them.

        ``format="table"`` reads a TSV/CSV with a ``genes`` column (``YAL015C;YBL007C``; or
        ``genes_column``/``gene_columns``) and a column per target (``target_columns`` maps target name to
        column). Returns the report: ``n_samples``, ``n_unmapped`` (samples with a gene the model does not
        know, skipped), ``skipped`` reasons and ``metrics`` (``"pearson"``, ``"n"``, ... for a one-target
        model; ``"<target>.pearson"`` ... with several targets). Raises :class:`cellgi.apps.evaluate.EvaluateError` when no sample is
        left and :class:`cellgi.data.errors.DataError` for an unusable file.
        """
        from cellgi.apps.evaluate import evaluate_screen, screen_description

        screen = screen_description(file, format, self.target_names, gene_columns=gene_columns,
                                    genes_column=genes_column, target_columns=target_columns)
        return evaluate_screen(self._loaded, screen, batch_size=batch_size, device=device)

    # ------------------------------------------------------------------------------------ screen
    def screen(
        self,
        queries: Sequence[str | Sequence[str]] = (),
        *,
        arrays: Sequence[str] | None = None,
        pairs_of: Sequence[str] | None = None,
        output: str | Path | None = None,
        top_k: int = 20,
        rank_target: str | None = None,
        batch_size: int | None = None,
        overwrite: bool = False,
        resume: bool = False,
        progress: bool = False,
    ) -> pd.DataFrame | ScreenReport:
        """Predict a whole screen, as ``cellgi screen`` does: every query gene set with every array gene
        (``arrays``; default every model gene), or with every pair of ``pairs_of`` (trigenic screens);
        with no query and ``pairs_of``, every pair of that list.

        Args:
            queries: gene sets (``"YAL015C"``, ``"rad51;sir2"``, ``["RAD51", "SIR2"]``).
            output: ``None`` (default): the rows come back as a DataFrame (``query``, ``array``, one
                column per target) with the run's report in ``df.attrs["report"]``. A ``.tsv`` or
                ``.parquet`` path: rows are streamed there (for screens too large to hold in memory),
                beside ``<stem>.top.tsv`` (the ``top_k`` strongest per query) and ``<stem>.screen.json``,
                and the :class:`~cellgi.apps.screen.ScreenReport` is returned.
            top_k: the strongest pairs kept per query (``cellgi screen --top-k``).
            rank_target: the target the top list ranks by (``--rank-target``).
            batch_size: gene sets scored per batch (``--batch-size``; default: the predictor's
                ``default_batch_size``).
            overwrite: replace an existing output (``--overwrite``).
            resume: continue a partial output made by this model and plan (``--resume``).

        Raises:
            cellgi.apps.screen.ScreenError: an unknown or repeated gene, an empty screen, an output in the way.
        """
        from cellgi.apps.screen import plan_screen, run_screen

        qtexts = [q if isinstance(q, str) else ";".join(map(str, q)) for q in ([queries] if isinstance(queries, str) else queries)]
        plan = plan_screen(self._loaded.mapper, qtexts, arrays=None if arrays is None else list(arrays),
                           pairs_of=None if pairs_of is None else list(pairs_of))
        if output is not None:
            return run_screen(self._loaded, plan, output, top_k=top_k, batch_size=batch_size,
                              rank_target=rank_target, resume=resume, overwrite=overwrite, progress=progress)
        pd = _pandas()
        with tempfile.TemporaryDirectory(prefix="cellgi-screen-") as tmp:
            report = run_screen(self._loaded, plan, Path(tmp) / "screen.tsv", top_k=0, batch_size=batch_size,
                                rank_target=rank_target, progress=progress)
            df = pd.read_csv(report.output, sep="\t",
                             dtype={"query": str, "array": str})
        df.attrs["report"] = {"rows": int(report.written), "seconds": float(report.seconds),
                              "predictions_per_s": float(report.predictions_per_s)}
        return df

    # -------------------------------------------------------------------------------- embeddings
    def embeddings(self, kind: Literal["wildtype", "input"] = "wildtype") -> pd.DataFrame:
        """Per-gene vectors, genes (ORFs) as the index, ``dim_0 .. dim_{H-1}`` as columns.

        ``kind="wildtype"``: each gene's state after every message-passing layer on the unperturbed
        graph (what the heads read, graph-informed); ``"input"``: the preprocessed embedding before
        message passing.
        """
        pd = _pandas()
        emb = gene_embeddings(self._loaded, kind)
        return pd.DataFrame(emb, index=pd.Index(self.genes, name="gene"),
                            columns=[f"dim_{i}" for i in range(emb.shape[1])])


def gene_embeddings(loaded: TrainedPredictor, kind: str = "wildtype") -> np.ndarray:
    """``[N, H]`` numpy array of per-gene vectors of a loaded model (see :meth:`Model.embeddings`); a
    seed ensemble or a stack is refused, naming a network to use (:meth:`TrainedPredictor.one_network
    <cellgi.predictors.base.TrainedPredictor.one_network>`)."""
    import torch

    model = loaded.one_network("gene embeddings").model
    model.eval()
    with torch.no_grad():
        if kind == "input":
            x = model.initial_states()
        elif kind == "wildtype":
            n = len(loaded.mapper.genes)
            device = next(model.parameters()).device
            x, _ = model.gene_states(torch.ones(n, 1, dtype=torch.bool, device=device))
            x = x[:, 0]
        else:
            raise ValueError(f"kind must be 'wildtype' or 'input', not {kind!r}")
    return x.float().cpu().numpy()


def load(run_or_checkpoint: str | Path, *, device: str = "cpu", prefer: Literal["best", "last"] = "best") -> Model:
    """A trained model from a run folder (``model.pt``, else ``checkpoints/best.ckpt``) or a checkpoint;
    a replicates folder (``cellgi train --seeds``) loads as a seed ensemble (predictions averaged); a
    pretrained name (``"emap_real"``; built once by ``cellgi pretrained build NAME``, see
    :mod:`cellgi.pretrained`) loads its built folder.

    Raises :class:`cellgi.runfolder.checkpoint.CheckpointError` when the file is unusable and
    :class:`cellgi.runfolder.pretrained.PretrainedNotBuiltError` (naming the command to run) for a name not
    built yet.
    """
    path = resolve_model_path(run_or_checkpoint)
    loaded = load_predictor(path, map_location="cpu", prefer=prefer)
    loaded.to(device)
    return Model(loaded, source=path)


def _resolve_spec(spec_or_path: SpecSource, overrides: Sequence[str]) -> Spec:
    """A validated :class:`~cellgi.spec.Spec` from what :func:`train` accepts."""
    if isinstance(spec_or_path, (str, Path)):
        from cellgi.nn.memory import check_memory

        return load_spec(resolve_spec_path(spec_or_path), list(overrides), checks=[check_memory])
    if isinstance(spec_or_path, Spec):
        return validate_with_overrides(spec_or_path.model_dump(mode="json"), list(overrides)) if overrides else spec_or_path
    if isinstance(spec_or_path, Mapping):
        return validate_with_overrides(dict(spec_or_path), list(overrides), base_dir=Path.cwd())
    raise TypeError(f"spec_or_path: expected a path, example name, dict or Spec, not {type(spec_or_path).__name__}")


def _frame_columns(df: pd.DataFrame, targets: Sequence[str], gene_columns: Sequence[str] | None, genes_column: str | None,
                   target_columns: Mapping[str, str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The screen-table options (gene columns) and target -> column map for a DataFrame."""
    cols = [str(c) for c in df.columns]
    if gene_columns is not None and genes_column is not None:
        raise FitDataError("give gene_columns or genes_column, not both")
    if gene_columns is None and genes_column is None:
        if "genes" in cols:
            genes_column = "genes"
        elif "gene_a" in cols and "gene_b" in cols:
            gene_columns = [c for c in ("gene_a", "gene_b", "gene_c") if c in cols]
        else:
            raise FitDataError(f"no gene column: name one with genes_column= (';'-joined genes) or gene_columns= "
                               f"(one gene per column); the DataFrame has {cols}")
    for c in [genes_column] if genes_column is not None else list(gene_columns or []):
        if c not in cols:
            raise FitDataError(f"gene column {c!r} is not in the DataFrame (columns: {cols})")
    if target_columns is None:
        target_columns = {t: t for t in targets if t in cols}
        if not target_columns:
            raise FitDataError(f"no target column: the spec's targets {list(targets)} are not DataFrame columns "
                               f"(columns: {cols}); map them with target_columns={{'{targets[0]}': 'COLUMN'}}")
    bad = {t: c for t, c in target_columns.items() if c not in cols}
    if bad:
        raise FitDataError(f"target columns {bad} are not in the DataFrame (columns: {cols})")
    extra = [t for t in target_columns if t not in targets]
    if extra:
        raise FitDataError(f"target_columns names {extra}, not targets of the spec ({list(targets)}); "
                           f"add them with the override data.targets=[...]")
    opts: dict[str, Any] = {"genes_column": genes_column} if genes_column is not None else {"gene_columns": list(gene_columns or [])}
    return opts, dict(target_columns)


def _fit_frame(spec_or_path: SpecSource, df: pd.DataFrame, overrides: Sequence[str], *, gene_columns: Sequence[str] | None,
               genes_column: str | None, target_columns: Mapping[str, str] | None, weight_column: str | None,
               split_column: str | None, source: str | None, run_dir: str | Path | None, runs_root: str | Path,
               progress: bool) -> SeriesResult:
    """Train ``spec_or_path`` on the rows of ``df`` (see :meth:`Model.fit`); returns what :func:`train` does."""
    pd = _pandas()
    if not isinstance(df, pd.DataFrame):
        raise FitDataError(f"data: expected a pandas DataFrame, not {type(df).__name__}")
    if len(df) == 0:
        raise FitDataError("data: the DataFrame has no rows")
    base = _resolve_spec(spec_or_path, overrides)
    if base.data.synthetic is not None:
        raise FitDataError("data= needs a spec whose genes and graphs come from files (e.g. 'emap_real' or your "
                           "own); a synthetic spec generates its own graph and samples")
    opts, tcols = _frame_columns(df, base.data.targets, gene_columns, genes_column, target_columns)
    for what, c in (("weight_column", weight_column), ("split_column", split_column)):
        if c is not None and c not in df.columns:
            raise FitDataError(f"{what} {c!r} is not in the DataFrame (columns: {[str(x) for x in df.columns]})")
    keep = ([opts["genes_column"]] if "genes_column" in opts else opts["gene_columns"]) + list(dict.fromkeys(tcols.values()))
    keep += [c for c in (weight_column, split_column) if c is not None]
    table = df[keep]

    rdir = create_run_dir(base.name, runs_root=runs_root, run_dir=run_dir)
    inputs = rdir / INPUTS_DIR
    inputs.mkdir()
    release_run_dir(rdir)  # the run claims it again when it starts
    tsv = inputs / "data.tsv"
    table.to_csv(tsv, sep="\t", index=False, na_rep="")
    entry: dict[str, Any] = {"format": "table", "path": str(tsv.resolve()), "target_columns": tcols, **opts}
    if weight_column is not None:
        entry["weight_column"] = weight_column
    if split_column is not None:
        entry["split_column"] = split_column
    data = base.model_dump(mode="json", exclude_none=True)
    data["data"]["screens"] = [entry]
    spec = validate_with_overrides(data, [])
    record = {
        "source": source or "a pandas DataFrame",
        "rows": int(len(table)),
        "columns": [str(c) for c in table.columns],
        "sha256": hashlib.sha256(tsv.read_bytes()).hexdigest(),
        "base_spec": str(spec_or_path) if isinstance(spec_or_path, (str, Path)) else type(spec_or_path).__name__,
        "base_spec_name": base.name,
        "base_screens": [s.model_dump(mode="json", exclude_none=True) for s in base.data.screens],
        "screen": entry,
    }
    (inputs / "data.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return _train_path(spec, run_dir=rdir, runs_root=runs_root, progress=progress)


def fit(*args: Any, **kwargs: Any) -> Model:  # signature and docstring: Model.fit's (functools.wraps below)
    return Model.fit(*args, **kwargs)


fit = functools.wraps(Model.fit)(fit)  # help(cellgi.fit) and tab completion show Model.fit's arguments


def train(
    spec_or_path: SpecSource,
    overrides: Sequence[str] = (),
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    progress: bool = False,
) -> SeriesResult:
    """Train one run, as ``cellgi train`` does (the same path: :func:`cellgi.experiments.series.train_series`);
    returns a :class:`~cellgi.experiments.series.SeriesResult` (``run_dir``, ``metrics`` such as
    ``result.metrics["test.gene_interaction.pearson"]``, ``run``: the run's checkpoints and epochs).
    A spec with ``training.seeds`` trains one run per seed, as ``cellgi train --seeds`` (``run_dir``: the
    replicates folder, which ``cellgi.load`` loads as the seed ensemble; ``metrics``: the ensemble's).

    ``spec_or_path``: a spec file, a shipped example name (``"quickstart"``), a dict of spec data, or a
    validated :class:`~cellgi.spec.Spec`; ``overrides``: ``KEY.PATH=VALUE`` strings as on the command line.
    Raises :class:`~cellgi.spec.SpecError` for an invalid spec or override, before any data is read.
    """
    return _train_path(_resolve_spec(spec_or_path, overrides), run_dir=run_dir, runs_root=runs_root, progress=progress)


def _train_path(spec: Spec, *, run_dir: str | Path | None, runs_root: str | Path, progress: bool) -> SeriesResult:
    """The training path ``cellgi train`` takes (a run, or a series with ``training.seeds``), its report printed."""
    from cellgi.experiments.report import report
    from cellgi.experiments.series import train_series

    console = Console(soft_wrap=True)
    seeds = list(spec.training.seeds) if spec.training.seeds else None
    result = train_series(spec, seeds, run_dir=run_dir, runs_root=runs_root, progress=progress, console=console)
    for part in report(result):
        console.print(part)
    return result
