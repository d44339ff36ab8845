"""What notebooks import: :func:`load` a trained model, :func:`train` a spec.

Example::

    import cellgi

    result = cellgi.train("configs/quickstart.yaml", overrides=["training.max_epochs=2"])
    model = cellgi.load(result.run_dir)
    df = model.predict([["YAL015C", "YBL007C"], "abf1;rad51;sir2"])   # pandas.DataFrame
    report = model.evaluate("screen.tsv", format="kuzmin")              # metrics dict
    emb = model.embeddings()                                            # genes x H DataFrame

``import cellgi`` stays light: torch, Lightning and pandas are imported when these are first called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["GeneSetError", "Model", "load", "train"]


class GeneSetError(ValueError):
    """A gene set that cannot be predicted (unknown gene, a gene named twice, empty set)."""


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the test and parquet extras
        raise ImportError("cellgi.load(...).predict returns a pandas DataFrame: pip install pandas") from None
    return pd


def _kind(n: int) -> str:
    return {1: "single", 2: "digenic", 3: "trigenic"}.get(n, f"{n}-genic")


class Model:
    """A trained model with its gene list, mapper and target units (see :func:`load`)."""

    def __init__(self, loaded: Any):
        self._loaded = loaded

    # ------------------------------------------------------------------------------- description
    @property
    def path(self) -> Path:
        """The checkpoint file the weights came from."""
        return self._loaded.path

    @property
    def spec(self) -> Any:
        """The validated spec the model was trained with."""
        return self._loaded.spec

    @property
    def target_names(self) -> list[str]:
        return list(self._loaded.target_names)

    @property
    def genes(self) -> list[str]:
        """The model's genes (ORFs), in embedding order."""
        return list(self._loaded.mapper.genes)

    @property
    def torch_model(self) -> Any:
        """The underlying :class:`~cellgi.nn.model.LazyDango` module (a seed ensemble's module averages its
        members; for a stacked folder it is the network alone: :meth:`predict` adds the baselines)."""
        return self._loaded.model

    @property
    def predictor(self) -> str:
        """What :meth:`predict` uses, in words: one network, a seed ensemble, or a stack with its weights."""
        from cellgi.evaluate import describe_predictor

        return describe_predictor(self._loaded)

    def __repr__(self) -> str:
        return (
            f"cellgi.Model({str(self.path)!r}, genes={len(self.genes)}, targets={self.target_names}, "
            f"model={self.spec.model.conv.type} x {self.spec.model.num_layers} (H={self.spec.model.hidden_dim}))"
        )

    # ----------------------------------------------------------------------------------- predict
    def _map_set(self, item: str | Sequence[str]) -> tuple[str, list[int]]:
        from cellgi.predict import parse_gene_set_line

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
        batch_size: int = 256,
        errors: Literal["raise", "skip"] = "raise",
    ) -> "pd.DataFrame":
        """Predictions for gene sets, one row per set, in input order.

        Args:
            gene_sets: each a list of genes (``["YAL015C", "YBL007C"]``) or a ``;``-joined string
                (``"abf1;rad51;sir2"``); ORFs, common names, aliases and STRING ids the training data's
                mapper knows. Digenic and trigenic sets may be mixed.
            errors: ``"raise"`` (default): a set that cannot be predicted raises :class:`GeneSetError`
                naming it and the reason; ``"skip"``: such sets are left out and listed in
                ``df.attrs["skipped"]`` as ``(position, input, reason)``.

        Returns:
            A DataFrame with ``input``, ``genes`` (mapped ORFs), ``kind`` (digenic/trigenic), one column
            per target (original units), ``local_<target>`` and ``global_<target>`` (the two heads, original
            units) and ``gate_local``/``gate_global`` when the model has those parts.
        """
        from cellgi.predict import predict_sets

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
            out = predict_sets(self._loaded, sets, batch_size=max(1, int(batch_size)))
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
        model; ``"<target>.pearson"`` ... with several targets). Raises :class:`cellgi.evaluate.EvaluateError` when no sample is
        left and :class:`cellgi.data.errors.DataError` for an unusable file.
        """
        from cellgi.evaluate import evaluate_screen, screen_description

        screen = screen_description(file, format, self.target_names, gene_columns=gene_columns,
                                    genes_column=genes_column, target_columns=target_columns)
        return evaluate_screen(self._loaded, screen, batch_size=batch_size, device=device)

    # -------------------------------------------------------------------------------- embeddings
    def embeddings(self, kind: Literal["wildtype", "input"] = "wildtype") -> "pd.DataFrame":
        """Per-gene vectors, genes (ORFs) as the index, ``dim_0 .. dim_{H-1}`` as columns.

        ``kind="wildtype"``: each gene's state after every message-passing layer on the unperturbed
        graph (what the heads read, graph-informed); ``"input"``: the preprocessed embedding before
        message passing.
        """
        pd = _pandas()
        emb = gene_embeddings(self._loaded, kind)
        return pd.DataFrame(emb, index=pd.Index(self.genes, name="gene"),
                            columns=[f"dim_{i}" for i in range(emb.shape[1])])


def gene_embeddings(loaded: Any, kind: str = "wildtype") -> Any:
    """``[N, H]`` numpy array of per-gene vectors of a loaded model (see :meth:`Model.embeddings`)."""
    import torch

    from cellgi.ensemble import require_single_model

    require_single_model(loaded, "gene embeddings")
    model = loaded.model
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
    a replicates folder (``cellgi train --seeds``) loads as a seed ensemble (predictions averaged).

    Raises :class:`cellgi.train.checkpoint.CheckpointError` when the file is unusable.
    """
    from cellgi.train.checkpoint import load_model

    loaded = load_model(run_or_checkpoint, map_location="cpu", prefer=prefer)
    loaded.model.to(device)
    return Model(loaded)


def train(
    spec_or_path: Any,
    overrides: Sequence[str] = (),
    *,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    progress: bool = False,
) -> Any:
    """Train one run, as ``cellgi train`` does; returns :class:`~cellgi.train.runner.TrainResult`
    (``run_dir``, ``metrics`` such as ``result.metrics["test.gene_interaction.pearson"]``, checkpoints).
    A spec with ``training.seeds`` trains one run per seed, as ``cellgi train --seeds``, and returns a
    :class:`~cellgi.train.replicates.ReplicatesResult` (``run_dir``: the replicates folder, which
    ``cellgi.load`` loads as the seed ensemble; ``metrics``: the ensemble's).

    ``spec_or_path``: a spec file, a shipped example name (``"quickstart"``), a dict of spec data, or a
    validated :class:`~cellgi.spec.Spec`; ``overrides``: ``KEY.PATH=VALUE`` strings as on the command line.
    Raises :class:`~cellgi.spec.SpecError` for an invalid spec or override, before any data is read.
    """
    from cellgi.spec import Spec
    from cellgi.spec.overrides import validate_with_overrides
    from cellgi.train.runner import train as run_training

    if isinstance(spec_or_path, (str, Path)):
        from cellgi.examples import resolve_spec_path
        from cellgi.spec import load_spec

        spec = load_spec(resolve_spec_path(spec_or_path), list(overrides))
    elif isinstance(spec_or_path, Spec):
        spec = validate_with_overrides(spec_or_path.model_dump(mode="json"), list(overrides)) if overrides else spec_or_path
    elif isinstance(spec_or_path, Mapping):
        spec = validate_with_overrides(dict(spec_or_path), list(overrides), base_dir=Path.cwd())
    else:
        raise TypeError(f"spec_or_path: expected a path, example name, dict or Spec, not {type(spec_or_path).__name__}")
    if spec.training.seeds:
        from cellgi.train.replicates import ReplicatesResult, train_replicates

        return ReplicatesResult.from_dict(
            train_replicates(spec, spec.training.seeds, run_dir=run_dir, runs_root=runs_root, progress=progress))
    return run_training(spec, run_dir=run_dir, runs_root=runs_root, progress=progress)
