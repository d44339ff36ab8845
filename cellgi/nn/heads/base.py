"""What every head reads (:class:`HeadInput`) and the base classes of the head roles.

The model gathers everything a head may read about a batch of ``B`` gene sets (each padded to ``K``
deleted genes) into one :class:`HeadInput` and hands that one value to the global head, the local head,
the combiner and the additive term (``cellgi.nn.additive``). A field a head's declared capabilities ask
for is filled (``relations`` for a local head declaring ``uses_relations``, ``values``/``genes`` for an
additive term declaring ``uses_gene_values``, ``seen`` for one whose instance has ``uses_seen``; the
pooled cell states unless the combiner declares ``uses_global = False``); a new kind of input is one more
field here, not one more keyword in every head's signature.

Roles and calls (every member is built with keyword-only ``dim`` and ``num_targets``):

- ``local_predictor``: ``forward(x: HeadInput) -> (pred [B, T], repr [B, dim])`` from ``x.states``
  (the deleted genes' wildtype states) and ``x.mask``; capability ``uses_relations``.
- ``global_predictor``: ``forward(x: HeadInput) -> (pred [B, T], repr [B, dim])`` from the pooled cell
  states ``x.z_w [1, dim]``, ``x.z_i [B, dim]``, ``x.z_p [B, dim]``.
- ``combiner``: ``forward(local (pred, repr) or None, global_ (pred, repr) or None, x: HeadInput) ->
  (pred [B, T], gate_weights [B, 2] or None)``; capabilities ``uses_local`` (True: needs a local head,
  False: refuses one) and ``uses_global`` (False: the global head is not built and ``global_`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor, nn

__all__ = ["Combiner", "GlobalPredictor", "Head", "HeadInput", "LocalPredictor"]

#: a head's output: ``(pred [B, T], repr [B, dim])``
Head = tuple[Tensor, Tensor]

#: the optional fields of :class:`HeadInput`
HeadField = Literal["genes", "inputs", "relations", "values", "seen", "z_w", "z_i", "z_p"]


@dataclass(frozen=True)
class HeadInput:
    """Everything the heads of a model read about one batch of ``B`` gene sets (padded to ``K`` genes).

    Attributes:
        states: ``[B, K, H]`` final wildtype gene states of the deleted genes (after message passing).
        mask: ``[B, K]`` bool, True for real entries (False for padding).
        genes: ``[B, K]`` long gene indices (padding: any index where ``mask`` is False).
        inputs: ``[B, K, H]`` initial states of the deleted genes (embedding + preprocessor, before
            message passing).
        relations: ``[B, K, K, R]`` pair relations of the deleted genes (for a local head declaring
            ``uses_relations``; :class:`~cellgi.nn.relations.PairRelations`), else None.
        values: ``[B, K, V]`` raw values of the feature columns an additive term declaring
            ``uses_gene_values`` names, else None.
        seen: ``[B]`` bool, the set deletes at least one gene with training samples (for an additive term
            whose instance has ``uses_seen``), else None.
        z_w: ``[1, H]`` pooled wildtype cell; None when the combiner declares ``uses_global = False``.
        z_i: ``[B, H]`` pooled perturbed cells (likewise).
        z_p: ``[B, H]`` ``z_w - z_i`` (likewise).
    """

    states: Tensor
    mask: Tensor
    genes: Tensor | None = None
    inputs: Tensor | None = None
    relations: Tensor | None = None
    values: Tensor | None = None
    seen: Tensor | None = None
    z_w: Tensor | None = None
    z_i: Tensor | None = None
    z_p: Tensor | None = None

    def need(self, field: HeadField, who: str) -> Tensor:
        """The optional field ``field``, or a ``ValueError`` saying that ``who`` needs it."""
        value: Tensor | None = getattr(self, field)
        if value is None:
            raise ValueError(f"{who} needs HeadInput.{field} (the model passes it)")
        return value

    def pooled(self, who: str) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_w, z_i, z_p)``, or a ``ValueError`` saying that ``who`` needs them."""
        return self.need("z_w", who), self.need("z_i", who), self.need("z_p", who)


# --------------------------------------------------------------------------------------------- bases
class _Member(nn.Module):
    """What every head member shares: the keyword-only ``dim`` and ``num_targets`` it is built with."""

    def __init__(self, *, dim: int, num_targets: int):
        super().__init__()
        self.dim, self.num_targets = dim, num_targets

    def reset_parameters(self) -> None:  # pragma: no cover
        raise NotImplementedError


class _Predictor(_Member):
    """A head that predicts: ``forward(x: HeadInput) -> (pred [B, T], repr [B, dim])``."""

    def forward(self, x: HeadInput) -> Head:  # pragma: no cover
        raise NotImplementedError


class LocalPredictor(_Predictor):
    """Base of the ``local_predictor`` role (see the module docstring).

    Capability (checked at registration): ``uses_relations`` (default False): the model fills
    ``HeadInput.relations`` and builds the member with ``num_relations``.
    """

    uses_relations: ClassVar[bool] = False

    @staticmethod
    def check_inputs(emb: Tensor, mask: Tensor) -> None:
        """Shape checks only (free: no host sync)."""
        if emb.dim() != 3 or mask.shape != emb.shape[:2]:
            raise ValueError(
                f"local head expects emb [B, K, H] and mask [B, K], got {tuple(emb.shape)} and {tuple(mask.shape)}"
            )
        if emb.shape[1] == 0:
            raise ValueError("local head got no perturbed genes (K = 0): pert_padded is empty")


class GlobalPredictor(_Predictor):
    """Base of the ``global_predictor`` role (see the module docstring)."""


class Combiner(_Member):
    """Base of the ``combiner`` role (see the module docstring).

    Capabilities (checked at registration; the model reads the declared values): ``uses_local`` (True:
    needs a local head, False: refuses one; the model checks this when it is built, so a configured local
    head can never be silently ignored) and ``uses_global`` (False: the combiner reads the local head
    only; the model then skips the perturbed cells' message passing, pooling and the global head:
    wildtype states only, much cheaper).
    """

    uses_local: ClassVar[bool] = True
    uses_global: ClassVar[bool] = True

    def _check(self, local: Head | None, global_: Head | None) -> None:
        """The heads' outputs against the declared ``uses_local`` and ``uses_global``."""
        if self.uses_local and local is None:
            raise ValueError(f"combiner {type(self).__name__} needs the local head's output, got None")
        if not self.uses_local and local is not None:
            raise ValueError(f"combiner {type(self).__name__} uses no local head but was given its output")
        if self.uses_global and global_ is None:
            raise ValueError(f"combiner {type(self).__name__} needs the global head's output, got None")
        if not self.uses_global and global_ is not None:
            raise ValueError(f"combiner {type(self).__name__} uses no global head but was given a global prediction")

    def _both(self, local: Head | None, global_: Head | None) -> tuple[Head, Head]:
        """Both heads' outputs, checked (for a combiner declaring ``uses_local`` and ``uses_global``)."""
        self._check(local, global_)
        assert local is not None and global_ is not None
        return local, global_

    def reset_parameters(self) -> None:
        pass

    def forward(
        self, local: Head | None, global_: Head | None, x: HeadInput
    ) -> tuple[Tensor, Tensor | None]:  # pragma: no cover
        raise NotImplementedError
