"""What a training run leaves on disk: epoch checkpoints, the best model, and its log.

`checkpoint_{epoch}.pth.tar` has the published layout (so `bench eval` and the original code
read it) plus what an exact resume needs: `optimizer`, `step`, `rng_states` (one per process).
`model_best.pth.tar` is the published layout only. Every file is written atomically, so a run
killed at any point resumes from its last complete epoch.
"""

import argparse
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.common.atomic import write_text
from bench.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from bench.common.errors import BenchError
from bench.model.network import SimilarityModel

BEST_NAME = "model_best.pth.tar"
LOG_NAME = "log.csv"
_EPOCH_FILE = re.compile(r"checkpoint_(\d+)\.pth\.tar$")


def epoch_checkpoint_path(out_dir: Path, epoch: int) -> Path:
    return out_dir / f"checkpoint_{epoch}.pth.tar"


def latest_epoch_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint of the last complete epoch (writes are atomic: any file found is whole)."""
    found = [(int(m.group(1)), p) for p in out_dir.glob("checkpoint_*.pth.tar") if (m := _EPOCH_FILE.search(p.name))]
    return max(found)[1] if found else None


def capture_rng(device: torch.device) -> dict:
    """The RNG streams training draws from: dropout and the data loader's base seed."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class EpochRecord:
    model: SimilarityModel
    opt: argparse.Namespace
    epoch: int
    step: int
    best_rsum: float
    optimizer: torch.optim.Optimizer
    rng_states: list[dict]


def save_epoch(out_dir: Path, record: EpochRecord, is_best: bool) -> Path:
    """Write model_best.pth.tar when best, then checkpoint_{epoch}.pth.tar with the resume state.

    The epoch checkpoint goes last: it is what --resume looks for, so a run killed in between
    repeats this epoch and rewrites the best model and the log row.
    """
    common = dict(epoch=record.epoch, best_rsum=record.best_rsum, eiters=record.step)
    if is_best:
        save_checkpoint(out_dir / BEST_NAME, record.model, record.opt, **common)
    path = epoch_checkpoint_path(out_dir, record.epoch)
    resume = {"optimizer": record.optimizer.state_dict(), "step": record.step, "rng_states": record.rng_states}
    save_checkpoint(path, record.model, record.opt, extra=resume, **common)
    return path


def check_resumable(checkpoint: Checkpoint, opt: argparse.Namespace) -> None:
    """A resumed run must train the same model on the same data; the schedule may be extended."""
    for name in ("data_name", "module_name"):
        if getattr(checkpoint.opt, name, None) != getattr(opt, name):
            raise BenchError(f"{checkpoint.path}: trained with {name}={getattr(checkpoint.opt, name, None)!r}, "
                             f"but this run asks for {getattr(opt, name)!r}; use another --out-dir")
    if "optimizer" not in checkpoint.extra or "rng_states" not in checkpoint.extra:
        raise BenchError(f"{checkpoint.path}: has no resume state (optimizer, RNG); it is not an epoch checkpoint")


def find_resume_checkpoint(out_dir: Path, resume: bool) -> Checkpoint | None:
    """The checkpoint to resume from; refuses to overwrite an earlier run unless --resume is given."""
    latest = latest_epoch_checkpoint(out_dir)
    if latest is None:
        return None
    if not resume:
        raise BenchError(f"{out_dir}: already holds checkpoints ({latest.name}); pass --resume to continue "
                         "that run, or choose another --out-dir")
    return read_checkpoint(latest)


class TrainLog:
    """One CSV row per epoch (always) and TensorBoard scalars (when tensorboard is installed)."""

    def __init__(self, out_dir: Path, first_epoch: int, enabled: bool):
        self.path = out_dir / LOG_NAME
        self.rows = self._earlier_rows(first_epoch) if enabled else []
        self.enabled = enabled
        self.board = _tensorboard_writer(out_dir / "tensorboard") if enabled else None

    def _earlier_rows(self, first_epoch: int) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            return [row for row in csv.DictReader(handle) if int(row["epoch"]) < first_epoch]

    def step(self, step: int, values: dict) -> None:
        if self.board is not None:
            for name, value in values.items():
                self.board.add_scalar(f"train/{name}", value, step)

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, text.getvalue())
        if self.board is not None:
            for name, value in row.items():
                if name != "epoch":
                    self.board.add_scalar(f"epoch/{name}", float(value), int(row["epoch"]))
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _tensorboard_writer(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV log is always written
        return None
    return SummaryWriter(str(directory))
