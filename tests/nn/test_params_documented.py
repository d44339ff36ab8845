"""Every built-in model component's params are documented (shown by `cellgi registry show`)."""

from __future__ import annotations

import pytest

from cellgi.registry import get_registry
from cellgi.testing import check_documented

ROLES = ["conv", "aggregator", "pooling", "local_predictor", "global_predictor", "combiner"]


@pytest.mark.parametrize("role", ROLES)
def test_builtin_params_have_descriptions(role):
    for name, entry in get_registry(role).loaded().items():
        if entry.provider == "cellgi":
            check_documented(role, name)
