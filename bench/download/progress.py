"""Rich progress bars for long byte-counting work (downloads, extraction, conversion)."""

import contextlib
import sys

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

console = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def byte_progress(description: str, total: int | None, completed: int = 0):
    """Yield `update(done, total=None)`; a plain start/end line when stderr is not a terminal."""
    if not console.is_terminal:
        print(f"{description} ...", file=sys.stderr, flush=True)
        yield lambda done, new_total=None: None
        print(f"{description}: done", file=sys.stderr, flush=True)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=completed)

        def update(done: int, new_total: int | None = None) -> None:
            progress.update(task, completed=done, **({"total": new_total} if new_total else {}))

        yield update
