"""Terminal manners: fast --help without torch, piped output unwrapped, quiet closed pipe, subcommand
usage on a bad flag, shell completion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cellgi.cli.main import main


def _cellgi(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cellgi", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def test_parser_built_without_torch():
    code = ("import sys; from cellgi.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'lightning', 'torch_geometric', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_subprocess_lists_commands():
    proc = _cellgi("--help")
    assert proc.returncode == 0
    for cmd in ("train", "predict", "embed", "spec", "registry"):
        assert cmd in proc.stdout


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["train", "--bad-flag"], "usage: cellgi train"),
        (["spec", "validate", "x.yaml", "--nope"], "usage: cellgi spec validate"),
        (["registry", "list", "--nope"], "usage: cellgi registry list"),
    ],
)
def test_bad_flag_shows_the_subcommand_usage(argv, usage, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and f"unrecognized arguments: {argv[-1]}" in err


def test_piped_registry_list_is_not_wrapped():
    from cellgi.registry import ROLES, get_registry

    proc = _cellgi("registry", "list", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) > 80  # the summaries are not folded into the column
    for role in ROLES:
        for name in get_registry(role).names():
            # what `cellgi registry list | grep NAME` relies on: the name whole, on the line of its kind
            assert any(f" {name} " in line and role in line for line in lines), (role, name)


def test_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "cellgi", "spec", "schema"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written (`| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cellgi tr", "train"),
        ("cellgi train --acc", "--accelerator"),
        ("cellgi registry show masked_g", "masked_gin"),
        ("cellgi spec example quick", "quickstart"),
        ("cellgi train configs/quickstart.yaml model.hidden", "model.hidden_dim="),
    ],
)
def test_shell_completion(line, expected, tmp_path):
    pytest.importorskip("argcomplete")
    out = tmp_path / "completions"
    proc = _cellgi(env={"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
                        "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})
    assert proc.returncode == 0, proc.stderr
    assert expected in out.read_text().split()
