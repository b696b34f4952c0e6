"""Whole score matrices: image shards x length-grouped caption chunks, on any device.

Shards follow the device's free memory, and an out-of-memory error halves the shard and
retries instead of failing. Under torchrun, the images are first split evenly into one
contiguous range per process (each process encodes and scores its own, sharded by its own
memory) and rank 0 alone receives the assembled matrix (the others get None).
"""

import contextlib
import os
import sys
import time

import numpy as np
import torch

from bench.common.distributed import RankFailed, active_world, check_all_ranks, gather_rows, rank_slice
from bench.common.errors import BenchError
from bench.common.progress import human_duration, note, progress_bar
from bench.eval.bf16_speed import note_slow_bf16
from bench.eval.precision import precision_context
from bench.model.engine import pair_scores
from bench.model.network import SimilarityModel

CPU_IMAGE_SHARD = 128  # on CPU, small shards keep the big intermediates in cache (docs/performance.md)
CPU_CAPTION_CHUNK = 8
GPU_CAPTION_CHUNK = 32
MEMORY_SHARE = 0.5  # of free memory one shard's intermediates may take


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N, checked against this machine (meta, mps, ... are refused)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise BenchError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise BenchError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def warn_slow_bf16(precision: str, device: torch.device) -> None:
    """bf16 asked for on a CPU: one line on stderr when it is slower than fp32 here. Without native bf16
    matmuls (AVX512-BF16 / AMX) it is far slower; with them it is measured (bench.eval.bf16_speed)."""
    if precision != "bf16" or device.type != "cpu":
        return
    try:
        native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        native = True  # unknown: measure
    if not native:
        print("daa-bench: warning: this CPU has no native bf16 matmuls; bf16 will be much slower "
              "than fp32 here", file=sys.stderr)
        return
    note_slow_bf16(precision, device)


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_image(regions: int, embed: int, sim: int, max_words: int, caption_chunk: int) -> int:
    """float32 intermediates of one image against one caption chunk (attention, context, nodes)."""
    return 4 * caption_chunk * max_words * (2 * regions + 3 * embed + 6 * sim)


def plan_image_shard(device: torch.device, n_images: int, per_image: int) -> int:
    """Images per shard: what half the free memory holds; on CPU also capped for cache reuse."""
    fits = max(1, int(free_memory_bytes(device) * MEMORY_SHARE) // max(per_image, 1))
    cap = CPU_IMAGE_SHARD if device.type == "cpu" else n_images
    return max(1, min(fits, cap, n_images))


def default_caption_chunk(device: torch.device) -> int:
    """Captions per engine call: small on CPU (cache reuse), larger on a GPU (fewer kernel launches)."""
    return CPU_CAPTION_CHUNK if device.type == "cpu" else GPU_CAPTION_CHUNK


MAX_IMAGE_SHARD = 2**31 - 1  # a shard's row count indexes tensors; beyond the images it changes nothing


def image_shard_for(model: SimilarityModel, img_emb: torch.Tensor, cap_lens: torch.Tensor, chunk: int,
                    image_shard: int | None) -> int:
    """--image-shard when given, else what this process's free memory holds for these images."""
    if image_shard is not None and not 1 <= image_shard <= MAX_IMAGE_SHARD:
        raise BenchError(f"--image-shard {image_shard}: must be in [1, {MAX_IMAGE_SHARD}]")
    config = model.config
    per_image = bytes_per_image(config.num_regions, config.embed_size, config.sim_dim, int(cap_lens.max()), chunk)
    return image_shard or plan_image_shard(img_emb.device, img_emb.shape[0], per_image)


# Allocation failures that PyTorch raises as a plain RuntimeError: the CPU allocator, a CUDA
# kernel launch or copy that finds no memory, cuBLAS failing to allocate its workspace.
OUT_OF_MEMORY_SIGNS = ("can't allocate memory", "CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(sign in str(error) for sign in OUT_OF_MEMORY_SIGNS)


def release_cached_memory(device: torch.device) -> None:
    """Give the CUDA allocator's cached blocks back before a smaller retry (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _score_shard(sim_enc, images, img_glo, cap_emb, cap_lens, chunk: int, advance) -> np.ndarray | None:
    """One shard's scores; None when it ran out of memory (with the progress it reported taken back).

    Returning instead of retrying inside `except` lets the exception, its traceback and the frames
    holding the shard's big intermediates go before the caller releases cached memory.
    """
    reported = [0]

    def count(pairs: int) -> None:
        reported[0] += pairs
        advance(pairs)

    try:
        block = pair_scores(sim_enc, images, cap_emb, cap_lens, img_glo=img_glo, caption_chunk=chunk, on_chunk=count)
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not is_out_of_memory(error) or images.shape[0] == 1:
            raise
        advance(-reported[0])
        return None
    return block.float().cpu().numpy()


def _score_rows(sim_enc, img_emb, cap_emb, cap_lens, shard: int, chunk: int, advance) -> np.ndarray:
    """Scores of these images, shard by shard; on out-of-memory, halve the shard and retry."""
    if img_emb.shape[0] == 0:  # more processes than images: this one has none
        return np.empty((0, cap_emb.shape[0]), dtype=np.float32)
    img_glo = sim_enc.v_global_w(img_emb)
    blocks, start = [], 0
    while start < img_emb.shape[0]:
        stop = min(start + shard, img_emb.shape[0])
        block = _score_shard(sim_enc, img_emb[start:stop], img_glo[start:stop], cap_emb, cap_lens, chunk, advance)
        if block is None:
            shard = max(1, (stop - start) // 2)
            release_cached_memory(img_emb.device)
            continue
        blocks.append(block)
        start = stop
    return np.concatenate(blocks)


def gathered_rows(rows: np.ndarray | None, n_images: int, error: BaseException | None = None) -> np.ndarray | None:
    """Every process's rows in rank order on rank 0 (None elsewhere), as tensors whose row counts follow
    from each rank's image range. A rank that failed (`error`), or whose row count is not its range's,
    ends every rank with one line naming it (a wrong count means the processes split the images differently)."""
    if error is None and rows is not None and active_world().distributed:
        expected = rank_slice(n_images, active_world())
        if rows.shape[0] != expected.stop - expected.start:
            error = BenchError(f"scored {rows.shape[0]} score rows for its {expected.stop - expected.start} images; "
                               "the matrix would be misaligned")
    try:
        check_all_ranks(error)
    except RankFailed as failed:
        raise BenchError(str(failed)) from None
    return gather_rows(rows, n_images)


@torch.no_grad()
def score_rank_rows(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor, cap_lens: torch.Tensor,
                    *, n_images: int, precision: str = "fp32", image_shard: int | None = None,
                    caption_chunk: int | None = None, advance=None) -> np.ndarray | None:
    """The matrix of `n_images` images of which `img_emb` are this process's (its rank_slice).

    Each process shards its own images by its own free memory: shard sizes may differ between
    processes without moving any row. Rank 0 gets the float32 (n_images, n_captions) matrix, the
    other ranks None. `advance(pairs)` reports progress per caption chunk (a bar of its own if None).
    """
    chunk = caption_chunk or default_caption_chunk(img_emb.device)
    shard = image_shard_for(model, img_emb, cap_lens, chunk, image_shard)
    bar = (progress_bar("scoring", img_emb.shape[0] * cap_emb.shape[0], unit="pairs") if advance is None
           else contextlib.nullcontext(advance))
    rows, error = None, None
    try:
        with precision_context(precision, img_emb.device), bar as step:
            rows = _score_rows(model.sim_enc, img_emb, cap_emb, cap_lens, shard, chunk, step)
    except Exception as failure:  # every rank learns of it at once, instead of waiting for the timeout
        if not active_world().distributed:
            raise
        error = failure
    return gathered_rows(rows, n_images, error)


def score_matrix(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor, cap_lens: torch.Tensor,
                 *, precision: str = "fp32", image_shard: int | None = None,
                 caption_chunk: int | None = None) -> np.ndarray | None:
    """float32 (n_images, n_captions) similarity matrix of all these images; shards planned from free memory.

    Under torchrun each process scores its rank_slice of the images and only rank 0 gets the matrix;
    the other ranks get None."""
    mine = rank_slice(img_emb.shape[0], active_world())
    return score_rank_rows(model, img_emb[mine], cap_emb, cap_lens, n_images=img_emb.shape[0], precision=precision,
                           image_shard=image_shard, caption_chunk=caption_chunk)


PROBE_FACTOR = 100  # work under 100 probes is over before an estimate would help


def _probe_seconds(sim_enc, images: torch.Tensor, words: torch.Tensor, lens: torch.Tensor, chunk: int) -> float:
    """Seconds of one shard x one caption chunk, timed after a warm-up run of the same shapes, so that
    first-launch costs (library handles, kernel loading, allocator growth) are not in the figure."""
    glo = sim_enc.v_global_w(images)

    def run() -> None:
        pair_scores(sim_enc, images, words, lens, img_glo=glo, caption_chunk=chunk)
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)

    run()  # the warm-up
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def announce_expected_time(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor,
                           cap_lens: torch.Tensor, pairs: int, what: str, precision: str = "fp32",
                           min_seconds: float = 10.0, image_shard: int | None = None) -> float:
    """Print `<what>: 125M pairs, about 6.5 h on this CPU`, from a probe of the real work unit.

    `img_emb` are this process's images and `pairs` the whole run's. The probe scores the shard the
    scoring will plan against one full caption chunk of the median caption length (captions spread over
    the split; the words past a caption's own length are zeros, which cost the same), and the figure is
    divided by the number of processes sharing the images. Work under PROBE_FACTOR probes, or expected
    to take under `min_seconds`, is not announced; only rank 0 probes and prints.
    """
    world, device = active_world(), img_emb.device
    chunk = min(default_caption_chunk(device), cap_emb.shape[0])
    shard = image_shard_for(model, img_emb, cap_lens, chunk, image_shard)
    if world.rank != 0 or pairs < PROBE_FACTOR * shard * chunk:
        return 0.0
    columns = torch.linspace(0, cap_emb.shape[0] - 1, chunk).long()
    lens = torch.full((chunk,), int(cap_lens.float().median()), dtype=cap_lens.dtype, device=cap_lens.device)
    try:
        with torch.no_grad(), precision_context(precision, device):
            probe = _probe_seconds(model.sim_enc, img_emb[:shard], cap_emb[columns.to(cap_emb.device)], lens, chunk)
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not is_out_of_memory(error):
            raise
        return 0.0  # the scoring's own halving will find a shard that fits; no estimate then
    seconds = pairs / world.world_size * probe / (shard * chunk)
    where = "this CPU" if device.type == "cpu" else f"this GPU ({torch.cuda.get_device_name(device)})"
    if world.world_size > 1:
        where = f"{world.world_size} processes like {where}"
    hint = "; a GPU takes minutes" if device.type == "cpu" and seconds > 600 else ""
    if seconds >= min_seconds:
        note(f"{what}: {pairs / 1e6:,.1f}M pairs, about {human_duration(seconds)} on {where}{hint}")
    return seconds
