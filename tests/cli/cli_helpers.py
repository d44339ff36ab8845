"""Helpers of the CLI tests: a tiny synthetic spec and a trained run of it."""

from __future__ import annotations

from pathlib import Path

from tiny_specs import tiny_spec

from cellgi.cli.main import main


def train_tiny_run(base: Path, name: str) -> Path:
    """Train the tiny spec into ``base/run`` in-process and return the run folder."""
    (base / "t.yaml").write_text(tiny_spec(name))
    assert main(["train", str(base / "t.yaml"), "--run-dir", str(base / "run"), "--no-progress"]) == 0
    return base / "run"
