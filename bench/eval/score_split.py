"""From checkpoints and a split to a score matrix, with the facts provenance needs.

Two checkpoints make the SGRAF ensemble: the element-wise mean of their matrices.
"""

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bench.common.distributed import active_world, rank_slice
from bench.common.errors import BenchError
from bench.common.progress import progress_bar
from bench.data.splits import Split
from bench.data.vocab import Vocabulary, search_nltk_data
from bench.eval.precision import precision_context
from bench.eval.scoring import announce_expected_time, score_rank_rows, warn_slow_bf16
from bench.model.checkpoint import Checkpoint, build_models, read_checkpoint, sha256_of
from bench.model.encode import encode_captions, encode_images, tokenize_captions
from bench.model.layouts import PAIR_KEYS

Blocks = list[tuple[slice, slice]] | None


@dataclass
class ScoredSplit:
    sims: np.ndarray | None  # None on torchrun ranks other than 0
    checkpoints: list[Checkpoint]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    vocab_paths: list[str] = field(default_factory=list)
    mismatch: str | None = None  # why the paper's figures do not apply (allowed data-name mismatch)

    @property
    def model_label(self) -> str:
        names = sorted({c.config.module_name for c in self.checkpoints})
        return "SGRAF" if names == ["SAF", "SGR"] else "+".join(c.config.module_name for c in self.checkpoints)


def default_vocab_path(data_root: Path, checkpoint: Checkpoint) -> Path:
    return Path(data_root) / "vocab" / f"{checkpoint.config.data_name}_vocab.json"


def check_features_fit(checkpoint: Checkpoint, split: Split) -> None:
    """The checkpoint's image dimension and region count must match the feature file."""
    _, regions, dim = split.features.shape
    config = checkpoint.config
    if dim != config.img_dim or regions != config.num_regions:
        raise BenchError(
            f"{split.feature_path}: features are {regions} regions x {dim}, but {checkpoint.path} "
            f"expects {config.num_regions} x {config.img_dim}"
        )


def data_name_mismatch(checkpoints: list[Checkpoint], data_name: str | None, allow: bool) -> str | None:
    """Refuse checkpoints trained on another dataset than the split's, or on different ones
    (an "SGRAF" of an F30K SGR and a COCO SAF); with `allow`, say why instead."""
    names = [c.config.data_name for c in checkpoints]
    problem = None
    if len(set(names)) > 1:
        problem = f"{checkpoints[0].path} was trained on {names[0]} but {checkpoints[1].path} on {names[1]}"
    elif data_name is not None and names[0] != data_name:
        problem = f"{checkpoints[0].path} was trained on {names[0]}, not on {data_name} that this protocol reads"
    if problem and not allow:
        raise BenchError(f"{problem}; pass --allow-mismatch to score anyway without paper comparison")
    return problem


def _own_images(rows: slice, world) -> slice:
    """This process's even share of a block's images, as split positions."""
    part = rank_slice(rows.stop - rows.start, world)
    return slice(rows.start + part.start, rows.start + part.stop)


@dataclass(frozen=True)
class ScoringRequest:
    """What to score: the split's whole matrix, or only its (image, caption) blocks (COCO 1K's diagonal).

    `share` (i, n) places this network's scoring as the i-th of n in one progress count (an ensemble's
    or a co-trained pair's networks); `announce` prints the expected time from a probe first.
    """

    split: Split
    vocab: Vocabulary
    device: torch.device
    precision: str = "fp32"
    blocks: Blocks = None
    image_shard: int | None = None
    tokenized: list | None = None
    encode_precision: str = "fp32"
    what: str = "scoring"
    announce: bool = False
    share: tuple[int, int] = (0, 1)


@dataclass
class ScoringResult:
    """One network's scores: a block per requested block (None on torchrun ranks other than 0)."""

    blocks: list[np.ndarray] | None
    encode_seconds: float
    score_seconds: float

    @property
    def matrix(self) -> np.ndarray | None:
        """The whole (n_images, n_captions) matrix, or the blocks stacked (the --save-sims layout of folds)."""
        if self.blocks is None:
            return None
        return self.blocks[0] if len(self.blocks) == 1 else np.stack(self.blocks)


def score_model(model, request: ScoringRequest) -> ScoringResult:
    """Encode and score the request's blocks with one network.

    Each block's images are split evenly over the processes first (rank_slice); a process encodes
    and scores only its own. Progress and the expected time cover every block (all five COCO 1K
    folds) and, through `request.share`, every network of the run.
    """
    split, device = request.split, request.device
    blocks = request.blocks or [(slice(0, split.n_images), slice(0, split.n_captions))]
    mine = [_own_images(rows, active_world()) for rows, _ in blocks]
    started = time.perf_counter()
    with precision_context(request.encode_precision, device):
        img_emb = encode_images(model, split, device, ranges=mine)
        cap_emb, cap_lens = encode_captions(model, request.vocab, split.captions, device, tokenized=request.tokenized)
    cap_lens = cap_lens.to(device)
    encoded = time.perf_counter()
    counts, widths = [part.stop - part.start for part in mine], [cols.stop - cols.start for _, cols in blocks]
    if request.announce:  # the probe plans its shard as the first block's scoring will
        pairs = sum((rows.stop - rows.start) * width for (rows, _), width in zip(blocks, widths))
        announce_expected_time(model, img_emb[:counts[0]], cap_emb, cap_lens, pairs, request.what, request.precision,
                               image_shard=request.image_shard)
    local = sum(count * width for count, width in zip(counts, widths))
    index, models = request.share
    folds, offset = [], 0
    with progress_bar(request.what, models * local, unit="pairs", completed=index * local) as advance:
        for number, ((rows, cols), count) in enumerate(zip(blocks, counts), start=1):
            stage = f"fold {number}/{len(blocks)}" if len(blocks) > 1 else None
            images = img_emb[offset:offset + count]
            offset += count
            folds.append(score_rank_rows(model, images, cap_emb[cols], cap_lens[cols], n_images=rows.stop - rows.start,
                                         precision=request.precision, image_shard=request.image_shard,
                                         advance=lambda n, stage=stage: advance(n, stage=stage)))
    return ScoringResult(None if folds[0] is None else folds, encoded - started, time.perf_counter() - encoded)


def score_checkpoint(checkpoint: Checkpoint, request: ScoringRequest, timings: dict[str, float]) -> np.ndarray | None:
    """The checkpoint's matrix: its one network's, or the mean of a co-trained pair's two (as their
    evaluation ranks them). The encoders stay exact (fp32); the request's precision is the scoring's.
    `timings` gains encode_/score_ seconds per network; `request.share` counts networks."""
    models = build_models(checkpoint)
    first, total = request.share
    matrices = []
    for number, model in enumerate(models):
        label = checkpoint.config.module_name + (f".{PAIR_KEYS[number]}" if len(models) > 1 else "")
        result = score_model(model.to(device=request.device), replace(
            request, what=f"scoring {label} on {request.split.name}", announce=True, share=(first + number, total)))
        timings[f"encode_{label}"] = timings.get(f"encode_{label}", 0.0) + result.encode_seconds
        timings[f"score_{label}"] = timings.get(f"score_{label}", 0.0) + result.score_seconds
        matrices.append(result.matrix)
    if matrices[0] is None:
        return None
    return matrices[0] if len(matrices) == 1 else (matrices[0] + matrices[1]) / 2


def score_split(checkpoint_paths: Sequence[str | Path | Checkpoint], split: Split, data_root: Path,
                vocab_path: str | Path | None, device: torch.device, precision: str, blocks: Blocks = None,
                image_shard: int | None = None, data_name: str | None = None,
                allow_mismatch: bool = False) -> ScoredSplit:
    """Score every checkpoint (a path, or one already read) on the split; two make SGRAF (the mean).

    A co-trained pair's file counts as one checkpoint whose matrix is its two networks' mean, so two
    such files (BiCro's four-network evaluation) are the mean of the two files' means.
    `data_name` (the protocol's) is compared with every checkpoint's opt.data_name first.
    """
    if not 1 <= len(checkpoint_paths) <= 2:
        raise BenchError("give one --checkpoint, or two (SGR and SAF) for the SGRAF ensemble")
    started = time.perf_counter()
    warn_slow_bf16(precision, device)
    search_nltk_data(data_root)
    checkpoints = [c if isinstance(c, Checkpoint) else read_checkpoint(c) for c in checkpoint_paths]
    mismatch = data_name_mismatch(checkpoints, data_name, allow_mismatch)
    timings = {"load_checkpoints": time.perf_counter() - started}
    matrices, vocab_paths, tokenized = [], [], {}
    networks = sum(len(c.networks) for c in checkpoints)
    for checkpoint in checkpoints:
        path = Path(vocab_path) if vocab_path else default_vocab_path(data_root, checkpoint)
        vocab_paths.append(str(path))
        vocab = Vocabulary.load(path)
        check_features_fit(checkpoint, split)
        vocab.check_matches(checkpoint.config.vocab_size - checkpoint.mask_rows, str(checkpoint.path))
        if str(path) not in tokenized:  # SGR and SAF share one vocabulary: tokenise once
            tokenized[str(path)] = tokenize_captions(vocab, split.captions, str(split.captions_path))
        done = sum(len(c.networks) for c in checkpoints[:len(matrices)])
        request = ScoringRequest(split, vocab, device, precision, blocks, image_shard, tokenized[str(path)],
                                 share=(done, networks))
        matrices.append(score_checkpoint(checkpoint, request, timings))
    if matrices[0] is None:  # a torchrun rank other than 0: rank 0 alone holds the matrix
        return ScoredSplit(None, checkpoints, timings, vocab_paths)
    sims = matrices[0] if len(matrices) == 1 else (matrices[0] + matrices[1]) / 2
    return ScoredSplit(sims.astype(np.float32, copy=False), checkpoints, timings, vocab_paths, mismatch)


def checkpoint_facts(checkpoints: list[Checkpoint]) -> list[dict]:
    return [{"path": str(c.path), "sha256": sha256_of(c.path), "module_name": c.config.module_name,
             "data_name": c.config.data_name, "epoch": c.epoch, "best_rsum": c.best_rsum,
             "layout": c.layout_label, "networks": len(c.networks)} for c in checkpoints]


def data_manifest(split: Split) -> dict:
    """The split's files and shape; a captions-only split (a score file's run) has no features."""
    files = [split.feature_path, split.captions_path, split.directory / f"{split.name}_ids.txt"]
    return {
        "split": split.name,
        "directory": str(split.directory),
        "features_shape": None if split.features is None else list(split.features.shape),
        "rows_per_image": split.rows_per_image,
        "n_images": split.n_images,
        "n_captions": split.n_captions,
        "captions_sha256": hashlib.sha256("\n".join(split.texts).encode("utf-8")).hexdigest(),
        "files": {f.name: f.stat().st_size for f in files if f is not None and f.is_file()},
    }
