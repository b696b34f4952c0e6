"""A run's checkpoints: per epoch, mid-epoch (every N steps), the best model; and finding the resume point.

`checkpoint_{epoch}.pth.tar` and `checkpoint_{epoch}_step{step}.pth.tar` have the published
layout (so `bench eval` and the original code read them) plus what an exact resume needs:
`optimizer`, `position` (epoch, batch, step, loss sums), `rng_states` (one per process) and
`train_settings`. `model_best.pth.tar` is the published layout only. Every file is written
atomically, so a run killed at any point resumes from its newest checkpoint.
"""

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.common.errors import BenchError
from bench.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from bench.model.network import SimilarityModel
from bench.training.settings import TrainSettings, resumed_settings

BEST_NAME = "model_best.pth.tar"
_CHECKPOINT_FILE = re.compile(r"checkpoint_(\d+)(?:_step(\d+))?\.pth\.tar$")


def epoch_checkpoint_path(out_dir: Path, epoch: int) -> Path:
    return out_dir / f"checkpoint_{epoch}.pth.tar"


def step_checkpoint_path(out_dir: Path, epoch: int, step: int) -> Path:
    """A mid-epoch checkpoint (--save-every-steps, --max-steps); only the newest is kept."""
    return out_dir / f"checkpoint_{epoch}_step{step}.pth.tar"


def _checkpoint_files(out_dir: Path) -> list[tuple[tuple[int, float], Path]]:
    """(epoch, position within the epoch) of each checkpoint file; an epoch's end sorts last."""
    found = []
    for path in out_dir.glob("checkpoint_*.pth.tar"):
        if match := _CHECKPOINT_FILE.search(path.name):
            step = match.group(2)
            found.append(((int(match.group(1)), float(step) if step else math.inf), path))
    return sorted(found)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest checkpoint of the run (writes are atomic: any file found is whole)."""
    found = _checkpoint_files(out_dir)
    return found[-1][1] if found else None


def capture_rng(device: torch.device) -> dict:
    """The RNG streams training draws from (dropout); the data loaders have their own generators."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device, source: Path) -> None:
    try:
        torch.set_rng_state(state["torch"])
        if device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
    except RuntimeError as err:  # a state of the wrong length
        raise BenchError(f"{source}: damaged resume state: a random generator state is not one "
                         f"({str(err)[:120]})") from None


@dataclass
class Position:
    """Where a run stands: epoch, batches of that epoch done, optimizer steps, best rsum, and the
    epoch's running loss sums (so a mid-epoch resume logs the same epoch means)."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_rsum: float = -math.inf
    loss_sums: dict = field(default_factory=dict)
    epoch_done: bool = False

    def record(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step, "loss_sums": dict(self.loss_sums),
                "epoch_done": self.epoch_done}

    def next_start(self) -> "Position":
        """Where training continues from this saved position."""
        if not self.epoch_done:
            return self
        return Position(self.epoch + 1, 0, self.step, self.best_rsum)


@dataclass
class SavedState:
    model: SimilarityModel
    opt: argparse.Namespace
    position: Position
    optimizer: torch.optim.Optimizer
    rng_states: list[dict]
    settings: dict  # settings_record(): what --resume restores


def _save(path: Path, state: SavedState, extra: dict | None = None) -> None:
    """The published layout, plus `extra` keys."""
    save_checkpoint(path, state.model, state.opt, epoch=state.position.epoch, best_rsum=state.position.best_rsum,
                    eiters=state.position.step, extra=extra)


def _resume_state(state: SavedState) -> dict:
    return {"optimizer": state.optimizer.state_dict(), "step": state.position.step,
            "position": state.position.record(), "rng_states": state.rng_states, "train_settings": state.settings}


def save_best(out_dir: Path, state: SavedState) -> None:
    """model_best.pth.tar: the published layout only."""
    _save(out_dir / BEST_NAME, state)


def save_resumable(out_dir: Path, state: SavedState) -> Path:
    """checkpoint_{epoch}.pth.tar at an epoch's end, else checkpoint_{epoch}_step{step}.pth.tar;
    either has the published layout plus the resume state. Older step checkpoints are removed
    once a newer checkpoint is whole (epoch checkpoints are kept, as the original did)."""
    position = state.position
    path = epoch_checkpoint_path(out_dir, position.epoch) if position.epoch_done else \
        step_checkpoint_path(out_dir, position.epoch, position.step)
    _save(path, state, _resume_state(state))
    for _, older in _checkpoint_files(out_dir):
        if older != path and "_step" in older.name:
            older.unlink(missing_ok=True)
    return path


def read_resumable(path: Path) -> Checkpoint:
    """A checkpoint with the resume state this version writes; any other is refused."""
    checkpoint = read_checkpoint(path)
    for key in ("optimizer", "rng_states", "position", "train_settings"):
        if key not in checkpoint.extra:
            raise BenchError(f"{checkpoint.path}: has no resume state ({key}); it is not a training checkpoint "
                             "of this version")
    problem = _resume_state_problem(checkpoint.extra)
    if problem:
        raise BenchError(f"{checkpoint.path}: damaged resume state: {problem}; resume from an earlier "
                         "checkpoint (delete this one) or start afresh in another --out-dir")
    return checkpoint


def _whole(value) -> bool:
    return type(value) is int and value >= 0


def _resume_state_problem(extra: dict) -> str | None:
    """What is wrong with a checkpoint's resume state (types and signs this version writes), or None."""
    position = extra["position"]
    if not isinstance(position, dict):
        return "position is not a record"
    for key in ("epoch", "batch", "step"):
        if not _whole(position.get(key)):
            return f"position {key} is {position.get(key)!r}, not a whole number >= 0"
    sums = position.get("loss_sums")
    if not isinstance(sums, dict) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in sums.values()):
        return "position loss_sums are not finite numbers"
    if type(position.get("epoch_done")) is not bool:
        return "position epoch_done is not True or False"
    states = extra["rng_states"]
    if not isinstance(states, list) or not states or not all(_rng_state_ok(s) for s in states):
        return "rng_states are not one generator state (uint8 tensor) per process"
    optimizer = extra["optimizer"]
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list) and optimizer["param_groups"]
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in optimizer["param_groups"])):
        return "the optimizer state has no parameter groups"
    if not isinstance(extra["train_settings"], dict):
        return "train_settings is not a record of settings"
    return None


def optimizer_state_problem(optimizer: torch.optim.Optimizer) -> str | None:
    """What a loaded optimizer state holds that would crash a step or train on silently: a moment
    whose shape is not its parameter's, a NaN or infinite value, a learning rate that is not a finite
    positive number (load_state_dict checks none of these)."""
    for index, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            return f"parameter group {index}: learning rate {lr!r} is not a finite positive number"
        numbers = [v for v in group.values() if isinstance(v, float)]
        numbers += [b for b in group.get("betas", ()) if isinstance(b, float)]
        if not all(math.isfinite(v) for v in numbers):
            return f"parameter group {index}: a hyperparameter is not finite ({numbers})"
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if not isinstance(value, torch.Tensor) or value.dim() == 0:
                    continue
                if value.shape != param.shape:
                    return f"optimizer {name} has shape {tuple(value.shape)}, its parameter {tuple(param.shape)}"
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    return f"optimizer {name} holds NaN or infinite values"
    return None


def _rng_state_ok(state) -> bool:
    return isinstance(state, dict) and all(
        isinstance(state.get(key), torch.Tensor) and state[key].dtype == torch.uint8 and state[key].dim() == 1
        for key in ("torch", *(["cuda"] if "cuda" in state else [])))


def find_resume_checkpoint(out_dir: Path, resume: bool) -> Checkpoint | None:
    """The checkpoint to resume from; refuses to overwrite an earlier run unless --resume is given."""
    latest = latest_checkpoint(out_dir)
    if latest is None:
        return None
    if not resume:
        raise BenchError(f"{out_dir}: already holds checkpoints ({latest.name}); pass --resume to continue "
                         "that run, or choose another --out-dir")
    return read_resumable(latest)


def resumed_position(checkpoint: Checkpoint, batches_per_epoch: int) -> Position:
    """Where the run continues; a batch position beyond the epoch's batches is refused (the run
    would otherwise go on from a place the original never was)."""
    record = checkpoint.extra["position"]
    if record["batch"] > batches_per_epoch:
        raise BenchError(f"{checkpoint.path}: damaged resume state: position batch {record['batch']} is beyond the "
                         f"{batches_per_epoch} batches of an epoch of this run")
    saved = Position(int(record["epoch"]), int(record["batch"]), int(record["step"]), checkpoint.best_rsum,
                     dict(record["loss_sums"]), bool(record["epoch_done"]))
    return saved.next_start()


def settings_to_resume(out_dir: Path, given: dict) -> TrainSettings | None:
    """The settings recorded by the run in `out_dir`, updated by the flags `given` now (a flag that
    contradicts a recorded setting is refused); None when `out_dir` holds no checkpoint yet."""
    latest = latest_checkpoint(Path(out_dir))
    if latest is None:
        return None
    checkpoint = read_resumable(latest)
    return resumed_settings(checkpoint.extra["train_settings"], given, str(latest))
