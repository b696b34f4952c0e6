"""A run's logs: `log.csv` (one row per epoch), `steps.csv` (one row per optimizer step, full
float precision), and TensorBoard scalars when tensorboard is installed.

A resumed run keeps the rows before its resume point and rewrites nothing else, so the logs of
an interrupted and resumed run equal those of an uninterrupted one (up to the seconds column).
"""

import csv
import io
import os
from pathlib import Path

from bench.common.atomic import write_text
from bench.common.errors import BenchError
from bench.common.inputs import require_file

LOG_NAME = "log.csv"
STEP_LOG_NAME = "steps.csv"
STEP_COLUMNS = ("step", "epoch", "lr", "loss", "contrastive", "i2t", "t2i", "grad_norm")


def _read_rows(path: Path, keep) -> list[dict]:
    """The rows `keep` accepts; a log this version did not write (a cell that is no number, a missing
    column, bytes that are no text) is refused naming the file, never a traceback."""
    if not os.path.lexists(path):
        return []
    require_file(path, "training log")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if keep(row)]
    except (ValueError, KeyError, TypeError, csv.Error) as err:  # UnicodeDecodeError is a ValueError
        raise BenchError(f"{path}: not a training log of this version ({str(err)[:120]}); move it away to resume "
                         "without it") from None


def _csv_text(columns, rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


class TrainLog:
    """Written by the master process only (`enabled`). The files appear (or a resumed run's are cut
    back to its resume point) with the first step logged: a run that fails before it leaves none."""

    def __init__(self, out_dir: Path, first_epoch: int, first_step: int, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / LOG_NAME
        self.step_path = out_dir / STEP_LOG_NAME
        self.board_dir = out_dir / "tensorboard"
        self.rows, self.earlier_steps, self.steps, self.board = [], [], None, None
        self.new_run = not self.step_path.exists()  # nothing of an earlier run to keep
        if not enabled:
            return
        self.rows = _read_rows(self.path, lambda row: int(row["epoch"]) < first_epoch)
        self.earlier_steps = _read_rows(self.step_path, lambda row: int(row["step"]) <= first_step)

    def _writes(self) -> bool:
        """Whether this process writes the logs; the files are opened at its first write."""
        if self.enabled and self.steps is None:
            self._open()
        return self.enabled

    def _open(self) -> None:
        write_text(self.step_path, _csv_text(STEP_COLUMNS, self.earlier_steps))
        self.steps = open(self.step_path, "a", newline="")
        self.step_writer = csv.DictWriter(self.steps, fieldnames=STEP_COLUMNS)
        self.board = _tensorboard_writer(self.board_dir)

    def step(self, values: dict) -> None:
        """One optimizer step: `values` has every STEP_COLUMNS name (floats written exactly)."""
        if not self._writes():
            return
        self.step_writer.writerow({name: values[name] for name in STEP_COLUMNS})
        self.steps.flush()
        if self.board is not None:
            for name in STEP_COLUMNS[2:]:
                self.board.add_scalar(f"train/{name}", values[name], values["step"])

    def epoch(self, row: dict) -> None:
        if not self._writes():
            return
        self.rows.append(row)
        write_text(self.path, _csv_text(row, self.rows))
        if self.board is not None:
            for name, value in row.items():
                if name != "epoch":
                    self.board.add_scalar(f"epoch/{name}", float(value), int(row["epoch"]))
            self.board.flush()

    def close(self, failed: bool = False) -> None:
        """`failed`: a new run that ends before its first checkpoint leaves no step log (nothing
        could resume from it, and a later run in the folder would start it afresh anyway)."""
        if self.steps is not None:
            self.steps.close()
        if self.board is not None:
            self.board.close()
        if failed and self.new_run and not any(self.step_path.parent.glob("checkpoint_*.pth.tar")):
            self.step_path.unlink(missing_ok=True)


def read_step_log(out_dir: Path) -> list[dict]:
    """steps.csv as dicts of floats (step and epoch as ints)."""
    path = Path(out_dir) / STEP_LOG_NAME
    rows = []
    for row in _read_rows(path, lambda row: True):
        try:
            rows.append({k: (int(v) if k in ("step", "epoch") else float(v)) for k, v in row.items()})
        except (ValueError, TypeError) as err:
            raise BenchError(f"{path}: not a training log of this version ({str(err)[:120]})") from None
    return rows


def _tensorboard_writer(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV logs are always written
        return None
    return SummaryWriter(str(directory))
