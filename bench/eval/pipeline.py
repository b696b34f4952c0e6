"""The whole evaluation of one protocol: checkpoints + split -> score matrix -> every metric.

This is what `python -m bench eval` and `bench.evaluate` run: load the split, score it
(each torchrun process a slice of the images), then on the master process the recalls, ranks
and ASP of the protocol, PMRP where COCO instance annotations are at hand, and ECCV Caption /
CxC when asked. `eval --scores` (run_scores) measures another model's score matrix the same
way, reading only the split's captions and ids. bench.results.evaluate turns the outcome into a RunResult.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.common.distributed import (
    cleanup_distributed,
    init_distributed,
    is_master,
    process_device,
    world_info_from_env,
)
from bench.common.errors import BenchError
from bench.common.progress import note
from bench.data.coco_ids import load_image_ids
from bench.data.splits import Split
from bench.eval.per_query import add_coco_ids
from bench.eval.per_query import add_pmrp as add_pmrp_queries
from bench.eval.protocol_metrics import protocol_metrics
from bench.eval.protocols import DIRECTIONS, Protocol, get_protocol, protocol_split, saved_matrix, split_bounds
from bench.eval.score_file import ScoreFile, open_scores
from bench.eval.score_split import ScoredSplit, score_split
from bench.eval.scoring import resolve_device

LARGE_MATRIX = 1_000_000  # score entries from which the metric stage announces itself (real splits: 5M-125M)


@dataclass
class Evaluation:
    """Everything one protocol run computed, before it is set beside the paper."""

    protocol: Protocol
    split: Split
    scored: ScoredSplit | ScoreFile  # a checkpoint run's, or another model's score file (`eval --scores`)
    device: torch.device | None  # None: nothing was scored here
    metrics: dict  # {"i2t": {...}, "t2i": {...}, "rsum": x}
    folds: list[dict] | None  # per fold, for protocols with folds (coco-1k)
    eccv: dict | None  # ECCV Caption library facts when --eccv ran
    seconds: dict[str, float]
    queries: dict  # per-query values, numpy (bench.eval.per_query)
    left_out: dict  # figure name -> why this protocol cannot have it (CC152K: ASP, PMRP)

    @property
    def sims(self) -> np.ndarray:
        """float32 (n_images, n_captions), or coco-1k's stacked (5, n/5, 5n/5) fold blocks."""
        return saved_matrix(self.protocol, self.scored.sims)


def add_pmrp(figures: dict, protocol: Protocol, sims: np.ndarray, split: Split, annotations: Path,
             required: bool) -> None:
    """Put PMRP beside the recalls (COCO only) when the instance annotations are there."""
    from bench.eval.pmrp import INSTANCES_FILE, load_instance_vectors, protocol_pmrp

    present = os.path.lexists(annotations / INSTANCES_FILE)  # there but unreadable: an error, not "no PMRP"
    if protocol.dataset != "coco" or not (required or present):
        return
    result = protocol_pmrp(protocol.name, sims, load_image_ids(split.directory, split.name).tolist(),
                           load_instance_vectors(annotations))
    add_pmrp_queries(figures["queries"], result["per_query"])
    for direction in DIRECTIONS:
        figures["metrics"][direction]["pmrp"] = result[direction]
        for fold, fold_result in zip(figures.get("folds", []), result.get("folds", [])):
            fold[direction]["pmrp"] = fold_result[direction]


def add_eccv(figures: dict, sims: np.ndarray, split: Split, caption_ids: Path | None) -> dict:
    """ECCV Caption / CxC figures (coco-5k) joined to the per-direction dicts; returns provenance."""
    from bench.eval.eccv import testall_eccv_metrics

    result = testall_eccv_metrics(sims, load_image_ids(split.directory, split.name).tolist(),
                                  caption_ids_path=caption_ids)
    for direction in DIRECTIONS:
        figures["metrics"][direction].update(result[direction])
    return {"library": result["library"], "recall_agreement": result["recall_agreement"]}


def _score(checkpoints, split: Split, protocol: Protocol, data_root: Path, vocab, device: str,
           precision: str, image_shard: int | None, allow_mismatch: bool) -> tuple[ScoredSplit | None, torch.device]:
    """Score on this process (under torchrun: its slice); None on every process but the master."""
    world = world_info_from_env()
    torch_device = process_device(world, resolve_device(device))
    init_distributed(world, torch_device)
    try:
        scored = score_split(list(checkpoints), split, data_root, vocab, torch_device, precision,
                             split_bounds(protocol, split.n_images), image_shard, data_name=protocol.data_dir,
                             allow_mismatch=allow_mismatch)
    finally:
        cleanup_distributed()
    return (scored if is_master(world) else None), torch_device


def run_protocol(checkpoints, protocol: str, *, data_root: Path, vocab=None, device: str = "auto",
                 precision: str = "fp32", annotations: Path | None = None, eccv: bool = False,
                 image_shard: int | None = None, caption_ids: Path | None = None,
                 allow_mismatch: bool = False) -> Evaluation | None:
    """Score and measure; PMRP is required when `annotations` is given, else added when found.

    Checkpoints trained on another dataset than the protocol's are refused unless `allow_mismatch`.
    """
    started = time.perf_counter()
    protocol = get_protocol(protocol)
    _check_eccv(eccv, protocol)
    data_root = Path(data_root)
    split = protocol_split(protocol, data_root)
    scored, torch_device = _score(checkpoints, split, protocol, data_root, vocab, device, precision, image_shard,
                                  allow_mismatch)
    if scored is None:
        return None
    figures, eccv_facts, metric_seconds = _measure(protocol, scored.sims, split, data_root, annotations, eccv,
                                                   caption_ids)
    seconds = dict(scored.stage_seconds, metrics=metric_seconds)
    seconds["total"] = time.perf_counter() - started
    return Evaluation(protocol, split, scored, torch_device, figures["metrics"], figures.get("folds"),
                      eccv_facts, seconds, figures["queries"], figures.get("left_out", {}))


def _check_eccv(eccv: bool, protocol: Protocol) -> None:
    if eccv and protocol.name != "coco-5k":
        raise BenchError(f"--eccv needs the coco-5k protocol (the whole 5K gallery), not {protocol.name}")


def _measure(protocol: Protocol, sims: np.ndarray, split: Split, data_root: Path, annotations: Path | None,
             eccv: bool, caption_ids: Path | None) -> tuple[dict, dict | None, float]:
    """Every metric of a score matrix, a checkpoint's or a score file's alike: (figures, ECCV facts, seconds)."""
    started = time.perf_counter()
    if sims.size >= LARGE_MATRIX:  # seconds, not hours: one line says what runs, no bar
        note(f"{protocol.name}: metrics on {' x '.join(f'{n:,}' for n in sims.shape)} scores "
             "(recalls, ranks, ASP, PMRP where annotated, then bootstrap intervals): seconds to a minute")
    figures = protocol_metrics(protocol, sims, split.texts)
    add_pmrp(figures, protocol, sims, split, Path(annotations or data_root / "coco_annotations"),
             required=annotations is not None)
    eccv_facts = add_eccv(figures, sims, split, caption_ids) if eccv else None
    if protocol.dataset == "coco" and (split.directory / f"{split.name}_ids.txt").is_file():
        add_coco_ids(figures["queries"], load_image_ids(split.directory, split.name))
    return figures, eccv_facts, time.perf_counter() - started


def run_scores(scores, protocol: str, *, data_root: Path, annotations: Path | None = None, eccv: bool = False,
               caption_ids: Path | None = None) -> Evaluation:
    """Measure another model's score matrix (a .npy path or an array) exactly as a checkpoint's.

    Only the split's captions and ids are read (and the annotations for PMRP), never its features.
    """
    started = time.perf_counter()
    protocol = get_protocol(protocol)
    _check_eccv(eccv, protocol)
    data_root = Path(data_root)
    split = protocol_split(protocol, data_root, features=False)
    score_file = open_scores(scores, protocol, split.n_images)
    loaded = time.perf_counter()
    figures, eccv_facts, metric_seconds = _measure(protocol, score_file.sims, split, data_root, annotations, eccv,
                                                   caption_ids)
    seconds = {"load_scores": loaded - started, "metrics": metric_seconds, "total": time.perf_counter() - started}
    return Evaluation(protocol, split, score_file, None, figures["metrics"], figures.get("folds"), eccv_facts,
                      seconds, figures["queries"], figures.get("left_out", {}))


def score(model, split: Split, *, vocab=None, device: str = "auto", precision: str = "fp32",
          image_shard: int | None = None) -> np.ndarray:
    """The float32 (n_images, n_captions) score matrix of one split, nothing else.

    model: a checkpoint path or a bench.load_checkpoint result, or a list of two (SGR and SAF)
    for SGRAF. split: a bench.load_split result. vocab defaults to the vocab/ folder beside
    the split's folder, as `eval` finds it under the data root.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    scored = score_split(models, split, split.directory.parent, vocab, resolve_device(device), precision,
                         image_shard=image_shard)
    return scored.sims
