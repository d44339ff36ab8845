"""cellgi.testing: the conformance checks pass on the built-ins and catch what they promise to catch."""

from __future__ import annotations

import pytest
import torch
from pydantic import Field

from cellgi.nn.aggregators import SumAggregator
from cellgi.nn.convs import MaskedGIN
from cellgi.registry import Params, get_registry
from cellgi.testing import (
    check_aggregator_rows_independent,
    check_component,
    check_conv,
    check_conv_batched_equals_copies,
    check_conv_batchmates_independent,
    check_conv_gradients,
    check_conv_masked_input,
    check_conv_shared,
    check_documented,
)


def test_checks_pass_on_a_builtin_conv():
    check_conv("masked_gin")
    check_component("conv", "masked_gin")
    check_documented("conv", "masked_gin")


class _IgnoresDeletions(MaskedGIN):
    """Message passing over the full graph: deleted genes still send messages."""

    def forward_batched(self, x, adj, keep):
        return super().forward_batched(x, adj, torch.ones_like(keep))


class _MixesBatchMates(MaskedGIN):
    """Adds the batch mean: one sample's output depends on the others."""

    def forward_batched(self, x, adj, keep):
        out = super().forward_batched(x, adj, keep)
        return out + out.mean(dim=1, keepdim=True)


class _WrongShared(MaskedGIN):
    def forward_shared(self, x, adj, removed):
        wt, at_pairs = super().forward_shared(x, adj, removed)
        return wt, at_pairs + 1.0


class _OverridesBatchedOnly(_IgnoresDeletions):
    """A subclass that changes forward_batched but inherits forward_masked (and its declaration): the
    model would take the inherited path; the check says so."""


def test_conv_checks_catch_broken_convs():
    with pytest.raises(AssertionError, match="batched != per-sample copies|changed no kept gene"):
        check_conv_batched_equals_copies(_IgnoresDeletions(in_dim=8, out_dim=8))
    with pytest.raises(AssertionError, match="batch-mates|alone"):
        check_conv_batchmates_independent(_MixesBatchMates(in_dim=8, out_dim=8))
    with pytest.raises(AssertionError):
        check_conv_gradients(_IgnoresDeletions(in_dim=8, out_dim=8))
    with pytest.raises(AssertionError, match="forward_shared != forward_batched"):
        check_conv_shared(_WrongShared(in_dim=8, out_dim=8))
    with pytest.raises(AssertionError, match="forward_masked != forward_batched"):
        check_conv_masked_input(_OverridesBatchedOnly(in_dim=8, out_dim=8))


class _MixesRows(SumAggregator):
    def forward(self, xs):
        y, w = super().forward(xs)
        return y + y.mean(dim=0, keepdim=True), w


def test_aggregator_check_catches_row_mixing():
    check_aggregator_rows_independent("sum")
    with pytest.raises(AssertionError, match="rows mix"):
        check_aggregator_rows_independent(_MixesRows(dim=8, num_graphs=3))


class _Undocumented(Params):
    width: int = Field(3)


def test_documented_check_catches_a_missing_description():
    reg = get_registry("loss")

    class Scratch:
        """A scratch loss."""

        def __init__(self, width: int = 3):
            self.width = width

    reg.add("scratch_undocumented", Scratch, summary="scratch", params=_Undocumented)
    try:
        with pytest.raises(AssertionError, match="parameter width has no description"):
            check_documented("loss", "scratch_undocumented")
    finally:
        reg.remove("scratch_undocumented")


def _scratch_baselines():
    """Baselines that break the ``baseline`` contract on purpose, each one way, and what the check says."""
    from cellgi.baselines import AdditiveRidgeBaseline

    class FirstGeneOnly(AdditiveRidgeBaseline):
        """Reads the first gene of each set only: order-dependent."""

        def predict(self, padded, mask):
            return self.fitted.intercept + self.fitted.coef[padded[:, 0]]

    class Forgetful(AdditiveRidgeBaseline):
        """Saves nothing of its fit."""

        def state_dict(self):
            st = super().state_dict()
            return {**st, "coef": st["coef"] * 0}

    class Unpadded(AdditiveRidgeBaseline):
        """Sums the padding slots too."""

        def predict(self, padded, mask):
            return self.fitted.intercept + self.fitted.coef[padded].sum(1)

    return {"scratch_first_gene": (FirstGeneOnly, "order within a set"),
            "scratch_forgetful": (Forgetful, "state_dict round trip"),
            "scratch_unpadded": (Unpadded, "padding slots")}


@pytest.mark.parametrize("name", sorted(_scratch_baselines()))
def test_baseline_check_catches_broken_baselines(name):
    from cellgi.testing import check_baseline
    from cellgi.baselines import AdditiveParams

    factory, match = _scratch_baselines()[name]
    reg = get_registry("baseline")
    reg.add(name, factory, summary="scratch", params=AdditiveParams)
    try:
        with pytest.raises(AssertionError, match=match):
            check_baseline(name)
    finally:
        reg.remove(name)
    check_baseline("additive")  # the member they derive from passes
