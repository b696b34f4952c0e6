"""Rich progress bars for long work; silent when stderr is not a terminal or BENCH_QUIET is set."""

import contextlib
import os
import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _enabled() -> bool:
    return sys.stderr.isatty() and not os.environ.get("BENCH_QUIET")


@contextlib.contextmanager
def progress_bar(description: str, total: int):
    """Yield `advance(n)`; draws a bar on a terminal, does nothing otherwise."""
    if not _enabled():
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
