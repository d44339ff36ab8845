"""The interruption shared by the applications that stream rows to a file (predict, screen)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["RowsInterrupted", "RowsReport"]


class RowsReport(Protocol):
    """What an interrupted application reports: the rows it wrote and where."""

    @property
    def written(self) -> int: ...

    @property
    def output(self) -> Path: ...


class RowsInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal turned into it) while rows were written; ``report`` says what was kept."""

    def __init__(self, report: RowsReport):
        super().__init__(f"interrupted after writing {report.written} rows to {report.output}")
        self.report = report
