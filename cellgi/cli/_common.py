"""Pieces shared by the commands that load a model and stream rows to a file (predict, screen)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Iterator

from cellgi.errors import CellgiError

if TYPE_CHECKING:  # pragma: no cover - types only: the predictors are imported when a command runs
    from cellgi.predictors.base import TrainedPredictor

__all__ = [
    "DeviceError",
    "PipeSafeStdout",
    "Terminated",
    "add_model_command",
    "add_spec_command",
    "add_stream_options",
    "load_on_device",
    "sigterm_raises",
    "stdout_may_close",
]


class DeviceError(CellgiError):
    """``--device`` names a device this machine does not have."""

    exit_code = 2


class Terminated(Exception):
    """SIGTERM arrived while :func:`sigterm_raises` was active (the command exits 143)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (so finished batches are kept and the command
    can say so); the previous handler comes back after it. Off the main thread signals cannot be
    handled, and nothing changes."""
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def load_on_device(checkpoint: str, device: str) -> TrainedPredictor:
    """The trained predictor of ``checkpoint`` (:func:`cellgi.predictors.load_predictor`) on ``device``.

    Raises:
        CheckpointError: an unusable checkpoint.
        DeviceError: a device that does not exist here (``--device DEVICE: ...``).
    """
    from cellgi.predictors import load_predictor

    loaded = load_predictor(checkpoint)
    try:
        loaded.to(device)
    except (RuntimeError, AssertionError, ValueError) as exc:  # torch's errors for an absent device
        raise DeviceError(f"--device {device}: {exc}") from None
    return loaded


def add_stream_options(p: argparse.ArgumentParser, output: str) -> None:
    """``--resume``, ``--overwrite``, ``--device`` and ``--no-progress`` of a command writing ``output``."""
    p.add_argument("--resume", action="store_true", help=f"continue an interrupted {output} (rows already there are kept)")
    p.add_argument("--overwrite", action="store_true", help=f"replace an existing {output}")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1; default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_model_command(sub: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add command ``name`` (``kwargs`` go to ``add_parser``) whose first argument is the model to use:
    a run folder or a checkpoint file (``args.checkpoint``)."""
    p = sub.add_parser(name, **kwargs)
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="run folder, checkpoint file, or pretrained name (cellgi pretrained list)")
    return p


def add_spec_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    overrides_help: str,
    spec: str = "spec",
    spec_metavar: str = "SPEC",
    spec_help: str = "spec YAML or a shipped example name",
    spec_nargs: str | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add command ``name`` (``kwargs`` go to ``add_parser``) whose arguments start with the spec to read
    (``args.<spec>``; ``spec_nargs="?"`` makes it optional) and its ``KEY=VALUE`` overrides
    (``args.overrides``)."""
    p = sub.add_parser(name, **kwargs)
    nargs = {} if spec_nargs is None else {"nargs": spec_nargs}
    p.add_argument(spec, metavar=spec_metavar, help=spec_help, **nargs)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides_help)
    return p


class PipeSafeStdout(io.TextIOBase):
    """Standard output whose reader may go away (``cellgi train ... | head -1``): after the first
    ``BrokenPipeError`` the text is dropped (one note on stderr says so) and the work goes on; its
    results are files, not this output."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.reader_gone = False

    def _gone(self) -> None:
        if self.reader_gone:
            return
        self.reader_gone = True
        try:  # the interpreter's final flush must not meet the broken pipe either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
        print("note: standard output was closed (broken pipe); the command goes on, its messages to "
              "standard output are dropped", file=sys.stderr)

    def write(self, text: str) -> int:  # type: ignore[override]
        if not self.reader_gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


@contextlib.contextmanager
def stdout_may_close() -> Iterator[PipeSafeStdout]:
    """``sys.stdout`` is a :class:`PipeSafeStdout` within the block (a command whose results are files
    keeps working when its output pipe closes)."""
    old = sys.stdout
    safe = PipeSafeStdout(old)
    sys.stdout = safe  # type: ignore[assignment]
    try:
        yield safe
    finally:
        sys.stdout = old
