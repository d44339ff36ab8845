"""What made a resumable output: the model's digest, the input's digest and the options that change rows.

``cellgi predict`` and ``cellgi screen`` write, beside their output, a small JSON record
(``OUT.predict.json``, ``OUT.screen.json``) of

- ``model``: the digest of what predicts (:func:`model_digest`: the checkpoint's own SHA-256 digest of
  weights and metadata; for a seed ensemble the members' digests; for a stacked folder also the
  ``stack.pt`` bytes), and the path it was loaded from (for people; not compared);
- ``input``: the digest of the input (:func:`file_digest` of the gene-set file, or of the screen's plan);
- ``options``: what changes the rows (output columns, screen mode, top-K, ...).

A resume compares the record with what the new call would write and refuses any difference, naming it
(:func:`check_resume`): rows of two models, or of two inputs, never end up in one file.

Example::

    from cellgi.predictors import load_predictor
    from cellgi.provenance import model_digest
    model_digest(load_predictor("runs/my-run/2026-01-01T00-00-00"))  # 'sha256:...'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Protocol

from cellgi import __version__
from cellgi.errors import CellgiError


class Digestible(Protocol):
    """What a record needs of a predictor (a :class:`~cellgi.predictors.base.TrainedPredictor` is one):
    this bottom module names the two members instead of importing the layer that defines the protocol."""

    path: Path

    def digest(self) -> str:
        """The predictor's content digest (``sha256:...``)."""
        ...

__all__ = ["Digestible", "ProvenanceError", "check_resume", "file_digest", "model_digest", "read_record", "record", "text_digest"]

#: ``format`` of a record
FORMAT = "cellgi-output-provenance"


class ProvenanceError(CellgiError):
    """A resume of an output that another model, input or option set made (``str()`` says what differs)."""

    exit_code = 2


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def text_digest(text: str) -> str:
    """``sha256:<hex>`` of a string (UTF-8)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_digest(loaded: Digestible) -> str:
    """The digest of what ``loaded`` predicts with (its :meth:`~cellgi.predictors.base.TrainedPredictor.digest`:
    one model's checkpoint digest, a seed ensemble's members' digests, a stacked folder's network digest and
    ``stack.pt``), ``sha256:<hex>``."""
    return loaded.digest()


def record(command: str, loaded: Digestible, input_digest: str, options: Mapping[str, Any],
           input_path: str | None = None) -> dict[str, Any]:
    """The record of an output (see the module docs)."""
    return {"format": FORMAT, "command": command, "cellgi_version": __version__,
            "model": {"digest": model_digest(loaded), "path": str(getattr(loaded, "path", ""))},
            "input": {"digest": input_digest, "path": input_path},
            "options": json.loads(json.dumps(dict(options), default=str))}


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none or it is unreadable."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def check_resume(old: Mapping[str, Any] | None, new: Mapping[str, Any], output: Path, where: Path) -> None:
    """Refuse to resume ``output`` unless its record ``old`` (read from ``where``) matches ``new``.

    Raises:
        ProvenanceError: no record, or the model, the input or an option differs (all differences named).
    """
    if old is None:
        raise ProvenanceError(
            f"{output}: cannot resume: {where} is missing or unreadable, so what made the rows already there "
            f"is unknown (write the output again with --overwrite)")
    diffs = []
    om, nm = old.get("model") or {}, new["model"]
    if om.get("digest") != nm["digest"]:
        diffs.append(f"model: the rows come from {om.get('path') or '?'} ({str(om.get('digest'))[:19]}), "
                     f"this call uses {nm.get('path')} ({nm['digest'][:19]})")
    oi, ni = old.get("input") or {}, new["input"]
    if oi.get("digest") != ni["digest"]:
        diffs.append(f"input: the rows come from {oi.get('path') or 'another input'} ({str(oi.get('digest'))[:19]}), "
                     f"this call reads {ni.get('path') or 'another input'} ({ni['digest'][:19]})")
    oo, no = old.get("options") or {}, new["options"]
    for key in sorted(set(oo) | set(no)):
        if oo.get(key) != no.get(key):
            diffs.append(f"option {key}: {oo.get(key)!r} then, {no.get(key)!r} now")
    if diffs:
        raise ProvenanceError(f"{output}: cannot resume an output made by another model, input or options "
                              f"(recorded in {where}): " + "; ".join(diffs))
