"""One error hierarchy: every deliberate error is a CellgiError carrying its exit status, and the CLI's
main catches them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellgi.errors import CellgiError, resolve_path


def _error_classes():
    from cellgi.cli._common import DeviceError
    from cellgi.cli.embed import EmbedError
    from cellgi.data.errors import DataError
    from cellgi.apps.evaluate import EvaluateError
    from cellgi.nn.model import NonFiniteError
    from cellgi.apps.predict import PredictError
    from cellgi.registry import ComponentError, DuplicateComponentError, PluginLoadError, UnknownComponentError
    from cellgi.apps.screen import ScreenError
    from cellgi.spec import SpecError
    from cellgi.spec.yamlio import SpecSyntaxError
    from cellgi.runfolder.checkpoint import CheckpointError
    from cellgi.training.runner import ModelBuildError, TrainerConfigError
    from cellgi.runfolder.runs import RunDirError

    return [DataError, NonFiniteError, ComponentError, DuplicateComponentError, PluginLoadError,
            UnknownComponentError, SpecError, SpecSyntaxError, CheckpointError, ModelBuildError,
            TrainerConfigError, RunDirError, PredictError, EvaluateError, ScreenError, EmbedError, DeviceError]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_derives_from_cellgi_error(cls):
    assert issubclass(cls, CellgiError)
    assert cls.exit_code in (1, 2)


@pytest.mark.parametrize(
    "make,code,text",
    [
        (lambda: __import__("cellgi.data.errors", fromlist=["DataError"]).DataError("bad row", "f.tsv", 3),
         2, "error: f.tsv:3: bad row"),
        (lambda: __import__("cellgi.registry", fromlist=["x"]).UnknownComponentError("loss", "msee", ["mse"]),
         2, "did you mean 'mse'"),
        (lambda: __import__("cellgi.nn.model", fromlist=["x"]).NonFiniteError(["layer 0"]), 1, "layer 0"),
    ],
)
def test_main_catches_cellgi_errors_once(monkeypatch, capsys, make, code, text):
    import cellgi.cli.registry as reg_cli
    from cellgi.cli.main import main

    def boom(args):
        raise make()

    monkeypatch.setattr(reg_cli, "run_list", boom)
    assert main(["registry", "list"]) == code
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err


def test_resolve_path(tmp_path: Path):
    assert resolve_path(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"
    assert resolve_path(tmp_path, "/abs/x") == Path("/abs/x")
    assert resolve_path(None, "rel") == Path("rel")
    assert resolve_path(tmp_path, "~/x") == Path.home() / "x"
