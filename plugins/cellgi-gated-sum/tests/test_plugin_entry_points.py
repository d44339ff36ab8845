"""The plugin as cellgi sees it: discovered through entry points, imported lazily, listed with its
distribution name and version, parameters described."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

import cellgi_gated_sum
from cellgi.registry import get_registry

COMPONENTS = [
    ("aggregator", "gated_sum"),
    ("aggregator", "topk_attention"),
    ("loss", "quantile"),
    ("pooling", "masked_max"),
    ("baseline", "gene_mean"),
    ("additive_term", "value_linear"),
]


def test_installed_with_version() -> None:
    assert cellgi_gated_sum.__version__ == metadata.version("cellgi-gated-sum")


@pytest.mark.parametrize(("role", "name"), COMPONENTS)
def test_component_comes_from_this_distribution(role: str, name: str) -> None:
    entry = get_registry(role).get(name)
    assert entry.provider == "cellgi-gated-sum"
    assert entry.version == cellgi_gated_sum.__version__
    assert entry.status == "ok"
    assert entry.summary
    for row in entry.describe():  # every parameter is documented for `cellgi registry show`
        assert row["description"], f"{role} {name}: parameter {row['name']} lacks a description"


def test_discovery_imports_nothing() -> None:
    """In a fresh interpreter, listing names imports no plugin module; asking for one imports it."""
    code = (
        "import sys\n"
        "from cellgi.registry import get_registry\n"
        "reg = get_registry('aggregator')\n"
        "assert 'gated_sum' in reg.names(), reg.names()\n"
        "assert 'cellgi_gated_sum.aggregators' not in sys.modules\n"
        "reg.get('gated_sum')\n"
        "assert 'cellgi_gated_sum.aggregators' in sys.modules\n"
        "assert 'cellgi_gated_sum.losses' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_registry_list_shows_provider_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from cellgi.cli.main import main

    assert main(["registry", "list", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    for key in COMPONENTS:
        assert key in rows, f"{key} not listed"
        row = rows[key]
        assert (row["provider"], row["version"], row["status"]) == (
            "cellgi-gated-sum",
            cellgi_gated_sum.__version__,
            "ok",
        )
