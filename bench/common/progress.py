"""Progress of long steps (download, extract, convert, encode, score, train), in every setting.

On a terminal: rich bars. Otherwise (CI, nohup, `make | tee`): one plain line about every
30 s with done/total, rate and ETA, so a log shows that a 24-minute run is alive. The
interval is `$BENCH_PROGRESS_INTERVAL` seconds (tests set it low); `$BENCH_QUIET` silences
both forms, and under torchrun only rank 0 speaks (one set of lines, not one per process).
Two entry points with stable signatures: `progress_bar` counts items (and may say which stage
of a longer run it is in, e.g. `fold 2/5`), `byte_progress` counts bytes (and may learn its
total late, as a download does). `whole_run` makes one count of a run made of many steps (the
demo): the bars opened inside it draw nothing, and those counted in its unit feed its count.
"""

import contextlib
import os
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

INTERVAL_ENV = "BENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0

console = Console(stderr=True, soft_wrap=True)
_whole_run = []  # while a whole_run is open: its (unit, advance)


NOT_QUIET = ("", "0", "false", "no", "off")  # BENCH_QUIET values that mean what they say


def quiet() -> bool:
    """BENCH_QUIET set to anything but 0/false/no/off, or a torchrun process other than rank 0 (which
    speaks for all of them)."""
    return os.environ.get("BENCH_QUIET", "").strip().lower() not in NOT_QUIET or os.environ.get("RANK", "0") != "0"


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def note(line: str) -> None:
    """One informative line on stderr (expected times, what a step is about to do)."""
    if not quiet():
        print(line, file=sys.stderr, flush=True)


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def human_duration(seconds: float) -> str:
    """12 s, 4 min 05 s, 6.5 h."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds / 3600:.1f} h"


class PlainProgress:
    """Lines like `scoring: 640/1,000 images (64%), 21.3 images/s, ETA 17 s`, at most one per interval."""

    def __init__(self, description: str, total: int | None, unit: str, completed: int = 0):
        self.description, self.total, self.unit = description, total, unit
        self.start_done, self.done = completed, completed
        self.started = self.last = time.monotonic()
        self.every = interval()
        self.printed = False
        self.stage = None

    def _amount(self, value: float) -> str:
        return human_bytes(value) if self.unit == "bytes" else f"{value:,.0f}"

    def _rate(self, per_second: float) -> str:
        """`1.2 MB/s`, `21.3 images/s`; slow work as time per item (`45 s per step`), never `0.0 steps/s`."""
        if self.unit == "bytes":
            return f"{human_bytes(per_second)}/s"
        if per_second <= 0:
            return f"no {self.unit} done yet"
        if per_second < 1:
            return f"{human_duration(1 / per_second)} per {self.unit.removesuffix('s')}"
        return f"{per_second:,.1f} {self.unit}/s"

    def update(self, done: int, total: int | None = None, stage: str | None = None) -> None:
        self.done, self.total, self.stage = done, total or self.total, stage or self.stage
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        line = f"{self.description}{f', {self.stage}' if self.stage else ''}: {self._amount(self.done)}"
        if self.total:
            line += f"/{self._amount(self.total)}{'' if self.unit == 'bytes' else ' ' + self.unit}"
            line += f" ({100 * self.done / self.total:.0f}%)"
        line += f", {self._rate(rate)}"
        if self.total and rate > 0:
            line += f", ETA {human_duration(max(self.total - self.done, 0) / rate)}"
        note(line)
        self.printed = True

    def close(self) -> None:
        """A closing line only for steps long enough to have reported along the way."""
        if self.printed:
            unit = "" if self.unit == "bytes" else " " + self.unit
            note(f"{self.description}: done, {self._amount(self.done)}{unit} "
                 f"in {human_duration(time.monotonic() - self.started)}")


@contextlib.contextmanager
def _tracked(description: str, total: int | None, unit: str, completed: int = 0):
    """Yield `set(done, total=None, stage=None)` drawing a bar, printing plain lines, or doing nothing."""
    if quiet() or _whole_run:
        yield lambda done, new_total=None, stage=None: None
        return
    if not console.is_terminal:
        plain = PlainProgress(description, total, unit, completed)
        yield plain.update
        plain.close()
        return
    if unit == "bytes":
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
    with Progress(*columns, console=console, transient=unit != "bytes") as bars:
        task = bars.add_task(description, total=total, completed=completed)
        def update(done, new_total=None, stage=None):
            changes = {"total": new_total} if new_total else {}
            if stage:
                changes["description"] = f"{description}, {stage}"
            bars.update(task, completed=done, **changes)

        yield update


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str = "items", completed: int = 0):
    """Yield `advance(n=1, stage=None)` for work counted in items (images, pairs, steps).

    `total` is the whole run's, so the percentage and ETA are too; `stage` (`fold 2/5`) is shown
    beside the description; `completed` starts the count part-way (the second model of an ensemble).
    Inside a `whole_run` counted in the same unit, `advance` adds to the whole run's count instead.
    """
    if _whole_run and _whole_run[-1][0] == unit:
        yield _whole_run[-1][1]
        return
    with _tracked(description, total, unit, completed) as update:
        count = [completed]

        def advance(n: int = 1, stage: str | None = None) -> None:
            count[0] += n
            update(count[0], stage=stage)

        yield advance


@contextlib.contextmanager
def byte_progress(description: str, total: int | None, completed: int = 0):
    """Yield `update(done, new_total=None)` for work counted in bytes (downloads, extraction)."""
    with _tracked(description, total, "bytes", completed) as update:
        yield update


@contextlib.contextmanager
def whole_run(description: str, total: int, unit: str):
    """Yield `advance(n=1, stage=None)` for one count of a whole run: percentage and ETA of all of it.

    The bars its steps open draw nothing; those in `unit` (a training epoch's steps) add to this
    count as they go, the rest are advanced by the caller when their step ends.
    """
    with progress_bar(description, total, unit) as advance:
        _whole_run.append((unit, advance))
        try:
            yield advance
        finally:
            _whole_run.pop()
