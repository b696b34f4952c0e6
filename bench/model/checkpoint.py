"""Read and write checkpoints in the published DAA / SGRAF layout (`docs/model.md`).

A checkpoint is `torch.save({"epoch", "model": [img_sd, txt_sd, sim_sd], "best_rsum", "opt",
"Eiters"})`. DAA's keys carry DistributedDataParallel's `module.` prefix, SGRAF's do not.
Loading never runs pickled code: `weights_only=True` with only `argparse.Namespace` allowed.
"""

import argparse
import hashlib
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.common.replace_rule import CHECKPOINT
from bench.model.checkpoint_checks import PART_NAMES, check_archive, check_weights, num_regions
from bench.model.config import ModelConfig
from bench.model.network import SimilarityModel

DDP_PREFIX = "module."


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    opt: argparse.Namespace
    state_dicts: list[dict]
    epoch: int
    best_rsum: float
    extra: dict


def _refusal_reason(message: str) -> str | None:
    """The pickled global a weights-only load refused, if that is why it failed."""
    match = re.search(r"(?:unsupported )?GLOBAL ([\w.]+)", message, re.IGNORECASE)
    return match.group(1) if match else None


def _safe_torch_load(path: Path) -> dict:
    """torch.load with weights_only and Namespace allow-listed; refuse anything else."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        forbidden = _refusal_reason(str(err))
        if forbidden:
            raise BenchError(
                f"{path}: refused to load: its pickle asks for {forbidden}, and only tensors and "
                "argparse.Namespace are allowed (a published checkpoint needs nothing else)"
            ) from None
        raise BenchError(f"{path}: not a readable torch checkpoint (corrupt, truncated or not a checkpoint)") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise BenchError(f"{path}: not a readable torch checkpoint ({first_line})") from None


def strip_prefix(state_dict: dict) -> dict:
    """Remove DDP's `module.` prefix when every key has it (DAA); SGRAF's keys have none."""
    if state_dict and all(key.startswith(DDP_PREFIX) for key in state_dict):
        return {key[len(DDP_PREFIX):]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _number(raw: dict, key: str, kind: type, default, path: Path):
    value = raw.get(key, default)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchError(f"{path}: '{key}' is {type(value).__name__}, expected a number")
    if math.isnan(value) or (kind is int and math.isinf(value)):  # best_rsum is -inf before any validation
        raise BenchError(f"{path}: '{key}' is {value}, expected a {'finite ' if kind is int else ''}number")
    return kind(value)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate: the archive's CRCs, the opt's fields, every tensor's key, shape and dtype."""
    path = require_file(path, "checkpoint file")
    check_archive(path)
    raw = _safe_torch_load(path)
    if not isinstance(raw, dict) or "model" not in raw or "opt" not in raw:
        raise BenchError(f"{path}: not a DAA/SGRAF checkpoint (expected a dict with 'model' and 'opt')")
    opt = raw["opt"]
    if not isinstance(opt, argparse.Namespace):
        raise BenchError(f"{path}: 'opt' is {type(opt).__name__}, expected argparse.Namespace")
    parts = raw["model"]
    if not isinstance(parts, (list, tuple)) or len(parts) != 3 or not all(isinstance(p, dict) for p in parts):
        raise BenchError(f"{path}: 'model' must be a list of three state dicts ({', '.join(PART_NAMES)})")
    state_dicts = [strip_prefix(part) for part in parts]
    config = ModelConfig.from_opt(opt, num_regions=num_regions(state_dicts[2], path), source=str(path))
    check_weights(state_dicts, config, path)
    known = {"model", "opt", "epoch", "best_rsum", "Eiters"}
    return Checkpoint(
        path=path, config=config, opt=opt, state_dicts=state_dicts,
        epoch=_number(raw, "epoch", int, 0, path), best_rsum=_number(raw, "best_rsum", float, 0.0, path),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def build_model(checkpoint: Checkpoint) -> SimilarityModel:
    """A SimilarityModel in eval mode holding the checkpoint's weights (checked by read_checkpoint)."""
    model = SimilarityModel(checkpoint.config)
    for module, state in zip(model.parts(), checkpoint.state_dicts):
        module.load_state_dict(state)
    return model.eval()


def save_checkpoint(path: str | Path, model: SimilarityModel, opt: argparse.Namespace, *,
                    epoch: int = 0, best_rsum: float = 0.0, eiters: int = 0,
                    ddp_prefix: bool = True, extra: dict | None = None) -> None:
    """Write the published layout atomically (DAA's `module.` prefix by default)."""
    prefix = DDP_PREFIX if ddp_prefix else ""
    parts = [{prefix + k: v.detach().cpu() for k, v in part.state_dict().items()} for part in model.parts()]
    payload = {"epoch": epoch, "model": parts, "best_rsum": best_rsum, "opt": opt, "Eiters": eiters}
    payload.update(extra or {})
    with atomic_path(path, CHECKPOINT) as tmp:
        torch.save(payload, tmp)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
