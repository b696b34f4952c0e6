"""Read and write checkpoints in the published layouts (`docs/model.md`, `docs/family.md`).

DAA's and SGRAF's checkpoint is `torch.save({"epoch", "model": [img_sd, txt_sd, sim_sd], "best_rsum",
"opt", "Eiters"})`; DAA's keys carry DistributedDataParallel's `module.` prefix, SGRAF's do not. The
family's co-trained pairs and flat networks are recognised too (bench.model.layouts).
Loading never runs pickled code: `weights_only=True` with only `argparse.Namespace` allowed.
"""

import argparse
import hashlib
import math
import pickle
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.common.replace_rule import CHECKPOINT
from bench.model.checkpoint_checks import check_archive, check_weights, num_regions
from bench.model.config import ModelConfig
from bench.model.layouts import (
    DDP_PREFIX,
    FLAT,
    NOT_FAMILY,
    SINGLE,
    TRAINING_ONLY,
    check_pair_alike,
    embedding_rows,
    recognise,
)
from bench.model.network import SimilarityModel


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    opt: argparse.Namespace
    state_dicts: list[dict]
    epoch: int
    best_rsum: float
    extra: dict
    layout: str = SINGLE  # single, pair or flat (bench.model.layouts)
    networks: tuple[list[dict], ...] = ()  # every network's three state dicts; state_dicts is the first
    mask_rows: int = 0  # word-embedding rows past the vocabulary (1: L2RM's <mask> word)

    def __post_init__(self):
        self.networks = self.networks or (self.state_dicts,)

    @property
    def layout_label(self) -> str:
        """The layout as provenance records it: `pair`, `flat (V+1 embedding rows)`, ..."""
        if self.layout != FLAT:
            return self.layout
        return f"flat (V{'+1' if self.mask_rows else ''} embedding rows)"


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
    if not isinstance(raw, dict) or "opt" not in raw:
        raise BenchError(f"{path}: {NOT_FAMILY}")
    opt = raw["opt"]
    if not isinstance(opt, argparse.Namespace):
        raise BenchError(f"{path}: 'opt' is {type(opt).__name__}, expected argparse.Namespace")
    found = recognise(raw, path)
    check_pair_alike(found, path)
    sim_state = found.networks[0][2]
    config = ModelConfig.from_opt(opt, num_regions=num_regions(sim_state, path), source=str(path))
    mask_rows = embedding_rows(found, config.vocab_size, path)
    if mask_rows:
        config = replace(config, vocab_size=config.vocab_size + mask_rows)
    for name, state_dicts in zip(found.names, found.networks):
        check_weights(state_dicts, config, path, network=name if len(found.names) > 1 else None)
    known = {"opt", "epoch", "best_rsum", "Eiters", *found.names, *TRAINING_ONLY}
    return Checkpoint(
        path=path, config=config, opt=opt, state_dicts=found.networks[0],
        epoch=_number(raw, "epoch", int, 0, path), best_rsum=_number(raw, "best_rsum", float, 0.0, path),
        extra={k: v for k, v in raw.items() if k not in known},
        layout=found.layout, networks=found.networks, mask_rows=mask_rows,
    )


def build_models(checkpoint: Checkpoint) -> list[SimilarityModel]:
    """One SimilarityModel in eval mode per network the checkpoint holds (two for a co-trained pair)."""
    models = []
    for state_dicts in checkpoint.networks:
        model = SimilarityModel(checkpoint.config)
        for module, state in zip(model.parts(), state_dicts):
            module.load_state_dict(state)
        models.append(model.eval())
    return models


def build_model(checkpoint: Checkpoint) -> SimilarityModel:
    """A SimilarityModel in eval mode holding the checkpoint's (first) network, checked by read_checkpoint."""
    return build_models(checkpoint)[0]


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
