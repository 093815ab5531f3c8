"""Progress bars for long work on a terminal; silent when output is not a terminal.

Core functions take a plain callback `progress(n)`; the command line wraps them in `bar()`.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn)


@contextlib.contextmanager
def bar(description: str, total: float | None, unit: str = "bytes",
        stream=None) -> Iterator[Callable[[float], None]]:
    """Yields `advance(n)`; draws a bar on stderr when it is a terminal, otherwise nothing."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield lambda n: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    if unit == "bytes":
        columns.append(DownloadColumn())
    columns.append(TimeRemainingColumn())
    from rich.console import Console
    with Progress(*columns, console=Console(file=stream), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
