"""Checkpoints that rebuild the model on their own, open without executing code, and detect damage.

A cellgi checkpoint is a ``torch.save`` file holding only tensors and plain containers, so it is read
with ``torch.load(weights_only=True)`` (a file with any other object is refused). Two kinds:

- Lightning checkpoints (``checkpoints/last.ckpt``, ``checkpoints/best.ckpt``): Lightning's own state
  (``state_dict`` with ``model.``-prefixed keys, optimiser, schedulers, loops) plus a ``cellgi`` entry;
  used to resume training.
- the model file (``model.pt``, written at the end of a run from the best checkpoint): ``{"format":
  "cellgi-model", "state_dict", "cellgi"}``, weights only, for sharing and prediction.

The ``cellgi`` entry (:func:`build_metadata`) holds everything needed to rebuild the model without the
training data: the validated spec (JSON of ``spec.model_dump``), target names, the gene list, the gene
mapper (common names and aliases), the graph (``edge_index`` per type, directed flags, weights) and the
target normaliser, plus a SHA-256 ``digest`` over the model weights and that metadata. A file that is
truncated, not a checkpoint, holds code, or whose content no longer matches its digest raises
:class:`CheckpointError` naming the file.

This module is the file format only; rebuilding the model from a file is
:func:`cellgi.predictors.network.load_network` (and any trained predictor:
:func:`cellgi.predictors.load_predictor`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import Tensor

from cellgi import __version__
from cellgi.errors import CellgiError
from cellgi.fileio import atomic_open
from cellgi.runfolder.runs import CKPT_DIR, MODEL_FILE, write_error

if TYPE_CHECKING:  # pragma: no cover - types only (the data and spec layers are not needed to read a file)
    from cellgi.data.cellgraph import CellGraph
    from cellgi.data.genes import GeneMapper
    from cellgi.data.normalize import TargetNormalizer
    from cellgi.spec import Spec

__all__ = [
    "CHECKPOINT_KEY",
    "FORMAT_VERSION",
    "MODEL_FILE_FORMAT",
    "AtomicCheckpointIO",
    "CheckpointError",
    "atomic_torch_save",
    "build_metadata",
    "compute_digest",
    "load_weights_only",
    "model_state_of",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_model_file",
]

#: key of the cellgi metadata inside a checkpoint
CHECKPOINT_KEY = "cellgi"
#: version of the metadata layout
FORMAT_VERSION = 1
#: ``format`` value of a standalone model file
MODEL_FILE_FORMAT = "cellgi-model"


class CheckpointError(CellgiError):
    """A checkpoint that cannot be used: missing, truncated, not a cellgi checkpoint, unsafe, or modified.

    ``str(err)`` is ``PATH: message``.
    """

    exit_code = 2

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


# ------------------------------------------------------------------------------------------ writing
def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A reader (or a process killed with ``kill -9`` mid-write) sees either the old file or the complete
    new one, never a partial file.
    """
    p = Path(path)
    with atomic_open(p) as fh:
        torch.save(obj, fh)
    return p


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: atomic writes (:func:`atomic_torch_save`), safe reads (:func:`read_checkpoint`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as exc:  # disk full, quota, permissions: the previous file is untouched
            raise write_error(path, exc) from exc

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or "cpu", verify=True)


# ------------------------------------------------------------------------------------------ digest
def _feed(h: "hashlib._Hash", obj: Any) -> None:
    if isinstance(obj, Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"D%d" % len(obj))
        for k in sorted(obj, key=str):
            h.update(b"K" + str(k).encode())
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj))
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, bool) or obj is None:
        h.update(repr(obj).encode())
    elif isinstance(obj, (int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r}".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}")


def compute_digest(state_dict: Mapping[str, Tensor], meta: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the model weights and the metadata (its ``digest`` entry excluded)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state_dict.items()})
    _feed(h, {k: v for k, v in meta.items() if k != "digest"})
    return h.hexdigest()


def build_metadata(
    *,
    spec: Spec,
    target_names: list[str],
    graph: CellGraph,
    mapper: GeneMapper,
    normalizer: TargetNormalizer,
    extra: Mapping[str, Any] | None = None,
    feature_names: list[str] | None = None,
) -> dict[str, Any]:
    """The ``cellgi`` entry of a checkpoint (tensors, strings, numbers, lists, dicts only).

    Args:
        spec: the validated :class:`~cellgi.spec.Spec`.
        target_names: the model's ``T`` targets, in output order.
        graph: the :class:`~cellgi.data.cellgraph.CellGraph` the model was built on.
        mapper: the :class:`~cellgi.data.genes.GeneMapper` of the training gene list.
        normalizer: the fitted :class:`~cellgi.data.normalize.TargetNormalizer`.
        extra: more plain values (versions, plugins, split description, ...).
        feature_names: names of the per-gene feature columns (``DataBundle.feature_names``): components
            that read feature columns by name (``gene_values`` of the pair head) are rebuilt from them.
    """
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "cellgi_version": __version__,
        "spec_json": json.dumps(spec.model_dump(mode="json"), sort_keys=True),
        "target_names": list(target_names),
        "genes": list(graph.genes),
        "mapper": mapper.to_dict(),
        "graph": graph.state_dict(),
        "normalizer": normalizer.state_dict(),
        "feature_names": list(feature_names or []),
    }
    if extra:
        meta["extra"] = dict(extra)
    return meta


# ------------------------------------------------------------------------------------------ reading
def load_weights_only(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never code.

    Raises:
        CheckpointError: naming the file: missing, a folder, holding other objects, truncated or corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(p, "no such file")
    if p.is_dir():
        raise CheckpointError(p, "is a folder, not a checkpoint file (give a run folder to resolve_checkpoint)")
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(
                p,
                "refused: the file holds objects other than tensors and plain containers, and loading it "
                f"could execute code; cellgi only opens weights-only checkpoints ({first})",
            ) from None
        raise CheckpointError(p, f"not a readable checkpoint (corrupt or truncated?): {first}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
            AttributeError, TypeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            p, f"not a readable checkpoint (truncated, corrupt, or not a PyTorch file): {type(exc).__name__}: {first}"
        ) from None
    return obj


def read_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu", verify: bool = True) -> dict[str, Any]:
    """Open a checkpoint safely (``weights_only=True``); check it is a cellgi checkpoint and, with
    ``verify``, that its weights and metadata match the stored digest.

    Raises:
        CheckpointError: naming the file, for every way the file can be unusable.
    """
    p = Path(path)
    obj = load_weights_only(p, map_location=map_location)
    if not isinstance(obj, dict) or CHECKPOINT_KEY not in obj or "state_dict" not in obj:
        raise CheckpointError(p, "not a cellgi checkpoint (no 'cellgi' metadata and model weights in it)")
    meta = obj[CHECKPOINT_KEY]
    if not isinstance(meta, dict) or not isinstance(obj["state_dict"], dict):
        raise CheckpointError(p, "malformed cellgi checkpoint (metadata or weights are not mappings)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            p, f"checkpoint format version {version!r} is not supported (this cellgi reads {FORMAT_VERSION})"
        )
    missing = [k for k in ("spec_json", "target_names", "genes", "mapper", "graph", "normalizer", "digest") if k not in meta]
    if missing:
        raise CheckpointError(p, f"malformed cellgi checkpoint: metadata lacks {missing}")
    if verify:
        try:
            digest = compute_digest(obj["state_dict"], meta)
        except TypeError as exc:
            raise CheckpointError(p, f"malformed cellgi checkpoint: {exc}") from None
        if digest != meta["digest"]:
            raise CheckpointError(
                p,
                "content does not match its stored SHA-256 digest: the weights or metadata were modified "
                "or corrupted after saving",
            )
    return obj


def resolve_checkpoint(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file from a file path or a run folder.

    For a run folder: ``model.pt`` (written at the end of a run from the best checkpoint), then
    ``checkpoints/best.ckpt``, then ``checkpoints/last.ckpt`` (``prefer="last"`` starts with last).
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        raise CheckpointError(p, "no such file or run folder")
    order = [MODEL_FILE, f"{CKPT_DIR}/best.ckpt", f"{CKPT_DIR}/last.ckpt"]
    if prefer == "last":
        order = [f"{CKPT_DIR}/last.ckpt", f"{CKPT_DIR}/best.ckpt", MODEL_FILE]
    for name in order:
        if (p / name).is_file():
            return p / name
    raise CheckpointError(p, f"run folder has no checkpoint (looked for {', '.join(order)})")


def save_model_file(path: str | Path, model_state: Mapping[str, Tensor], meta: Mapping[str, Any]) -> Path:
    """Write the standalone model file (weights + metadata, digest recomputed), atomically."""
    state = {k: v.detach().cpu() for k, v in model_state.items()}
    meta = dict(meta)
    meta["digest"] = compute_digest(state, meta)
    return atomic_torch_save({"format": MODEL_FILE_FORMAT, "state_dict": state, CHECKPOINT_KEY: meta}, path)


def model_state_of(obj: Mapping[str, Any]) -> dict[str, Tensor]:
    """The model's own weights (``model.`` prefix of Lightning checkpoints removed)."""
    sd = obj["state_dict"]
    if obj.get("format") == MODEL_FILE_FORMAT:
        return dict(sd)
    return {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}
