"""Shared fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, request) -> Path:
    """One trained tiny run shared by the tests of a module."""
    stem = Path(str(request.node.fspath)).stem.replace("test_", "").replace("_cli", "")
    return train_tiny_run(tmp_path_factory.mktemp(stem), f"tiny-{stem}")
